"""How the end-user pages name ledger entries, grant origins, purchase states and call endings.

The models' own choice labels are written for admins; these are the words users read, in pt-BR.
Reasons are stored in whatever language was active when the entry was written ("Purchase #4"),
so an entry is described from what it points at, at display time, in the reader's language.
"""

from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from credits.models import Grant, LedgerEntry

LABELS = {
    "entry": {
        "grant": _("Credits added"),
        "usage": _("Consumption"),
        "expiry": _("Expired"),
        "refund": pgettext_lazy("ledger entry", "Refund"),
        "adjustment": _("Adjustment"),
    },
    "source": {
        "plan_cycle": _("Plan allowance"),
        "purchase": _("Purchase"),
        "manual": _("Top-up"),
        "promo": _("Promotion"),
    },
    # A purchase as the person's API reports it (payments.selectors.purchase_status).
    "payment": {
        "pending": pgettext_lazy("order status", "awaiting payment"),
        "paid": pgettext_lazy("order status", "paid"),
        "expired": pgettext_lazy("order status", "expired"),
        "cancelled": pgettext_lazy("order status", "cancelled"),
        "refunded": pgettext_lazy("order status", "refunded"),
        "review": pgettext_lazy("order status", "under review"),
    },
    "end": {
        "completed": _("completed"),
        "client_disconnected": _("interrupted"),
        "upstream_error": _("provider error"),
        "timeout": _("timed out"),
        "refused": _("refused"),
    },
}


def label_of(group: str, value: str) -> str:
    """The user-facing name of a stored choice, e.g. label_of("entry", "usage")."""
    return str(LABELS[group].get(value, value))


def entry_text(entry: LedgerEntry) -> str:
    """What a ledger entry was, e.g. "Compra nº 4", "Franquia do plano Básico", "gpt-4o"."""
    grant: Grant | None = entry.grant
    if entry.kind == LedgerEntry.Kind.USAGE:
        return entry.reason or label_of("entry", "usage")
    purchase_id = entry.purchase_id or (grant.purchase_id if grant is not None else None)
    if purchase_id:
        if entry.kind == LedgerEntry.Kind.REFUND:
            return gettext("Refund of purchase #%(id)s") % {"id": purchase_id}
        if entry.kind == LedgerEntry.Kind.EXPIRY:
            return gettext("Expiry of purchase #%(id)s") % {"id": purchase_id}
        return gettext("Purchase #%(id)s") % {"id": purchase_id}
    if grant is not None and grant.source == Grant.Source.PLAN_CYCLE:
        if entry.kind == LedgerEntry.Kind.EXPIRY:
            return gettext("Plan allowance expired")
        return gettext("Plan allowance: %(plan)s") % {"plan": entry.reason or grant.reason}
    kind = label_of("entry", entry.kind)
    if grant is not None and entry.kind == LedgerEntry.Kind.GRANT:
        kind = label_of("source", grant.source)
    # A reason Solaris wrote itself is one of its own messages: shown in the reader's language.
    return f"{kind} — {gettext(entry.reason)}" if entry.reason else kind
