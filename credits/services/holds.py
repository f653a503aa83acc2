"""Holds: the admission of a call (its worst case reserved) and its settlement (the real cost booked)
or release (nothing charged), each one short transaction under the account lock. No network call
ever happens inside one. On PostgreSQL the common case is one SQL function call that takes the same
lock first (credits.services.holds_pg); everything else, and every other database, runs here.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits import pricing, rules
from credits.models import Account, Hold, LedgerEntry, ModelPrice, Subscription
from credits.selectors import (
    AccountSummary,
    grant_totals,
    line_for,
    position_from,
    subscription_of,
    summary_from,
)
from credits.services import holds_pg
from credits.services.grants import due_grants, expire_due
from credits.services.ledger import AccountBook, account_lock
from credits.services.outbox import notification_credit_state

logger = logging.getLogger(__name__)


class InsufficientCredits(Exception):
    """Not even the prompt and the smallest answer fit. `blocked`: the account is blocked (it cannot
    pay a short call, credits.rules.credit_state), not just short for this request."""

    def __init__(self, *, available: int, needed: int, blocked: bool):
        super().__init__(f"available {available}, needed {needed}, blocked {blocked}")
        self.available = available
        self.needed = needed
        self.blocked = blocked


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
    its plan and renewal come from `summary_of`, the subscription the caller already read, else
    from the cached one).
    """
    now = now or timezone.now()
    if holds_pg.fast_path() and prompt_tokens >= 0 and max_tokens >= 1 and n >= 1:
        opened = holds_pg.hold_open_fast(
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
        if opened is not None:
            hold, summary = opened
            return Admission(hold=hold, max_tokens=max_tokens, clamped=False, summary=summary)
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
    book = AccountBook(account_lock(user_id=user.pk))
    account = book.account
    # Read after the lock, so nothing committed before it is missed; both checks in one query.
    duplicate, due = (
        Account.objects.filter(pk=account.pk)
        .annotate(
            duplicate=Exists(Hold.objects.filter(request_id=request_id)),
            due=Exists(due_grants(OuterRef("pk"), now)),
        )
        .values_list("duplicate", "due")
        .get()
    )
    if duplicate:
        raise ValidationError(_("This request id was already admitted."), code="duplicate")
    if due:
        expire_due(book, now)
    available = book.available
    weights = {"input_weight": price.input_weight, "output_weight": price.output_weight}
    worst = pricing.cost(prompt_tokens=prompt_tokens, completion_tokens=max_tokens * n, **weights)
    allowed = max_tokens
    if worst > available:
        allowed = pricing.max_completion_within(
            budget=available, prompt_tokens=prompt_tokens, n=n, **weights
        )
        if allowed < min(settings.SOLARIS_MIN_ANSWER_TOKENS, max_tokens):
            line = line_for(subscription=summary_of or subscription_of(user_id=user.pk))
            raise InsufficientCredits(
                available=max(available, 0),
                needed=worst,
                blocked=rules.blocked(available=available, blocked_line=line),
            )
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
    book.hold(worst)
    book.flush()
    summary = None
    if with_summary:
        totals = grant_totals(account_id=account.pk, now=now)
        subscription = summary_of or subscription_of(user_id=account.pk)
        summary = summary_from(account=account, totals=totals, subscription=subscription)
    return Admission(hold=hold, max_tokens=allowed, clamped=allowed < max_tokens, summary=summary)


def _lock_hold(request_id: str, now: datetime) -> tuple[AccountBook, Hold]:
    """The hold's account, locked (one statement), then the hold with `expiry_due`: whether any
    grant of the account is due to expire at `now` (read after the lock, so it is current)."""
    holder = Hold.objects.filter(request_id=request_id).values("account_id")[:1]
    try:
        account = Account.objects.select_for_update().get(pk=Subquery(holder))
    except Account.DoesNotExist:
        raise Hold.DoesNotExist(f"no hold {request_id!r}") from None
    hold = Hold.objects.annotate(expiry_due=Exists(due_grants(OuterRef("account_id"), now))).get(
        request_id=request_id
    )
    return AccountBook(account), hold


def _close(book: AccountBook, hold: Hold, status: str, now: datetime) -> None:
    """Close the hold; an open one stops reserving its credits."""
    if hold.status == Hold.Status.OPEN:
        book.release(hold.amount)
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
    fast = holds_pg.fast_path() and answered_by is None
    if fast and prompt_tokens >= 0 and completion_tokens >= 0:
        settled = holds_pg.hold_settle_fast(
            request_id=request_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            now=now,
            summary_of=summary_of,
        )
        if settled is not None:
            return Settlement(*settled)
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
    book, hold = _lock_hold(request_id, now)
    account = book.account
    subscription = summary_of or subscription_of(user_id=account.pk)
    if hold.status == Hold.Status.SETTLED:
        entry = LedgerEntry.objects.filter(hold=hold).first()
        totals = grant_totals(account_id=account.pk, now=now)
        return Settlement(
            entry, summary_from(account=account, totals=totals, subscription=subscription)
        )
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
            expire_due(book, now)
        book.draw(charge)
        flagged = charge > hold.amount or not was_open
        if flagged:
            logger.warning(
                "usage above its hold",
                extra={"hold_amount": hold.amount, "charged": charge, "was_open": was_open},
            )
        entry = book.book(
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            idempotency_key=f"usage:{request_id}",
            hold=hold,
            flagged=flagged,
            reason=reason,
            now=now,
        )
        _close(book, hold, Hold.Status.SETTLED, now)
    elif was_open:
        _close(book, hold, Hold.Status.SETTLED, now)
    # Nothing was due when the lock was taken: drawing and closing cannot make anything due.
    if hold.expiry_due:  # type: ignore[attr-defined]
        expire_due(book, now)
    book.flush()
    totals = grant_totals(account_id=account.pk, now=now)
    position = position_from(
        held=account.held,
        debt=account.debt,
        totals=totals,
        line=line_for(subscription=subscription),
    )
    notification_credit_state(account=account, position=position)
    summary = summary_from(account=account, totals=totals, subscription=subscription)
    return Settlement(entry, summary)


def hold_release(*, request_id: str, now: datetime | None = None) -> None:
    """Charge nothing and free the hold (upstream failed). Releasing twice is harmless."""
    now = now or timezone.now()
    if holds_pg.fast_path() and holds_pg.hold_release_fast(request_id=request_id, now=now):
        return
    _hold_release_locked(request_id=request_id, now=now)


@transaction.atomic
def _hold_release_locked(*, request_id: str, now: datetime) -> None:
    book, hold = _lock_hold(request_id, now)
    if hold.status == Hold.Status.OPEN:
        _close(book, hold, Hold.Status.RELEASED, now)
        if hold.expiry_due:  # type: ignore[attr-defined]
            expire_due(book, now)
    book.flush()


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
