"""Grants: credits given to an account (manual, promo; purchases and plan cycles through their own
services), taken back by an adjustment, and expired when their time comes."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits.models import Grant, LedgerEntry, Purchase
from credits.rules import expiry_reserve
from credits.selectors import grant_key
from credits.services.ledger import AccountBook, account_lock, require_key
from credits.services.outbox import notification_credit_state


def due_grants(account_id, now: datetime):
    return Grant.objects.filter(account_id=account_id, expires_at__lte=now, remaining__gt=0)


def expire_due(book: AccountBook, now: datetime) -> int:
    """Book the expiry of every grant of this account whose time has come; returns credits expired.

    Credits that open holds still need (because the active grants cannot cover them) stay on the
    expired grants until those calls settle: a call admitted before the expiry is paid with the
    credits it was admitted against, and the balance never drops below what is held.
    """
    account = book.account
    due = list(due_grants(account.pk, now).order_by("expires_at", "id"))
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
        book.book(
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


def grant_create(
    book: AccountBook,
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
    """A grant on the locked account, once per ledger key; written through (flushed) on return."""
    account = book.account
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
    repaid = book.repay(amount)
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
    book.book(
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
    expire_due(book, now)
    book.flush()
    notification_credit_state(account=account, credits_added=True)
    return grant


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
    require_key(idempotency_key)
    if source not in (Grant.Source.MANUAL, Grant.Source.PROMO):
        raise ValidationError(
            _("Plan and purchase credits are granted by their own services."), code="source"
        )
    now = now or timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError(_("The expiry must be in the future."), code="expires_at")
    book = AccountBook(account_lock(user_id=user.pk))
    expire_due(book, now)
    grant = grant_create(
        book,
        amount=amount,
        source=source,
        idempotency_key=grant_key(idempotency_key),
        expires_at=expires_at,
        reason=reason,
        created_by=created_by,
        now=now,
    )
    book.flush()
    return grant


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
    require_key(idempotency_key)
    if not reason or not reason.strip():
        raise ValidationError(_("A correction needs a reason."), code="reason")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount >= 0:
        raise ValidationError(
            _("An adjustment takes credits back: the amount must be negative."), code="amount"
        )
    now = now or timezone.now()
    book = AccountBook(account_lock(user_id=user.pk))
    key = f"adjustment:{idempotency_key}"
    existing = LedgerEntry.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.account_id != book.account.pk or existing.amount != amount:
            raise ValidationError(
                _("This idempotency key was already used for a different adjustment."),
                code="conflict",
            )
        return existing
    expire_due(book, now)
    if -amount > book.available:
        raise ValidationError(
            _("Only %(available)s credits are available to take back.")
            % {"available": max(book.available, 0)},
            code="available",
        )
    book.draw(-amount)
    entry = book.book(
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        idempotency_key=key,
        reason=reason,
        created_by=created_by,
        now=now,
    )
    book.flush()
    return entry


def grants_expire(*, now: datetime | None = None) -> int:
    """Expire every grant whose time has come, one account per transaction."""
    now = now or timezone.now()
    due = Grant.objects.filter(expires_at__lte=now, remaining__gt=0)
    account_ids = sorted(set(due.values_list("account_id", flat=True)))
    total = 0
    for account_id in account_ids:
        with transaction.atomic():
            book = AccountBook(account_lock(user_id=account_id))
            total += expire_due(book, now)
            book.flush()
    return total
