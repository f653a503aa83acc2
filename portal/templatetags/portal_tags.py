"""Exact, localized display of integers: credits with thousands separators, prices in BRL."""

from django import template
from django.utils.translation import get_language

from portal.labels import LABELS

register = template.Library()


def _separators() -> tuple[str, str]:
    """(thousands, decimal) for the active language."""
    return (",", ".") if (get_language() or "").startswith("en") else (".", ",")


def _group(number: int, separator: str) -> str:
    digits = str(abs(number))
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if number < 0 else "") + separator.join(groups)


@register.filter
def credits(value) -> str:
    if value is None or value == "":
        return ""
    return _group(int(value), _separators()[0])


@register.filter
def brl(cents) -> str:
    thousands, decimal = _separators()
    cents = int(cents)
    return f"R$ {_group(cents // 100, thousands)}{decimal}{cents % 100:02d}"


@register.filter
def percent(value) -> str:
    """A Decimal percentage with the language's decimal mark, e.g. 85,50."""
    return str(value).replace(".", _separators()[1])


@register.filter
def label(value: str, group: str) -> str:
    """The user-facing name of a stored choice, e.g. {{ entry.kind|label:"entry" }}."""
    return str(LABELS[group].get(value, value))
