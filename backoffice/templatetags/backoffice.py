from django import template

from backoffice.admin_tools import credits_text

register = template.Library()


@register.filter
def credits(value: int | None) -> str:
    """An integer number of credits with the locale's thousands separator (500.000 in pt-BR)."""
    return credits_text(value)
