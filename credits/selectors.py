"""Reads of credits: the account summary every page and header shows, statements, the ledger check."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db.models import F, Q, Sum
from django.utils import timezone

from credits.models import Account, Grant, Hold, LedgerEntry, Plan, Subscription

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class AccountSummary:
    available: int
    balance: int
    held: int
    debt: int
    granted: int  # original total of the active grants
    used: int  # spent from the active grants
    used_percent: Decimal
    state: str
    plan: Plan | None
    renews_at: datetime | None
    alert_threshold: int
    grants: list[Grant] = field(default_factory=list)


def used_percent(*, granted: int, used: int, available: int) -> Decimal:
    if granted <= 0:
        return HUNDRED if available <= 0 else Decimal(0)
    return (Decimal(used) * HUNDRED / Decimal(granted)).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN
    )


# Normal, then alert, then blocked: an account is notified when it rises past what it was last
# notified of (credits.services.outbox).
STATE_RANK: dict[str, int] = {
    Account.State.NORMAL: 0,
    Account.State.ALERT: 1,
    Account.State.BLOCKED: 2,
}


def credit_state(*, used_percent: Decimal, available: int) -> str:
    if available <= 0:
        return Account.State.BLOCKED
    if used_percent >= settings.SOLARIS_ALERT_THRESHOLD:
        return Account.State.ALERT
    return Account.State.NORMAL


def expiry_reserve(*, held: int, debt: int, active_left: int, expired_left: int) -> int:
    """How much of the expired grants' remainder must wait for open holds before it expires:
    the part of what is held that the active grants (net of debt) cannot cover."""
    return min(expired_left, max(0, held + debt - active_left))


def active_grants_filter(now: datetime) -> Q:
    """Grants that count for the used percent: not expired, and not a spent grant without expiry."""
    not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    return not_expired & ~Q(expires_at__isnull=True, remaining=0)


@dataclass(frozen=True)
class GrantTotals:
    granted: int  # original total of the active grants
    left: int  # remaining on grants not expired
    expired_left: int  # remaining on expired grants (not booked yet, or kept for open holds)


def grant_totals(*, account_id: int, now: datetime) -> GrantTotals:
    """The one aggregate every credit number is computed from (1 query)."""
    expired = Q(expires_at__lte=now)
    totals = Grant.objects.filter(account_id=account_id).aggregate(
        granted=Sum("amount", filter=active_grants_filter(now), default=0),
        left=Sum("remaining", filter=~expired, default=0),
        expired_left=Sum("remaining", filter=expired, default=0),
    )
    return GrantTotals(**totals)


def summary_from(
    *,
    account: Account,
    totals: GrantTotals,
    subscription: Subscription | None,
    grants: list[Grant] | None = None,
) -> AccountSummary:
    """The summary of an account already read (or locked), without another query."""
    granted, left = totals.granted, totals.left
    reserve = expiry_reserve(
        held=account.held, debt=account.debt, active_left=left, expired_left=totals.expired_left
    )
    available = left + reserve - account.debt - account.held
    used = granted - left
    percent = used_percent(granted=granted, used=used, available=available)
    return AccountSummary(
        available=available,
        balance=account.balance,
        held=account.held,
        debt=account.debt,
        granted=granted,
        used=used,
        used_percent=percent,
        state=credit_state(used_percent=percent, available=available),
        plan=subscription.plan if subscription else None,
        renews_at=subscription.cycle_end if subscription else None,
        alert_threshold=settings.SOLARIS_ALERT_THRESHOLD,
        grants=grants or [],
    )


def account_summary(*, user_id: int, with_grants: bool = False) -> AccountSummary:
    """Available, used percent and state of one account (3 queries, 4 with the grants list).

    Computed from the grants as of now, so an expiry the beat task has not booked yet already
    counts, exactly as the next service call would book it.
    """
    now = timezone.now()
    account = Account.objects.filter(pk=user_id).first() or Account(user_id=user_id)
    totals = grant_totals(account_id=user_id, now=now)
    subscription = Subscription.objects.select_related("plan").filter(user_id=user_id).first()
    grants = None
    if with_grants:
        grants = list(
            Grant.objects.filter(account_id=user_id, remaining__gt=0)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by(F("expires_at").asc(nulls_last=True), "id")
        )
    return summary_from(account=account, totals=totals, subscription=subscription, grants=grants)


@dataclass(frozen=True)
class Statement:
    start: datetime
    end: datetime
    opening_balance: int
    closing_balance: int
    entries: list[LedgerEntry]
    totals: dict[str, int]  # signed sum per entry kind within the period


def statement(*, user_id: int, start: datetime, end: datetime) -> Statement:
    """Ledger entries in [start, end) with the balances around them (2 queries)."""
    before = (
        LedgerEntry.objects.filter(account_id=user_id, created_at__lt=start).order_by("-id").first()
    )
    entries = list(
        LedgerEntry.objects.filter(account_id=user_id, created_at__gte=start, created_at__lt=end)
        .select_related("created_by", "grant", "purchase", "hold")
        .order_by("id")
    )
    opening = before.balance_after if before else 0
    totals = {kind: 0 for kind in LedgerEntry.Kind.values}
    for entry in entries:
        totals[entry.kind] += entry.amount
    closing = entries[-1].balance_after if entries else opening
    return Statement(start, end, opening, closing, entries, totals)


@dataclass(frozen=True)
class LedgerViolation:
    account_id: int
    email: str
    problem: str


def ledger_violations() -> list[LedgerViolation]:
    """Accounts whose cached numbers disagree with the ledger, grants or holds (docs/credits.md)."""
    entry_sums = dict(
        LedgerEntry.objects.values_list("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    remaining_sums = dict(
        Grant.objects.values_list("account_id")
        .annotate(total=Sum("remaining"))
        .values_list("account_id", "total")
    )
    held_sums = dict(
        Hold.objects.filter(status=Hold.Status.OPEN)
        .values_list("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    violations = []
    for account in Account.objects.select_related("user").order_by("pk"):
        email = account.user.email
        ledger = entry_sums.get(account.pk, 0)
        if account.balance != ledger:
            violations.append(
                LedgerViolation(
                    account.pk, email, f"balance {account.balance} ≠ ledger sum {ledger}"
                )
            )
        grants = remaining_sums.get(account.pk, 0)
        if account.balance != grants - account.debt:
            violations.append(
                LedgerViolation(
                    account.pk,
                    email,
                    f"balance {account.balance} ≠ grants remaining {grants} − debt {account.debt}",
                )
            )
        held = held_sums.get(account.pk, 0)
        if account.held != held:
            violations.append(
                LedgerViolation(account.pk, email, f"held {account.held} ≠ open holds {held}")
            )
    out_of_range = Grant.objects.filter(Q(remaining__lt=0) | Q(remaining__gt=F("amount")))
    for grant in out_of_range.select_related("account__user"):
        violations.append(
            LedgerViolation(
                grant.account_id,
                grant.account.user.email,
                f"grant {grant.pk} remainder {grant.remaining} outside 0..{grant.amount}",
            )
        )
    return violations


@dataclass(frozen=True)
class CreditPosition:
    available: int
    granted: int
    used: int
    used_percent: Decimal
    state: str


def position_from(*, held: int, debt: int, totals: GrantTotals) -> CreditPosition:
    available = totals.left - debt - held
    used = totals.granted - totals.left
    percent = used_percent(granted=totals.granted, used=used, available=available)
    return CreditPosition(
        available=available,
        granted=totals.granted,
        used=used,
        used_percent=percent,
        state=credit_state(used_percent=percent, available=available),
    )


def credit_position(*, user_id: int, account: Account | None = None) -> CreditPosition:
    """Available, used percent and state (1 query given the locked account, else 2): cheap
    enough to run inside a service that already holds the account lock."""
    if account is None:
        held, debt = Account.objects.values_list("held", "debt").get(pk=user_id)
    else:
        held, debt = account.held, account.debt
    totals = grant_totals(account_id=user_id, now=timezone.now())
    return position_from(held=held, debt=debt, totals=totals)


def grant_key(idempotency_key: str) -> str:
    """The ledger key of a manual or promo grant made with this idempotency key."""
    return f"grant:{idempotency_key}"


def grant_already_made(*, idempotency_key: str) -> bool:
    """Whether credits_grant with this key already granted (a repeat returns that grant)."""
    return LedgerEntry.objects.filter(idempotency_key=grant_key(idempotency_key)).exists()
