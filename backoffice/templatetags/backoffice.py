from django import template

from kernel.formats import credits_text, money_text, signed_credits_text

register = template.Library()


@register.filter
def credits(value: int | None) -> str:
    """An integer number of credits with the locale's thousands separator (500.000 in pt-BR)."""
    return credits_text(value)


@register.filter
def signed_credits(value: int | None) -> str:
    """A movement of credits: +500.000 or -1.234."""
    return signed_credits_text(value)


@register.filter
def brl(cents: int | None) -> str:
    """Integer cents as reais: R$ 14,90."""
    return money_text(cents)
