"""Reads behind the gauges /metrics computes at scrape time: a few aggregate queries over the
credits and notifications tables, and the last periodic ledger check."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Case, CharField, Count, Min, Q, Sum, Value, When
from django.utils import timezone

from credits.models import Hold, Purchase
from monitoring.models import LedgerCheck
from notifications.models import Notification


@dataclass(frozen=True)
class OpenHolds:
    count: int
    credits: int
    oldest_age_seconds: float


def holds_open(*, now: datetime | None = None) -> OpenHolds:
    now = now or timezone.now()
    found = Hold.objects.filter(status=Hold.Status.OPEN).aggregate(
        count=Count("pk"), credits=Sum("amount", default=0), oldest=Min("created_at")
    )
    oldest = found["oldest"]
    age = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    return OpenHolds(found["count"], found["credits"], age)


def notifications_by_kind_and_state() -> dict[tuple[str, str], int]:
    """Every notification by kind and delivery state: sent, pending (not tried, or being tried),
    retrying (failed at least once, attempts left) or failed (attempts exhausted)."""
    delivery = Case(
        When(sent_at__isnull=False, then=Value("sent")),
        When(attempts__gte=settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS, then=Value("failed")),
        When(Q(attempts__gt=0) & ~Q(last_error=""), then=Value("retrying")),
        default=Value("pending"),
        output_field=CharField(),
    )
    rows = (
        Notification.objects.order_by()
        .annotate(delivery=delivery)
        .values("kind", "delivery")
        .annotate(n=Count("pk"))
        .values_list("kind", "delivery", "n")
    )
    return {(kind, state): n for kind, state, n in rows}


def purchases_by_status() -> dict[str, int]:
    rows = Purchase.objects.order_by().values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def ledger_check_last() -> LedgerCheck | None:
    return LedgerCheck.objects.first()
