"""Reads for the end-user pages and the widget: everything scoped to one user."""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from credits.models import CreditPackage, Grant, LedgerEntry, Purchase
from credits.selectors import AccountSummary, active_grants_filter
from proxy.models import CallRecord


def calls_list(*, user_id: int, start: datetime, end: datetime, model: str = "") -> QuerySet:
    """The user's calls in [start, end), newest first, optionally for one model."""
    calls = CallRecord.objects.filter(user_id=user_id, created_at__gte=start, created_at__lt=end)
    if model:
        calls = calls.filter(model=model)
    return calls.order_by("-created_at", "-id")


def call_models(*, user_id: int) -> list[str]:
    return list(
        CallRecord.objects.filter(user_id=user_id)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def daily_consumption(*, user_id: int, start: date, end: date) -> list[tuple[date, int]]:
    """Credits used per local day from start to end (inclusive), days without use as 0."""
    zone = timezone.get_current_timezone()
    low = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    high = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    rows = (
        LedgerEntry.objects.filter(
            account_id=user_id,
            kind=LedgerEntry.Kind.USAGE,
            created_at__gte=low,
            created_at__lt=high,
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("amount"))
    )
    used = {row["day"]: -row["total"] for row in rows}
    days = (end - start).days + 1
    return [
        (start + timedelta(days=n), used.get(start + timedelta(days=n), 0)) for n in range(days)
    ]


def purchases_list(*, user_id: int, limit: int = 20) -> list[Purchase]:
    return list(
        Purchase.objects.filter(user_id=user_id)
        .select_related("package")
        .order_by("-created_at")[:limit]
    )


def packages_on_sale() -> list[CreditPackage]:
    return list(CreditPackage.objects.filter(active=True).order_by("credits", "id"))


def alert_crossing_key(*, user_id: int) -> str:
    """Names the current crossing of the alert threshold, so a dismissed alert stays dismissed.

    Usage only falls back below the threshold when credits arrive (top-up, purchase, renewal),
    and each of those is a new grant: the newest active grant therefore marks the crossing.
    """
    newest = Grant.objects.filter(
        active_grants_filter(timezone.now()), account_id=user_id
    ).aggregate(newest=Max("id"))["newest"]
    return f"{user_id}-{newest or 0}"


def public_url(path: str) -> str:
    return settings.SOLARIS_PUBLIC_URL + path


def balance_payload(*, user_id: int, summary: AccountSummary) -> dict:
    """What the balance API and the widget show: the summary's numbers, nothing recomputed."""
    plan = summary.plan
    return {
        "available": summary.available,
        "balance": summary.balance,
        "held": summary.held,
        "used_percent": str(summary.used_percent),
        "state": summary.state,
        "plan": {"slug": plan.slug, "name": plan.name} if plan else None,
        "renews_at": summary.renews_at.isoformat() if summary.renews_at else None,
        "alert_threshold": summary.alert_threshold,
        "alert_key": alert_crossing_key(user_id=user_id),
        "statement_url": public_url(reverse("portal:statement")),
        "purchase_url": public_url(reverse("portal:purchase")),
        "purchase_email": settings.SOLARIS_PURCHASE_EMAIL,
        "packages": [
            {
                "id": package.pk,
                "name": package.name,
                "credits": package.credits,
                "price_cents": package.price_cents,
                "validity_days": package.validity_days,
                "request_url": public_url(reverse("portal:purchase-confirm", args=[package.pk])),
            }
            for package in packages_on_sale()
        ],
    }
