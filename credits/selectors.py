"""Reads of credits: the account summary every page and header shows, statements, the ledger check.

The rules behind the numbers (available, used percent, the blocked line, the state) are
credits.rules; everything here that reports them computes them through `position_from`.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.db.models import F, Q, Sum
from django.utils import timezone

from credits import rules
from credits.models import Account, Grant, Hold, LedgerEntry, ModelPrice, Plan, Subscription
from kernel.local_cache import TtlCache


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


# Normal, then alert, then blocked: an account is notified when it rises past what it was last
# notified of (credits.services.outbox).
STATE_RANK: dict[str, int] = {
    Account.State.NORMAL: 0,
    Account.State.ALERT: 1,
    Account.State.BLOCKED: 2,
}

# Per process, short TTL (kernel/local_cache.py): read on every proxied call and credit event.
_subscriptions: TtlCache[Subscription] = TtlCache("subscriptions")
_default_plans: TtlCache[Plan] = TtlCache("default plan")
_lines: TtlCache[int] = TtlCache("blocked lines")
_all_lines: TtlCache[dict[int | None, int]] = TtlCache("blocked lines of every plan")


def subscription_of(*, user_id: int) -> Subscription | None:
    # The loaders are lambdas: building a queryset costs more than the cache hit it would be for.
    return _subscriptions.get(
        user_id, lambda: Subscription.objects.select_related("plan").filter(user_id=user_id).first()
    )


def default_plan() -> Plan | None:
    """The plan new users get, and the one a user without a subscription is on."""
    return _default_plans.get(
        "default", lambda: Plan.objects.filter(is_default=True, active=True).first()
    )


def member_plan(*, subscription: Subscription | None) -> Plan | None:
    """The plan of the user `subscription` belongs to: its plan, or the default plan without one."""
    return subscription.plan if subscription is not None else default_plan()


def _line_settings() -> tuple[int, int]:
    return settings.SOLARIS_BLOCKED_PROMPT_TOKENS, settings.SOLARIS_MIN_ANSWER_TOKENS


def _weights() -> list[tuple[str, Decimal, Decimal]]:
    return list(
        ModelPrice.objects.filter(active=True).values_list("model", "input_weight", "output_weight")
    )


def _line(plan: Plan | None, weights: list[tuple[str, Decimal, Decimal]]) -> int:
    if plan is None or not plan.active:
        return rules.blocked_line(weights=[])  # an inactive plan allows no model
    return rules.blocked_line(
        weights=[(inp, out) for model, inp, out in weights if plan.allows(model)]
    )


def blocked_line_of(*, plan: Plan | None) -> int:
    """The blocked line of a plan (credits.rules.blocked_line over the priced models it allows)."""
    key = (plan.pk if plan else None, *_line_settings())
    # The loader always gives a line (at least 1), so the cache never answers None here.
    return cast(int, _lines.get(key, lambda: _line(plan, _weights())))


def line_for(*, subscription: Subscription | None) -> int:
    """The blocked line of the user `subscription` belongs to (None: a user without one)."""
    return blocked_line_of(plan=member_plan(subscription=subscription))


def blocked_lines() -> dict[int | None, int]:
    """The blocked line of every plan by id, and under None the one of users without a
    subscription (the default plan's), for reads over many users (2 queries, then cached)."""
    return cast(dict[int | None, int], _all_lines.get(_line_settings(), _all_lines_load))


def _all_lines_load() -> dict[int | None, int]:
    weights = _weights()
    plans = list(Plan.objects.all())
    lines: dict[int | None, int] = {plan.pk: _line(plan, weights) for plan in plans}
    default = next((plan for plan in plans if plan.is_default and plan.active), None)
    lines[None] = _line(default, weights)
    return lines


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


@dataclass(frozen=True)
class CreditPosition:
    available: int
    granted: int
    used: int
    used_percent: Decimal
    state: str


def position_from(*, held: int, debt: int, totals: GrantTotals, line: int) -> CreditPosition:
    """Available, used percent and state from an account's numbers, its grant totals and its
    plan's blocked line: the one place credits.rules are applied to an account."""
    available = rules.available(
        left=totals.left, expired_left=totals.expired_left, held=held, debt=debt
    )
    used = totals.granted - totals.left
    percent = rules.used_percent(granted=totals.granted, used=used, available=available)
    return CreditPosition(
        available=available,
        granted=totals.granted,
        used=used,
        used_percent=percent,
        state=rules.credit_state(available=available, used_percent=percent, blocked_line=line),
    )


def summary_from(
    *,
    account: Account,
    totals: GrantTotals,
    subscription: Subscription | None,
    grants: list[Grant] | None = None,
) -> AccountSummary:
    """The summary of an account already read (or locked), given its subscription (None: the user
    has none, and is on the default plan), without another query once the plan's line is cached."""
    plan = member_plan(subscription=subscription)
    position = position_from(
        held=account.held,
        debt=account.debt,
        totals=totals,
        line=blocked_line_of(plan=plan),
    )
    return AccountSummary(
        available=position.available,
        balance=account.balance,
        held=account.held,
        debt=account.debt,
        granted=position.granted,
        used=position.used,
        used_percent=position.used_percent,
        state=position.state,
        plan=plan,
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


def credit_position(*, user_id: int, account: Account | None = None) -> CreditPosition:
    """Available, used percent and state (1 query given the locked account, else 2, once the
    plan's line is cached): cheap enough to run inside a service that holds the account lock."""
    if account is None:
        held, debt = Account.objects.values_list("held", "debt").get(pk=user_id)
    else:
        held, debt = account.held, account.debt
    totals = grant_totals(account_id=user_id, now=timezone.now())
    line = line_for(subscription=subscription_of(user_id=user_id))
    return position_from(held=held, debt=debt, totals=totals, line=line)


def grant_key(idempotency_key: str) -> str:
    """The ledger key of a manual or promo grant made with this idempotency key."""
    return f"grant:{idempotency_key}"


def grant_already_made(*, idempotency_key: str) -> bool:
    """Whether credits_grant with this key already granted (a repeat returns that grant)."""
    return LedgerEntry.objects.filter(idempotency_key=grant_key(idempotency_key)).exists()
