"""Exact, localized display of integers: credits with thousands separators, prices in BRL; the
renewal's words."""

from django import template
from django.utils.translation import get_language, gettext, ngettext

from portal.labels import label_of
from portal.selectors import Renewal

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
    return label_of(group, value)


def _when(days: int) -> str:
    if days <= 0:
        return gettext("today")
    if days == 1:
        return gettext("tomorrow")
    return ngettext("in %(days)d day", "in %(days)d days", days) % {"days": days}


@register.simple_tag
def renewal_line(renewal: Renewal) -> str:
    """E.g. "Renova em 3 dias: +100.000; 68.624 vencem"."""
    parts = []
    if renewal.credits:
        parts.append("+" + credits(renewal.credits))
    if renewal.expiring:
        parts.append(
            ngettext("%(credits)s expires", "%(credits)s expire", renewal.expiring)
            % {"credits": credits(renewal.expiring)}
        )
    return gettext("Renews %(when)s: %(what)s") % {
        "when": _when(renewal.days),
        "what": "; ".join(parts),
    }


@register.simple_tag
def renewal_wait(renewal: Renewal) -> str:
    """E.g. "ou aguarde a renovação em 3 dias (+100.000 créditos)"."""
    if not renewal.credits:
        return ""
    return gettext("or wait for the renewal %(when)s (+%(credits)s credits)") % {
        "when": _when(renewal.days),
        "credits": credits(renewal.credits),
    }
