"""Purchases: a request to buy credits, confirmed (the credits granted), cancelled or refunded.

Two refunds: `purchase_refund` takes back what is left of a manual purchase's grant (the money is
returned outside Solaris); `purchase_refund_credits` takes back exactly the credits a payment
provider returned the money for, the part no longer on the grant as debt (docs/payments.md).
"""

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits.models import CreditPackage, Grant, LedgerEntry, Purchase
from credits.services.grants import expire_due, grant_create
from credits.services.ledger import AccountBook, account_lock, require_key
from credits.services.outbox import notification_purchase_confirmed, notification_purchase_requested

logger = logging.getLogger(__name__)


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
    The same key twice returns the first request; the same key for something else is refused.

    A manual request e-mails the purchase mailbox (someone must confirm the payment); an online
    one does not: its payment confirms it, and the administrators have nothing to do.
    """
    require_key(idempotency_key)
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
    if method == Purchase.Method.MANUAL:
        notification_purchase_requested(purchase=purchase)
    return purchase


def _lock_purchase(purchase: Purchase) -> tuple[AccountBook, Purchase]:
    account = account_lock(user_id=purchase.user_id)
    return AccountBook(account), Purchase.objects.select_for_update().get(pk=purchase.pk)


@transaction.atomic
def purchase_confirm(
    *,
    purchase: Purchase,
    confirmed_by: User | None,
    payment_reference: str = "",
    now: datetime | None = None,
) -> Purchase:
    """Payment received: grant the credits. Confirming twice grants once."""
    book, purchase = _lock_purchase(purchase)
    if purchase.status == Purchase.Status.CREDITED:
        return purchase
    if purchase.status not in (Purchase.Status.REQUESTED, Purchase.Status.PAID):
        raise ValidationError(
            _("A %(status)s purchase cannot be confirmed.")
            % {"status": purchase.get_status_display()},
            code="status",
        )
    now = now or timezone.now()
    expire_due(book, now)
    expires_at = now + timedelta(days=purchase.validity_days) if purchase.validity_days else None
    grant_create(
        book,
        amount=purchase.credits,
        source=Grant.Source.PURCHASE,
        idempotency_key=f"purchase:{purchase.pk}",
        expires_at=expires_at,
        reason=_("Purchase #%(id)s") % {"id": purchase.pk},
        created_by=confirmed_by,
        purchase=purchase,
        now=now,
    )
    book.flush()
    purchase.status = Purchase.Status.CREDITED
    purchase.paid_at = purchase.paid_at or now
    purchase.confirmed_by = confirmed_by
    purchase.payment_reference = payment_reference or purchase.payment_reference
    purchase.save(
        update_fields=["status", "paid_at", "confirmed_by", "payment_reference", "updated_at"]
    )
    notification_purchase_confirmed(purchase=purchase)
    return purchase


@transaction.atomic
def purchase_cancel(*, purchase: Purchase, cancelled_by: User | None) -> Purchase:
    _book, purchase = _lock_purchase(purchase)
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
    """Take back what is left of a manual purchase's grant (what was already spent stays spent).

    Refused while calls in progress hold those credits: taking them would leave the holds uncovered.
    A purchase paid online is refunded through its payment, which returns the money first.
    """
    book, purchase = _lock_purchase(purchase)
    if purchase.status == Purchase.Status.REFUNDED:
        return purchase
    if purchase.method == Purchase.Method.ONLINE:
        raise ValidationError(
            _("This purchase was paid by PIX: refund it through its payment."), code="online"
        )
    if purchase.status != Purchase.Status.CREDITED:
        raise ValidationError(_("Only a credited purchase can be refunded."), code="status")
    now = now or timezone.now()
    expire_due(book, now)
    grant = Grant.objects.get(purchase=purchase)
    if grant.remaining > 0:
        if grant.remaining > book.available:
            raise ValidationError(
                _("Calls in progress are using these credits; try the refund again in a minute."),
                code="held",
            )
        book.book(
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
    book.flush()
    purchase.status = Purchase.Status.REFUNDED
    purchase.save(update_fields=["status", "updated_at"])
    return purchase


@transaction.atomic
def purchase_refund_credits(
    *,
    purchase: Purchase,
    credits: int,
    refunded_by: User | None,
    idempotency_key: str,
    reason: str = "",
    now: datetime | None = None,
) -> Purchase:
    """Take back exactly `credits` of a credited purchase, whose money was returned: from what is
    left of its grant, and the rest (credits already spent or expired) as debt, paid from the
    account's next grant. One refund entry, once per key; the purchase becomes refunded.

    Refused for more credits than the purchase granted, and while calls in progress hold credits
    the refund would take (they must stay covered: the caller tries again once they end).
    """
    require_key(idempotency_key)
    if isinstance(credits, bool) or not isinstance(credits, int) or credits <= 0:
        raise ValidationError(_("The amount must be a positive number of credits."), code="amount")
    book, purchase = _lock_purchase(purchase)
    key = f"purchase-refund:{idempotency_key}"
    existing = LedgerEntry.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.purchase_id != purchase.pk or existing.amount != -credits:
            raise ValidationError(
                _("This idempotency key was already used for a different refund."),
                code="conflict",
            )
        return purchase
    if purchase.status != Purchase.Status.CREDITED:
        raise ValidationError(_("Only a credited purchase can be refunded."), code="status")
    if credits > purchase.credits:
        raise ValidationError(
            _("A refund takes back at most the %(credits)s credits the purchase granted.")
            % {"credits": purchase.credits},
            code="amount",
        )
    now = now or timezone.now()
    expire_due(book, now)
    if book.account.held and credits > book.available:
        raise ValidationError(
            _("Calls in progress are using these credits; try the refund again in a minute."),
            code="held",
        )
    grant = Grant.objects.get(purchase=purchase)
    book.take(grant, credits)
    book.book(
        kind=LedgerEntry.Kind.REFUND,
        amount=-credits,
        idempotency_key=key,
        grant=grant,
        purchase=purchase,
        reason=reason,
        created_by=refunded_by,
        now=now,
    )
    book.flush()
    purchase.status = Purchase.Status.REFUNDED
    purchase.save(update_fields=["status", "updated_at"])
    return purchase
