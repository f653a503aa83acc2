"""Every change to credits (CONTRACT §3). Each service is one short transaction that locks the
account row first (`select_for_update`), so concurrent calls and processes serialise per account
and spending can never exceed what was granted. No network call ever happens inside one. On
PostgreSQL the common admission, settlement and release are one SQL function call that takes the
same lock first (the fast path, at the end of the holds section).
"""

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import connection, transaction
from django.db.models import Exists, F, Model, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits import pricing
from credits.models import (
    Account,
    CreditPackage,
    Grant,
    Hold,
    LedgerEntry,
    ModelPrice,
    Plan,
    Purchase,
    Subscription,
)
from credits.selectors import (
    AccountSummary,
    GrantTotals,
    expiry_reserve,
    grant_key,
    grant_totals,
    position_from,
    summary_from,
)
from notifications import services as notification_services

logger = logging.getLogger(__name__)


class InsufficientCredits(Exception):
    def __init__(self, *, available: int, needed: int):
        super().__init__(f"available {available}, needed {needed}")
        self.available = available
        self.needed = needed


@dataclass(frozen=True)
class Admission:
    hold: Hold
    max_tokens: int  # per choice; lower than asked when the balance only covers a shorter answer
    clamped: bool
    summary: AccountSummary | None = None  # after the hold, when asked for


@dataclass(frozen=True)
class Settlement:
    entry: LedgerEntry | None
    summary: AccountSummary


def add_months(moment: datetime, months: int = 1) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- the locked core: every function below runs inside a transaction holding the account lock ---


def account_lock(*, user_id: int) -> Account:
    """The user's account row, created if missing, locked until the transaction ends.

    One SELECT … FOR UPDATE when the account exists (the common case)."""
    try:
        return Account.objects.select_for_update().get(user_id=user_id)
    except Account.DoesNotExist:
        Account.objects.get_or_create(user_id=user_id)
        return Account.objects.select_for_update().get(user_id=user_id)


def _due_grants(account_id, now: datetime):
    return Grant.objects.filter(account_id=account_id, expires_at__lte=now, remaining__gt=0)


def _append(
    account: Account,
    *,
    kind: str,
    amount: int,
    idempotency_key: str,
    now: datetime | None = None,
    **fields,
) -> LedgerEntry:
    account.balance += amount
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        idempotency_key=idempotency_key,
        created_at=now or timezone.now(),
        **fields,
    )
    # The locked account in memory is current: one UPDATE writes every cached number.
    Account.objects.filter(pk=account.pk).update(
        balance=account.balance, debt=account.debt, held=account.held
    )
    return entry


def _expire_due(account: Account, now: datetime) -> int:
    """Book the expiry of every grant of this account whose time has come; returns credits expired.

    Credits that open holds still need (because the active grants cannot cover them) stay on the
    expired grants until those calls settle: a call admitted before the expiry is paid with the
    credits it was admitted against, and the balance never drops below what is held.
    """
    due = list(_due_grants(account.pk, now).order_by("expires_at", "id"))
    if not due:
        return 0
    active_left = (
        account.grants.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).aggregate(
            left=Sum("remaining")
        )["left"]
        or 0
    )
    keep = expiry_reserve(
        held=account.held,
        debt=account.debt,
        active_left=active_left,
        expired_left=sum(grant.remaining for grant in due),
    )
    expired = 0
    for grant in due:
        kept = min(grant.remaining, keep)
        keep -= kept
        amount = grant.remaining - kept
        if amount == 0:
            continue
        _append(
            account,
            kind=LedgerEntry.Kind.EXPIRY,
            amount=-amount,
            # A grant may expire in parts (while held), and its remainder only ever shrinks.
            idempotency_key=f"expiry:{grant.pk}:{grant.remaining}",
            grant=grant,
            now=now,
        )
        Grant.objects.filter(pk=grant.pk).update(remaining=kept)
        expired += amount
    return expired


def _draw(account: Account, amount: int) -> None:
    """Take `amount` from the grants, the one that expires first first; the rest is debt.

    Called right after `_expire_due`, so the only expired grants with a remainder left are the
    ones reserved for open holds, and those come first.
    """
    left = amount
    grants = account.grants.filter(remaining__gt=0).order_by(
        F("expires_at").asc(nulls_last=True), "id"
    )
    for grant in grants:
        take = min(grant.remaining, left)
        Grant.objects.filter(pk=grant.pk).update(remaining=F("remaining") - take)
        left -= take
        if left == 0:
            break
    account.debt += left


def _grant(
    account: Account,
    *,
    amount: int,
    source: str,
    idempotency_key: str,
    now: datetime,
    expires_at: datetime | None = None,
    reason: str = "",
    created_by: User | None = None,
    purchase: Purchase | None = None,
) -> Grant:
    existing = (
        LedgerEntry.objects.filter(idempotency_key=idempotency_key).select_related("grant").first()
    )
    if existing is not None:
        if existing.account_id != account.pk or existing.amount != amount or existing.grant is None:
            raise ValidationError(
                _("This idempotency key was already used for a different grant."), code="conflict"
            )
        return existing.grant
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(_("The amount must be a positive number of credits."), code="amount")
    # Usage booked beyond the grants (debt) is paid from the next grant first.
    repaid = min(account.debt, amount)
    account.debt -= repaid
    grant = Grant.objects.create(
        account=account,
        source=source,
        amount=amount,
        remaining=amount - repaid,
        expires_at=expires_at,
        reason=reason,
        created_by=created_by,
        purchase=purchase,
        created_at=now,
    )
    _append(
        account,
        kind=LedgerEntry.Kind.GRANT,
        amount=amount,
        idempotency_key=idempotency_key,
        grant=grant,
        purchase=purchase,
        reason=reason,
        created_by=created_by,
        now=now,
    )
    # Credits kept on expired grants for open holds are no longer needed once this one covers them.
    _expire_due(account, now)
    notification_services.notification_credit_state(account=account, credits_added=True)
    return grant


def _require_key(idempotency_key: str) -> None:
    if not idempotency_key or not idempotency_key.strip():
        raise ValidationError(_("An idempotency key is required."), code="idempotency_key")


# --- grants and purchases ---


@transaction.atomic
def credits_grant(
    *,
    user: User,
    amount: int,
    idempotency_key: str,
    source: str = Grant.Source.MANUAL,
    expires_at: datetime | None = None,
    reason: str = "",
    created_by: User | None = None,
    now: datetime | None = None,
) -> Grant:
    """Grant credits once per idempotency key (the same request twice grants once; the same key
    with another amount or for another user is refused)."""
    _require_key(idempotency_key)
    if source not in (Grant.Source.MANUAL, Grant.Source.PROMO):
        raise ValidationError(
            _("Plan and purchase credits are granted by their own services."), code="source"
        )
    now = now or timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError(_("The expiry must be in the future."), code="expires_at")
    account = account_lock(user_id=user.pk)
    _expire_due(account, now)
    return _grant(
        account,
        amount=amount,
        source=source,
        idempotency_key=grant_key(idempotency_key),
        expires_at=expires_at,
        reason=reason,
        created_by=created_by,
        now=now,
    )


@transaction.atomic
def credits_adjust(
    *,
    user: User,
    amount: int,
    idempotency_key: str,
    reason: str,
    created_by: User | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Take credits back (a correction; adding credits is a grant). Drawn like usage, once per key,
    and never more than is available, so calls in flight stay covered."""
    _require_key(idempotency_key)
    if not reason or not reason.strip():
        raise ValidationError(_("A correction needs a reason."), code="reason")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount >= 0:
        raise ValidationError(
            _("An adjustment takes credits back: the amount must be negative."), code="amount"
        )
    now = now or timezone.now()
    account = account_lock(user_id=user.pk)
    key = f"adjustment:{idempotency_key}"
    existing = LedgerEntry.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.account_id != account.pk or existing.amount != amount:
            raise ValidationError(
                _("This idempotency key was already used for a different adjustment."),
                code="conflict",
            )
        return existing
    _expire_due(account, now)
    if -amount > account.available:
        raise ValidationError(
            _("Only %(available)s credits are available to take back.")
            % {"available": max(account.available, 0)},
            code="available",
        )
    _draw(account, -amount)
    return _append(
        account,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        idempotency_key=key,
        reason=reason,
        created_by=created_by,
        now=now,
    )


@transaction.atomic
def purchase_request(
    *,
    user: User,
    idempotency_key: str,
    package: CreditPackage | None = None,
    credits: int | None = None,
    price_cents: int | None = None,
    method: str = Purchase.Method.MANUAL,
) -> Purchase:
    """Record a request to buy a package (or a custom amount); nothing is granted until confirmed.
    The same key twice returns the first request; the same key for something else is refused."""
    _require_key(idempotency_key)
    validity = None
    if package is not None:
        if not package.active:
            raise ValidationError(_("This package is not on sale."), code="package")
        credits, price_cents, validity = package.credits, package.price_cents, package.validity_days
    if isinstance(credits, bool) or not isinstance(credits, int) or credits <= 0:
        raise ValidationError(_("The amount must be a positive number of credits."), code="amount")
    if isinstance(price_cents, bool) or not isinstance(price_cents, int) or price_cents < 0:
        raise ValidationError(_("The price must be zero or more."), code="price")
    existing = Purchase.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        same = (
            existing.user_id == user.pk
            and existing.package_id == (package.pk if package else None)
            and existing.credits == credits
            and existing.price_cents == price_cents
        )
        if not same:
            raise ValidationError(
                _("This idempotency key was already used for a different purchase."),
                code="conflict",
            )
        return existing
    purchase = Purchase.objects.create(
        user=user,
        package=package,
        credits=credits,
        price_cents=price_cents,
        validity_days=validity,
        method=method,
        idempotency_key=idempotency_key,
    )
    notification_services.notification_purchase_requested(purchase=purchase)
    return purchase


def _lock_purchase(purchase: Purchase) -> tuple[Account, Purchase]:
    account = account_lock(user_id=purchase.user_id)
    return account, Purchase.objects.select_for_update().get(pk=purchase.pk)


@transaction.atomic
def purchase_mark_paid(
    *, purchase: Purchase, payment_reference: str = "", now: datetime | None = None
) -> Purchase:
    """Payment seen (e.g. by a checkout webhook) but credits not granted yet. Repeating is harmless."""
    _account, purchase = _lock_purchase(purchase)
    if purchase.status in (Purchase.Status.PAID, Purchase.Status.CREDITED):
        return purchase
    if purchase.status != Purchase.Status.REQUESTED:
        raise ValidationError(
            _("A %(status)s purchase cannot be marked as paid.")
            % {"status": purchase.get_status_display()},
            code="status",
        )
    purchase.status = Purchase.Status.PAID
    purchase.paid_at = now or timezone.now()
    purchase.payment_reference = payment_reference or purchase.payment_reference
    purchase.save(update_fields=["status", "paid_at", "payment_reference", "updated_at"])
    return purchase


@transaction.atomic
def purchase_confirm(
    *,
    purchase: Purchase,
    confirmed_by: User | None,
    payment_reference: str = "",
    now: datetime | None = None,
) -> Purchase:
    """Payment received: grant the credits. Confirming twice grants once."""
    account, purchase = _lock_purchase(purchase)
    if purchase.status == Purchase.Status.CREDITED:
        return purchase
    if purchase.status not in (Purchase.Status.REQUESTED, Purchase.Status.PAID):
        raise ValidationError(
            _("A %(status)s purchase cannot be confirmed.")
            % {"status": purchase.get_status_display()},
            code="status",
        )
    now = now or timezone.now()
    _expire_due(account, now)
    expires_at = now + timedelta(days=purchase.validity_days) if purchase.validity_days else None
    _grant(
        account,
        amount=purchase.credits,
        source=Grant.Source.PURCHASE,
        idempotency_key=f"purchase:{purchase.pk}",
        expires_at=expires_at,
        reason=_("Purchase #%(id)s") % {"id": purchase.pk},
        created_by=confirmed_by,
        purchase=purchase,
        now=now,
    )
    purchase.status = Purchase.Status.CREDITED
    purchase.paid_at = purchase.paid_at or now
    purchase.confirmed_by = confirmed_by
    purchase.payment_reference = payment_reference or purchase.payment_reference
    purchase.save(
        update_fields=["status", "paid_at", "confirmed_by", "payment_reference", "updated_at"]
    )
    notification_services.notification_purchase_confirmed(purchase=purchase)
    return purchase


@transaction.atomic
def purchase_cancel(*, purchase: Purchase, cancelled_by: User | None) -> Purchase:
    _account, purchase = _lock_purchase(purchase)
    if purchase.status == Purchase.Status.CANCELLED:
        return purchase
    if purchase.status not in (Purchase.Status.REQUESTED, Purchase.Status.PAID):
        raise ValidationError(
            _("Only a purchase not yet credited can be cancelled."), code="status"
        )
    purchase.status = Purchase.Status.CANCELLED
    purchase.save(update_fields=["status", "updated_at"])
    logger.info(
        "purchase cancelled",
        extra={"purchase_id": purchase.pk, "by": getattr(cancelled_by, "pk", None)},
    )
    return purchase


@transaction.atomic
def purchase_refund(
    *,
    purchase: Purchase,
    refunded_by: User | None,
    reason: str = "",
    now: datetime | None = None,
) -> Purchase:
    """Take back what is left of the purchase's grant (what was already spent stays spent).

    Refused while calls in progress hold those credits: taking them would leave the holds uncovered.
    """
    account, purchase = _lock_purchase(purchase)
    if purchase.status == Purchase.Status.REFUNDED:
        return purchase
    if purchase.status != Purchase.Status.CREDITED:
        raise ValidationError(_("Only a credited purchase can be refunded."), code="status")
    now = now or timezone.now()
    _expire_due(account, now)
    grant = Grant.objects.get(purchase=purchase)
    if grant.remaining > 0:
        if grant.remaining > account.available:
            raise ValidationError(
                _("Calls in progress are using these credits; try the refund again in a minute."),
                code="held",
            )
        _append(
            account,
            kind=LedgerEntry.Kind.REFUND,
            amount=-grant.remaining,
            idempotency_key=f"refund:{purchase.pk}",
            grant=grant,
            purchase=purchase,
            reason=reason,
            created_by=refunded_by,
            now=now,
        )
        Grant.objects.filter(pk=grant.pk).update(remaining=0)
    purchase.status = Purchase.Status.REFUNDED
    purchase.save(update_fields=["status", "updated_at"])
    return purchase


# --- holds: admission and settlement of calls ---


def hold_create(
    *,
    user: User,
    request_id: str,
    price: ModelPrice,
    prompt_tokens: int,
    max_tokens: int,
    n: int = 1,
    now: datetime | None = None,
    summary_of: Subscription | None = None,
    with_summary: bool = False,
) -> Admission:
    """Reserve the worst case of a call; lower max_tokens if only a shorter answer fits.

    Raises InsufficientCredits when not even the prompt and SOLARIS_MIN_ANSWER_TOKENS fit.
    `with_summary` adds the account summary after the hold (one aggregate, in the same transaction;
    its plan and renewal come from `summary_of`, the subscription the caller already read).
    """
    now = now or timezone.now()
    if _fast_path() and prompt_tokens >= 0 and max_tokens >= 1 and n >= 1:
        admission = _hold_open_fast(
            user_id=user.pk,
            request_id=request_id,
            price=price,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            n=n,
            now=now,
            summary_of=summary_of,
            with_summary=with_summary,
        )
        if admission is not None:
            return admission
    return _hold_create_locked(
        user=user,
        request_id=request_id,
        price=price,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        n=n,
        now=now,
        summary_of=summary_of,
        with_summary=with_summary,
    )


@transaction.atomic
def _hold_create_locked(
    *,
    user: User,
    request_id: str,
    price: ModelPrice,
    prompt_tokens: int,
    max_tokens: int,
    n: int,
    now: datetime,
    summary_of: Subscription | None,
    with_summary: bool,
) -> Admission:
    """hold_create for every case, through the ORM inside one transaction."""
    if prompt_tokens < 0 or max_tokens < 1 or n < 1:
        raise ValidationError(
            _("A call needs a prompt of 0 or more tokens and room for at least 1 answer token."),
            code="tokens",
        )
    account = account_lock(user_id=user.pk)
    # Read after the lock, so nothing committed before it is missed; both checks in one query.
    duplicate, due = (
        Account.objects.filter(pk=account.pk)
        .annotate(
            duplicate=Exists(Hold.objects.filter(request_id=request_id)),
            due=Exists(_due_grants(OuterRef("pk"), now)),
        )
        .values_list("duplicate", "due")
        .get()
    )
    if duplicate:
        raise ValidationError(_("This request id was already admitted."), code="duplicate")
    if due:
        _expire_due(account, now)
    available = account.available
    weights = {"input_weight": price.input_weight, "output_weight": price.output_weight}
    worst = pricing.cost(prompt_tokens=prompt_tokens, completion_tokens=max_tokens * n, **weights)
    allowed = max_tokens
    if worst > available:
        allowed = pricing.max_completion_within(
            budget=available, prompt_tokens=prompt_tokens, n=n, **weights
        )
        if allowed < min(settings.SOLARIS_MIN_ANSWER_TOKENS, max_tokens):
            raise InsufficientCredits(available=max(available, 0), needed=worst)
        worst = pricing.cost(prompt_tokens=prompt_tokens, completion_tokens=allowed * n, **weights)
    hold = Hold.objects.create(
        account=account,
        request_id=request_id,
        model=price.model,
        amount=worst,
        input_weight=price.input_weight,
        output_weight=price.output_weight,
        created_at=now,
    )
    account.held += worst
    Account.objects.filter(pk=account.pk).update(held=account.held)
    summary = None
    if with_summary:
        totals = grant_totals(account_id=account.pk, now=now)
        summary = summary_from(account=account, totals=totals, subscription=summary_of)
    return Admission(hold=hold, max_tokens=allowed, clamped=allowed < max_tokens, summary=summary)


def _lock_hold(request_id: str, now: datetime) -> tuple[Account, Hold]:
    """The hold's account, locked (one statement), then the hold with `expiry_due`: whether any
    grant of the account is due to expire at `now` (read after the lock, so it is current)."""
    holder = Hold.objects.filter(request_id=request_id).values("account_id")[:1]
    try:
        account = Account.objects.select_for_update().get(pk=Subquery(holder))
    except Account.DoesNotExist:
        raise Hold.DoesNotExist(f"no hold {request_id!r}") from None
    hold = Hold.objects.annotate(expiry_due=Exists(_due_grants(OuterRef("account_id"), now))).get(
        request_id=request_id
    )
    return account, hold


def _close(
    account: Account, hold: Hold, status: str, now: datetime, *, held_written: bool = False
) -> None:
    if hold.status == Hold.Status.OPEN and not held_written:
        account.held -= hold.amount
        Account.objects.filter(pk=account.pk).update(held=account.held)
    hold.status = status
    hold.closed_at = now
    hold.save(update_fields=["status", "closed_at"])


def hold_settle(
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime | None = None,
) -> LedgerEntry | None:
    """Replace the hold by the real cost. Idempotent: a second settle returns the first's entry.

    A cost above the hold is still booked exactly and flagged; beyond the grants it becomes debt.
    A call whose hold the reaper already released is still charged (and flagged): it did run.
    """
    return hold_settle_summarised(
        request_id=request_id,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        now=now,
    ).entry


def hold_settle_summarised(
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime | None = None,
    summary_of: Subscription | None = None,
    answered_by: ModelPrice | None = None,
) -> Settlement:
    """hold_settle, plus the account summary after it, computed in the same transaction from the
    locked account and the one grants aggregate the credit-state notification needs anyway.

    `answered_by`: the price of the model that actually answered, when the upstream answered from
    another model than the one admitted; the call costs the higher of the two prices."""
    now = now or timezone.now()
    if _fast_path() and prompt_tokens >= 0 and completion_tokens >= 0 and answered_by is None:
        settlement = _hold_settle_fast(
            request_id=request_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            now=now,
            summary_of=summary_of,
        )
        if settlement is not None:
            return settlement
    return _hold_settle_locked(
        request_id=request_id,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        now=now,
        summary_of=summary_of,
        answered_by=answered_by,
    )


@transaction.atomic
def _hold_settle_locked(
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime,
    summary_of: Subscription | None,
    answered_by: ModelPrice | None = None,
) -> Settlement:
    """hold_settle_summarised for every case, through the ORM inside one transaction."""
    account, hold = _lock_hold(request_id, now)
    if hold.status == Hold.Status.SETTLED:
        entry = LedgerEntry.objects.filter(hold=hold).first()
        totals = grant_totals(account_id=account.pk, now=now)
        return Settlement(entry, summary_from(account=account, totals=totals, subscription=None))
    charge = pricing.cost(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        input_weight=hold.input_weight,
        output_weight=hold.output_weight,
    )
    reason = hold.model
    if answered_by is not None:
        # Never billed below the price of the model that answered (its excess is flagged below).
        charge = max(
            charge,
            pricing.cost(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                input_weight=answered_by.input_weight,
                output_weight=answered_by.output_weight,
            ),
        )
        reason = f"{hold.model} → {answered_by.model}"[:300]
    was_open = hold.status == Hold.Status.OPEN
    entry = None
    if charge > 0:
        # Expire first while the hold still reserves its credits, then draw them.
        if hold.expiry_due:  # type: ignore[attr-defined]
            _expire_due(account, now)
        _draw(account, charge)
        if was_open:
            account.held -= hold.amount  # written by _append's UPDATE below
        flagged = charge > hold.amount or not was_open
        if flagged:
            logger.warning(
                "usage above its hold",
                extra={"hold_amount": hold.amount, "charged": charge, "was_open": was_open},
            )
        entry = _append(
            account,
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            idempotency_key=f"usage:{request_id}",
            hold=hold,
            flagged=flagged,
            reason=reason,
            now=now,
        )
        _close(account, hold, Hold.Status.SETTLED, now, held_written=True)
    elif was_open:
        _close(account, hold, Hold.Status.SETTLED, now)
    # Nothing was due when the lock was taken: drawing and closing cannot make anything due.
    if hold.expiry_due:  # type: ignore[attr-defined]
        _expire_due(account, now)
    totals = grant_totals(account_id=account.pk, now=now)
    notification_services.notification_credit_state(
        account=account, position=position_from(held=account.held, debt=account.debt, totals=totals)
    )
    summary = summary_from(account=account, totals=totals, subscription=summary_of)
    return Settlement(entry, summary)


def hold_release(*, request_id: str, now: datetime | None = None) -> None:
    """Charge nothing and free the hold (upstream failed). Releasing twice is harmless."""
    now = now or timezone.now()
    if _fast_path() and _hold_release_fast(request_id=request_id, now=now):
        return
    _hold_release_locked(request_id=request_id, now=now)


@transaction.atomic
def _hold_release_locked(*, request_id: str, now: datetime) -> None:
    account, hold = _lock_hold(request_id, now)
    if hold.status == Hold.Status.OPEN:
        _close(account, hold, Hold.Status.RELEASED, now)
        if hold.expiry_due:  # type: ignore[attr-defined]
            _expire_due(account, now)


# --- the fast path: the common call in one round trip on PostgreSQL (docs/credits.md) ---
# The SQL functions (migration 0003) lock the account first and decline, writing nothing, whenever
# the call is not the common case; the ORM services above then handle it, as the only rule book.


_M = TypeVar("_M", bound=Model)


def _fast_path() -> bool:
    return settings.SOLARIS_SQL_FAST_PATH and connection.vendor == "postgresql"


def _loaded(instance: _M) -> _M:
    """A model instance built from RETURNING values: a saved row, as if read from the database."""
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def _hold_open_fast(
    *,
    user_id: int,
    request_id: str,
    price: ModelPrice,
    prompt_tokens: int,
    max_tokens: int,
    n: int,
    now: datetime,
    summary_of: Subscription | None,
    with_summary: bool,
) -> Admission | None:
    """The admission when the account exists, the request id is new, no grant is due to expire
    and the whole worst case fits; None, with nothing written, otherwise."""
    worst = pricing.cost(
        prompt_tokens=prompt_tokens,
        completion_tokens=max_tokens * n,
        input_weight=price.input_weight,
        output_weight=price.output_weight,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM solaris_hold_open(%s::bigint, %s::text, %s::text, %s::bigint, "
            "%s::numeric, %s::numeric, %s::timestamptz, %s::boolean)",
            [
                user_id,
                request_id,
                price.model,
                worst,
                Decimal(price.input_weight),
                Decimal(price.output_weight),
                now,
                with_summary,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    hold_id, balance, held, debt, notified, granted, left, expired_left = row
    hold = Hold(
        id=hold_id,
        account_id=user_id,
        request_id=request_id,
        model=price.model,
        amount=worst,
        input_weight=price.input_weight,
        output_weight=price.output_weight,
        status=Hold.Status.OPEN,
        created_at=now,
    )
    summary = None
    if with_summary:
        account = Account(
            user_id=user_id, balance=balance, held=held, debt=debt, notified_state=notified
        )
        summary = summary_from(
            account=_loaded(account),
            totals=GrantTotals(granted=granted, left=left, expired_left=expired_left),
            subscription=summary_of,
        )
    return Admission(hold=_loaded(hold), max_tokens=max_tokens, clamped=False, summary=summary)


def _hold_settle_fast(
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime,
    summary_of: Subscription | None,
) -> Settlement | None:
    """The settlement of an open hold when no grant is due to expire, the cost is within the hold
    and the grants cover it (no flag, no debt); None, with nothing written, otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM solaris_hold_settle(%s::text, %s::bigint, %s::bigint, %s::timestamptz)",
            [request_id, prompt_tokens, completion_tokens, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    (
        hold_id,
        account_id,
        model,
        amount,
        input_weight,
        output_weight,
        created_at,
        charge,
        entry_id,
        balance,
        held,
        debt,
        notified,
        granted,
        left,
        expired_left,
    ) = row
    hold = _loaded(
        Hold(
            id=hold_id,
            account_id=account_id,
            request_id=request_id,
            model=model,
            amount=amount,
            input_weight=input_weight,
            output_weight=output_weight,
            status=Hold.Status.SETTLED,
            created_at=created_at,
            closed_at=now,
        )
    )
    entry = None
    if entry_id is not None:
        entry = LedgerEntry(
            id=entry_id,
            account_id=account_id,
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            balance_after=balance,
            idempotency_key=f"usage:{request_id}",
            hold=hold,
            flagged=False,
            reason=model,
            created_at=now,
        )
        entry = _loaded(entry)
    account = _loaded(
        Account(user_id=account_id, balance=balance, held=held, debt=debt, notified_state=notified)
    )
    totals = GrantTotals(granted=granted, left=left, expired_left=expired_left)
    state = position_from(held=held, debt=debt, totals=totals).state
    ranks = notification_services.STATE_RANK
    if ranks[state] > ranks[notified]:
        _credit_state_catch_up(account_id=account_id, now=now)
    return Settlement(entry, summary_from(account=account, totals=totals, subscription=summary_of))


@transaction.atomic
def _credit_state_catch_up(*, account_id: int, now: datetime) -> None:
    """The notification a fast settlement crossed into, decided again under the account lock, so
    racing settlements notify once (rare: only when the state rises past the last notified)."""
    account = account_lock(user_id=account_id)
    totals = grant_totals(account_id=account_id, now=now)
    notification_services.notification_credit_state(
        account=account, position=position_from(held=account.held, debt=account.debt, totals=totals)
    )


def _hold_release_fast(*, request_id: str, now: datetime) -> bool:
    """Whether the release is done: the hold was open with no grant due (or was already closed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT solaris_hold_release(%s::text, %s::timestamptz)", [request_id, now])
        return bool(cursor.fetchone()[0])


def holds_reap(*, max_age_seconds: int | None = None, now: datetime | None = None) -> int:
    """Release holds left open by a crashed process; each in its own short transaction."""
    max_age = settings.SOLARIS_HOLD_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=max_age)
    stale = Hold.objects.filter(status=Hold.Status.OPEN, created_at__lt=cutoff)
    request_ids = list(stale.order_by("id").values_list("request_id", flat=True))
    for request_id in request_ids:
        hold_release(request_id=request_id, now=now)
    return len(request_ids)


# --- expiry, plans and cycles ---


def grants_expire(*, now: datetime | None = None) -> int:
    """Expire every grant whose time has come, one account per transaction."""
    now = now or timezone.now()
    due = Grant.objects.filter(expires_at__lte=now, remaining__gt=0)
    account_ids = sorted(set(due.values_list("account_id", flat=True)))
    total = 0
    for account_id in account_ids:
        with transaction.atomic():
            total += _expire_due(account_lock(user_id=account_id), now)
    return total


def _plan_for(plan_slug: str | None) -> Plan | None:
    if plan_slug:
        try:
            return Plan.objects.get(slug=plan_slug)
        except Plan.DoesNotExist:
            raise ValidationError(
                _("Unknown plan: %(slug)s") % {"slug": plan_slug}, code="plan"
            ) from None
    return Plan.objects.filter(is_default=True, active=True).first()


def _grant_cycle(
    account: Account, subscription: Subscription, now: datetime, created_by: User | None = None
) -> None:
    if subscription.plan.monthly_allowance <= 0:
        return
    _grant(
        account,
        amount=subscription.plan.monthly_allowance,
        source=Grant.Source.PLAN_CYCLE,
        idempotency_key=f"plan:{account.pk}:{subscription.cycle_start.isoformat()}",
        expires_at=subscription.cycle_end,
        reason=subscription.plan.name,
        created_by=created_by,
        now=now,
    )


@transaction.atomic
def subscription_start(*, user: User, plan_slug: str | None = None) -> Subscription | None:
    """Open the user's account and put them on a plan (the default one unless named)."""
    account = account_lock(user_id=user.pk)
    existing = Subscription.objects.filter(user=user).first()
    if existing is not None:
        return existing
    plan = _plan_for(plan_slug)
    if plan is None:
        return None
    now = timezone.now()
    subscription = Subscription.objects.create(
        user=user, plan=plan, cycle_start=now, cycle_end=add_months(now)
    )
    _grant_cycle(account, subscription, now)
    return subscription


@transaction.atomic
def subscription_change_plan(
    *, user: User, plan: Plan, changed_by: User | None = None
) -> Subscription:
    """Move a user to another plan now: the old plan's credits expire, a new cycle starts."""
    account = account_lock(user_id=user.pk)
    now = timezone.now()
    subscription = Subscription.objects.filter(user=user).first()
    if subscription is None:
        subscription = Subscription(user=user)
    else:
        account.grants.filter(source=Grant.Source.PLAN_CYCLE, remaining__gt=0).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        ).update(expires_at=now)
        _expire_due(account, now)
    subscription.plan = plan
    subscription.cycle_start = now
    subscription.cycle_end = add_months(now)
    subscription.save()
    _grant_cycle(account, subscription, now, created_by=changed_by)
    logger.info(
        "plan changed",
        extra={"user_id": user.pk, "plan": plan.slug, "by": getattr(changed_by, "pk", None)},
    )
    return subscription


def cycles_renew(*, now: datetime | None = None) -> int:
    """Start the next cycle of every subscription whose cycle ended. Safe to run concurrently:
    each subscription is re-read under its account's lock, and the cycle grant's key is unique."""
    now = now or timezone.now()
    user_ids = list(
        Subscription.objects.filter(cycle_end__lte=now)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    renewed = 0
    for user_id in user_ids:
        with transaction.atomic():
            account = account_lock(user_id=user_id)
            subscription = Subscription.objects.select_related("plan").get(user_id=user_id)
            if subscription.cycle_end > now:
                continue  # another worker renewed it first
            # The old cycle's allowance ends with the cycle, whatever its grant says.
            account.grants.filter(source=Grant.Source.PLAN_CYCLE, remaining__gt=0).filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=subscription.cycle_end)
            ).update(expires_at=subscription.cycle_end)
            _expire_due(account, now)
            while subscription.cycle_end <= now:
                subscription.cycle_start = subscription.cycle_end
                subscription.cycle_end = add_months(subscription.cycle_start)
            subscription.save(update_fields=["cycle_start", "cycle_end"])
            _grant_cycle(account, subscription, now)
            notification_services.notification_cycle_renewed(subscription=subscription)
            renewed += 1
    return renewed


_WEIGHT_FORMAT = DecimalValidator(max_digits=14, decimal_places=6)


@transaction.atomic
def model_price_set(
    *,
    model: str,
    input_weight: Decimal,
    output_weight: Decimal,
    max_output_tokens: int | None = None,
    active: bool = True,
) -> ModelPrice:
    if not model or not model.strip():
        raise ValidationError(_("The model name is required."), code="model")
    for weight in (input_weight, output_weight):
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight <= 0:
            raise ValidationError(_("Weights must be greater than zero."), code="weights")
        _WEIGHT_FORMAT(weight)
    if max_output_tokens is not None and max_output_tokens < 1:
        raise ValidationError(_("The output limit must be at least 1 token."), code="max_tokens")
    price, _created = ModelPrice.objects.update_or_create(
        model=model.strip(),
        defaults={
            "input_weight": input_weight,
            "output_weight": output_weight,
            "max_output_tokens": max_output_tokens,
            "active": active,
        },
    )
    return price


# Placeholder weight for imported models: they stay inactive until an admin sets real weights.
IMPORTED_WEIGHT = Decimal(1)


@transaction.atomic
def model_prices_import(*, models: list[str]) -> list[ModelPrice]:
    """Add every model not priced yet as an inactive price (weights to be set by an admin)."""
    known = set(ModelPrice.objects.filter(model__in=models).values_list("model", flat=True))
    new = sorted({name.strip() for name in models if name.strip()} - known)
    return ModelPrice.objects.bulk_create(
        ModelPrice(
            model=name, input_weight=IMPORTED_WEIGHT, output_weight=IMPORTED_WEIGHT, active=False
        )
        for name in new
    )
