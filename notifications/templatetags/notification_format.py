"""Numbers and money in e-mails, written the way the reader's language writes them."""

from decimal import Decimal

from django import template
from django.utils import translation

register = template.Library()


def _portuguese() -> bool:
    return (translation.get_language() or "pt-br").startswith("pt")


def _group(digits: str, separator: str) -> str:
    groups: list[str] = []
    while len(digits) > 3:
        digits, tail = digits[:-3], digits[-3:]
        groups.insert(0, tail)
    groups.insert(0, digits)
    return separator.join(groups)


@register.filter
def credits(value) -> str:
    """85000 → "85.000" (pt-BR) or "85,000" (English)."""
    number = int(value)
    sign = "-" if number < 0 else ""
    return sign + _group(str(abs(number)), "." if _portuguese() else ",")


@register.filter
def brl(cents) -> str:
    """2990 → "R$ 29,90" (pt-BR) or "R$29.90" (English)."""
    reais, centavos = divmod(int(cents), 100)
    if _portuguese():
        return f"R$ {_group(str(reais), '.')},{centavos:02d}"
    return f"R${_group(str(reais), ',')}.{centavos:02d}"


@register.filter
def percent(value) -> str:
    """ "85.50" → "85,5%" (pt-BR) or "85.5%" (English); whole numbers without decimals."""
    number = Decimal(str(value)).normalize()
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text.replace(".", ",") if _portuguese() else text) + "%"
