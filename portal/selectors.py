"""Reads for the end-user pages and the widget: everything scoped to one user."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from credits.models import CreditPackage, Grant, LedgerEntry, Purchase
from credits.selectors import AccountSummary, active_grants_filter
from payments.models import Payment
from payments.selectors import purchase_payload
from payments.services import provider_get
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


def daily_consumption(
    *, user_id: int, start: date, end: date, model: str = ""
) -> list[tuple[date, int]]:
    """Credits used per local day from start to end (inclusive), days without use as 0: from the
    ledger (what the statement totals add up), or from the calls of one model."""
    zone = timezone.get_current_timezone()
    low = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    high = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    if model:
        calls = (
            CallRecord.objects.filter(
                user_id=user_id, model=model, created_at__gte=low, created_at__lt=high
            )
            .annotate(day=TruncDate("created_at", tzinfo=zone))
            .values("day")
            .annotate(total=Sum("credits"))
        )
        used = {row["day"]: row["total"] for row in calls}
    else:
        entries = (
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
        used = {row["day"]: -row["total"] for row in entries}
    days = (end - start).days + 1
    return [
        (start + timedelta(days=n), used.get(start + timedelta(days=n), 0)) for n in range(days)
    ]


def purchases_list(*, user_id: int, limit: int = 20) -> list[Purchase]:
    return list(
        Purchase.objects.filter(user_id=user_id)
        .select_related("package", "payment")
        .order_by("-created_at")[:limit]
    )


def packages_on_sale() -> list[CreditPackage]:
    return list(CreditPackage.objects.filter(active=True).order_by("credits", "id"))


def checkout_method() -> str:
    """How a package is bought now: `pix` when a payment provider is configured, else a `manual`
    request that finance confirms."""
    return "pix" if provider_get() is not None else "manual"


def purchase_pending(*, user_id: int) -> Purchase | None:
    """The newest purchase still waiting for the person to pay: a manual request, or a PIX
    charge that can still be paid."""
    can_pay = Q(payment__isnull=True) | Q(
        payment__status=Payment.Status.PENDING, payment__expires_at__gt=timezone.now()
    )
    return (
        Purchase.objects.select_related("payment", "package")
        .filter(can_pay, user_id=user_id, status=Purchase.Status.REQUESTED)
        .order_by("-created_at", "-id")
        .first()
    )


@dataclass(frozen=True)
class Renewal:
    at: datetime
    days: int  # local calendar days from today (0: today)
    credits: int  # the plan's allowance the renewal grants
    expiring: int  # what is left of the plan's credits of this cycle, which expire then


def renewal_outlook(*, user_id: int, summary: AccountSummary) -> Renewal | None:
    """What the next renewal brings and takes away; None without a plan that grants credits."""
    if summary.renews_at is None or summary.plan is None:
        return None
    allowance = summary.plan.monthly_allowance
    now = timezone.now()
    expiring = Grant.objects.filter(
        account_id=user_id,
        source=Grant.Source.PLAN_CYCLE,
        expires_at__gt=now,
        expires_at__lte=summary.renews_at,
    ).aggregate(left=Sum("remaining", default=0))["left"]
    if allowance <= 0 and expiring <= 0:
        return None
    days = (timezone.localdate(summary.renews_at) - timezone.localdate(now)).days
    return Renewal(summary.renews_at, max(days, 0), allowance, expiring)


@dataclass
class StatementLine:
    at: datetime  # the last entry's time
    text: str  # what it was; empty for a run of calls
    calls: int  # how many calls a consumption line sums (0: not consumption)
    credits: int
    balance_after: int


def statement_lines(*, entries: list[LedgerEntry], describe) -> list[StatementLine]:
    """The statement's entries for print: each movement on its own line, except calls, which
    are summed per run of the same local day, so the running balance still reads line by line."""
    lines: list[StatementLine] = []
    for entry in entries:
        last = lines[-1] if lines else None
        if entry.kind == LedgerEntry.Kind.USAGE:
            same_day = (
                last is not None
                and last.calls
                and (timezone.localdate(last.at) == timezone.localdate(entry.created_at))
            )
            if same_day and last is not None:
                last.at, last.calls = entry.created_at, last.calls + 1
                last.credits += entry.amount
                last.balance_after = entry.balance_after
                continue
            lines.append(StatementLine(entry.created_at, "", 1, entry.amount, entry.balance_after))
        else:
            lines.append(
                StatementLine(
                    entry.created_at, describe(entry), 0, entry.amount, entry.balance_after
                )
            )
    return lines


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
    renewal = renewal_outlook(user_id=user_id, summary=summary)
    pending = purchase_pending(user_id=user_id)
    return {
        "available": summary.available,
        "balance": summary.balance,
        "held": summary.held,
        "granted": summary.granted,
        "used_percent": str(summary.used_percent),
        "state": summary.state,
        "plan": {"slug": plan.slug, "name": plan.name} if plan else None,
        "renews_at": summary.renews_at.isoformat() if summary.renews_at else None,
        "renewal": (
            {
                "at": renewal.at.isoformat(),
                "days": renewal.days,
                "credits": renewal.credits,
                "expiring": renewal.expiring,
            }
            if renewal
            else None
        ),
        "alert_threshold": summary.alert_threshold,
        "alert_key": alert_crossing_key(user_id=user_id),
        "statement_url": public_url(reverse("portal:statement")),
        "purchase_url": public_url(reverse("portal:purchase")),
        "purchase_email": settings.SOLARIS_PURCHASE_EMAIL,
        "payment_method": checkout_method(),
        "pending_purchase": (
            dict(
                purchase_payload(purchase=pending),
                url=public_url(reverse("portal:order", args=[pending.pk])),
            )
            if pending
            else None
        ),
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
