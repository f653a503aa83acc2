"""Reads for the admin dashboard, the user list and the admin API. Every function here runs a
fixed number of queries, whatever the number of users, calls or ledger entries."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncDate
from django.utils import timezone

from accounts.models import ApiKey, User
from credits import rules
from credits.models import Account, Grant, LedgerEntry, Purchase
from credits.selectors import (
    AccountSummary,
    account_summary,
    active_grants_filter,
    blocked_lines,
)
from proxy.models import CallRecord

BASIS_POINTS = 10_000  # used percent kept as an integer number of hundredths of a percent
_INTEGER = BigIntegerField()
PERIODS = (7, 30, 90)


def _sql(value: Any) -> Any:
    return value if hasattr(value, "resolve_expression") else Value(value, output_field=_INTEGER)


def _sql_least(first: Any, second: Any) -> Least:
    return Least(_sql(first), _sql(second), output_field=_INTEGER)


def _sql_greatest(first: Any, second: Any) -> Greatest:
    return Greatest(_sql(first), _sql(second), output_field=_INTEGER)


def users_with_credits(queryset: QuerySet[User] | None = None) -> QuerySet[User]:
    """Users annotated, in SQL, with what account_summary computes for one user.

    credits_granted / credits_left / credits_expired_left (the grant totals), credits_available
    (credits.rules.available itself, given SQL's least and greatest), used_bp (used percent in
    basis points, rounded down like credits.rules.used_percent), blocked_line (their plan's, or the
    default plan's without a subscription), credit_state (credits.rules.credit_state, held to it by
    tests/credits/test_rules.py) and last_call_at: the list can sort and filter on them and stays
    one query however many users it shows (the plans' blocked lines come from a per-process cache).
    """
    now = timezone.now()
    queryset = queryset if queryset is not None else User.objects.all()
    per_account = Grant.objects.filter(account_id=OuterRef("pk")).order_by().values("account_id")
    not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    granted = per_account.filter(active_grants_filter(now)).annotate(total=Sum("amount"))
    left = per_account.filter(not_expired).annotate(total=Sum("remaining"))
    expired_left = per_account.filter(expires_at__lte=now).annotate(total=Sum("remaining"))
    last_call = CallRecord.objects.filter(user_id=OuterRef("pk")).order_by("-created_at")
    lines = blocked_lines()
    return (
        queryset.annotate(
            credits_granted=Coalesce(Subquery(granted.values("total"), output_field=_INTEGER), 0),
            credits_left=Coalesce(Subquery(left.values("total"), output_field=_INTEGER), 0),
            credits_expired_left=Coalesce(
                Subquery(expired_left.values("total"), output_field=_INTEGER), 0
            ),
            credits_held=Coalesce(F("account__held"), 0),
            credits_debt=Coalesce(F("account__debt"), 0),
            blocked_line=Case(
                When(subscription__isnull=True, then=Value(lines[None])),
                *[
                    When(subscription__plan_id=plan, then=Value(line))
                    for plan, line in lines.items()
                    if plan is not None
                ],
                default=Value(1),
                output_field=_INTEGER,
            ),
            last_call_at=Subquery(last_call.values("created_at")[:1]),
        )
        .annotate(
            credits_available=ExpressionWrapper(
                rules.available(
                    left=F("credits_left"),
                    expired_left=F("credits_expired_left"),
                    held=F("credits_held"),
                    debt=F("credits_debt"),
                    least=_sql_least,
                    greatest=_sql_greatest,
                ),
                output_field=_INTEGER,
            )
        )
        .annotate(
            used_bp=Case(
                When(
                    credits_granted__gt=0,
                    then=(F("credits_granted") - F("credits_left"))
                    * BASIS_POINTS
                    / F("credits_granted"),
                ),
                When(credits_available__lte=0, then=Value(BASIS_POINTS)),
                default=Value(0),
                output_field=_INTEGER,
            )
        )
        .annotate(
            credit_state=Case(
                When(
                    credits_available__lt=F("blocked_line"),
                    then=Value(Account.State.BLOCKED.value),
                ),
                When(
                    used_bp__gte=settings.SOLARIS_ALERT_THRESHOLD * 100,
                    then=Value(Account.State.ALERT.value),
                ),
                default=Value(Account.State.NORMAL.value),
                output_field=CharField(),
            )
        )
    )


def used_percent_of(used_bp: int) -> Decimal:
    return (Decimal(used_bp) / 100).quantize(Decimal("0.01"))


def customers_by_state() -> dict[str, int]:
    """How many customers are in each credit state (one query); states with none are absent."""
    return dict(
        users_with_credits(User.objects.filter(account__isnull=False))  # type: ignore[misc]
        .order_by()
        .values("credit_state")
        .annotate(n=Count("pk"))
        .values_list("credit_state", "n")
    )


OPEN_PURCHASE = (Purchase.Status.REQUESTED, Purchase.Status.PAID)


def purchases_open(*, user_id: int) -> list[Purchase]:
    """The user's purchases waiting for payment (manual requests and PIX charges), oldest first:
    each one, once paid, grants its credits."""
    return list(
        Purchase.objects.filter(user_id=user_id, status__in=OPEN_PURCHASE)
        .select_related("package", "payment")
        .order_by("created_at", "id")
    )


def purchases_of(*, user_id: int, limit: int = 15) -> list[Purchase]:
    """The user's purchases, those waiting for payment first, then the newest."""
    waiting = Case(When(status__in=OPEN_PURCHASE, then=Value(0)), default=Value(1))
    return list(
        Purchase.objects.filter(user_id=user_id)
        .select_related("package", "payment")
        .order_by(waiting, "-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class UserOverview:
    summary: AccountSummary
    purchases: list[Purchase]
    api_keys: list[ApiKey]
    recent_calls: list[CallRecord]
    recent_entries: list[LedgerEntry]
    admin_history: list[LogEntry]


def user_overview(*, user_id: int, limit: int = 15) -> UserOverview:
    """What the admin's user page shows below the form (9 queries)."""
    user_type = ContentType.objects.get_for_model(User)
    return UserOverview(
        summary=account_summary(user_id=user_id, with_grants=True),
        purchases=purchases_of(user_id=user_id, limit=limit),
        api_keys=list(ApiKey.objects.filter(user_id=user_id).order_by("-created_at")),
        recent_calls=list(
            CallRecord.objects.filter(user_id=user_id).order_by("-created_at")[:limit]
        ),
        recent_entries=list(
            LedgerEntry.objects.filter(account_id=user_id)
            .select_related("created_by")
            .order_by("-id")[:limit]
        ),
        admin_history=list(
            LogEntry.objects.filter(content_type=user_type, object_id=str(user_id))
            .select_related("user")
            .order_by("-action_time")[:limit]
        ),
    )


@dataclass(frozen=True)
class Consumer:
    user_id: int
    email: str
    name: str
    credits: int


@dataclass(frozen=True)
class ModelUsage:
    model: str
    credits: int
    calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class DayUsage:
    day: date
    credits: int


@dataclass(frozen=True)
class Dashboard:
    days: int
    start: datetime
    consumed_today: int
    consumed_7_days: int
    consumed_30_days: int
    consumed_period: int
    active_users: int
    purchases_confirmed: int
    revenue_cents: int
    purchases_refunded: int
    purchases_pending: int
    customers: int
    users_alert: int
    users_blocked: int
    top_consumers: list[Consumer] = field(default_factory=list)
    per_model: list[ModelUsage] = field(default_factory=list)
    daily: list[DayUsage] = field(default_factory=list)


def _day_start(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard_get(*, days: int = 30, now: datetime | None = None, top: int = 10) -> Dashboard:
    """Every number of the dashboard page in 7 queries, for the last `days` days (today included)."""
    if days not in PERIODS:
        raise ValueError(f"days must be one of {PERIODS}")
    now = now or timezone.now()
    today = _day_start(now)
    start = today - timedelta(days=days - 1)
    usage = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE)
    in_period = usage.filter(created_at__gte=start)

    def spent(since: datetime) -> Sum:
        return Sum("amount", filter=Q(created_at__gte=since), default=0)

    totals = usage.filter(created_at__gte=min(start, today - timedelta(days=29))).aggregate(
        today=spent(today),
        week=spent(today - timedelta(days=6)),
        month=spent(today - timedelta(days=29)),
        period=spent(start),
        active=Count("account_id", distinct=True, filter=Q(created_at__gte=start)),
    )
    confirmed = Q(
        paid_at__gte=start, status__in=[Purchase.Status.CREDITED, Purchase.Status.REFUNDED]
    )
    purchases = Purchase.objects.aggregate(
        confirmed=Count("pk", filter=confirmed),
        revenue=Sum(
            "price_cents", filter=confirmed & Q(status=Purchase.Status.CREDITED), default=0
        ),
        refunded=Count("pk", filter=confirmed & Q(status=Purchase.Status.REFUNDED)),
        pending=Count("pk", filter=Q(status__in=[Purchase.Status.REQUESTED, Purchase.Status.PAID])),
    )
    states = customers_by_state()
    top_rows = (
        in_period.order_by()
        .values("account_id", "account__user__email", "account__user__name")
        .annotate(total=Sum("amount"))
        .order_by("total", "account_id")[:top]
    )
    model_credits = (
        in_period.order_by().values("hold__model").annotate(total=Sum("amount")).order_by("total")
    )
    model_calls = {
        row["model"]: row
        for row in CallRecord.objects.filter(created_at__gte=start)
        .order_by()
        .values("model")
        .annotate(
            calls=Count("pk"),
            prompt=Sum("prompt_tokens", default=0),
            completion=Sum("completion_tokens", default=0),
        )
    }
    per_model = []
    for row in model_credits:
        name = row["hold__model"] or "—"
        calls: dict[str, Any] = dict(model_calls.pop(name, {}))
        per_model.append(
            ModelUsage(
                name,
                -row["total"],
                calls.get("calls", 0),
                calls.get("prompt", 0),
                calls.get("completion", 0),
            )
        )
    per_model.extend(
        ModelUsage(name, 0, row["calls"], row["prompt"], row["completion"])
        for name, row in sorted(model_calls.items())
    )
    by_day = dict(
        in_period.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    first_day = start.date()
    daily = [
        DayUsage(first_day + timedelta(days=i), -by_day.get(first_day + timedelta(days=i), 0))
        for i in range(days)
    ]
    return Dashboard(
        days=days,
        start=start,
        consumed_today=-totals["today"],
        consumed_7_days=-totals["week"],
        consumed_30_days=-totals["month"],
        consumed_period=-totals["period"],
        active_users=totals["active"],
        purchases_confirmed=purchases["confirmed"],
        revenue_cents=purchases["revenue"],
        purchases_refunded=purchases["refunded"],
        purchases_pending=purchases["pending"],
        customers=sum(states.values()),
        users_alert=states.get(Account.State.ALERT, 0),
        users_blocked=states.get(Account.State.BLOCKED, 0),
        top_consumers=[
            Consumer(
                row["account_id"],
                row["account__user__email"],
                row["account__user__name"],
                -row["total"],
            )
            for row in top_rows
        ],
        per_model=per_model,
        daily=daily,
    )
