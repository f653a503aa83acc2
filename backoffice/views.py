from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from backoffice.charts import daily_bar_chart
from backoffice.selectors import PERIODS, dashboard_get
from kernel.formats import money_text


def dashboard(request):
    """The credit dashboard (docs/admin.md), linked from the admin index."""
    if not request.user.has_perm("credits.view_ledgerentry"):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    data = dashboard_get(days=days)
    users = reverse("admin:accounts_user_changelist")
    return TemplateResponse(
        request,
        "backoffice/dashboard.html",
        {
            **admin.site.each_context(request),
            "title": _("Credit dashboard"),
            "dashboard": data,
            "chart": daily_bar_chart([(day.day, day.credits) for day in data.daily]),
            "periods": PERIODS,
            "revenue": money_text(data.revenue_cents),
            "alert_url": f"{users}?credit_state=alert",
            "blocked_url": f"{users}?credit_state=blocked",
            "pending_url": reverse("admin:credits_purchase_changelist")
            + "?status__exact=requested",
        },
    )
