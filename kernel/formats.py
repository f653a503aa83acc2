"""Numbers as people read them, in the active language: credits with the thousands separator
(500.000 in pt-BR, 500,000 in English) and money in reais from integer cents, exactly."""

from decimal import Decimal

from django.utils.formats import number_format


def credits_text(value: int | None) -> str:
    return number_format(value or 0, force_grouping=True)


def signed_credits_text(value: int | None) -> str:
    """A movement of credits: +500.000 or -1.234."""
    value = value or 0
    return ("+" if value > 0 else "") + credits_text(value)


def money_text(cents: int | None) -> str:
    return "R$ " + number_format(Decimal(cents or 0) / 100, decimal_pos=2, force_grouping=True)
