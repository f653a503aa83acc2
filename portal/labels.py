"""How the end-user pages name ledger entries, grant origins, purchase states and call endings.

The models' own choice labels are written for admins; these are the words users read, in pt-BR.
"""

from django.utils.translation import gettext_lazy as _

LABELS = {
    "entry": {
        "grant": _("Credits added"),
        "usage": _("Consumption"),
        "expiry": _("Expired"),
        "refund": _("Refund"),
        "adjustment": _("Adjustment"),
    },
    "source": {
        "plan_cycle": _("Plan allowance"),
        "purchase": _("Purchase"),
        "manual": _("Top-up"),
        "promo": _("Promotion"),
    },
    "purchase": {
        "requested": _("pending"),
        "paid": _("paid, crediting"),
        "credited": _("credited"),
        "cancelled": _("cancelled"),
        "refunded": _("refunded"),
    },
    "end": {
        "completed": _("completed"),
        "client_disconnected": _("interrupted"),
        "upstream_error": _("provider error"),
        "timeout": _("timed out"),
        "refused": _("refused"),
    },
}
