"""Payments (docs/payments.md): PIX charges through the provider seam, the webhook, reconciliation
and refunds. Credits move only through credits.services (`purchase_request`, `purchase_confirm`,
`purchase_cancel`, `purchase_refund_credits`), inside the transaction that records what the provider said.

Locking: a payment's row is locked first (`select_for_update`); credits' services then lock the
account and the purchase, in that order everywhere. No transaction or lock is ever held across a
call to the provider: ask or read first, then lock and record. Nothing is granted from a
notification's body: the payment is always read back from the provider.
"""

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits import services as credit_services
from credits.models import CreditPackage, Purchase
from payments import mercadopago
from payments.models import Payment, PaymentRefund, Provider, WebhookDelivery
from payments.providers import (
    Outcome,
    PaymentNotFound,
    PaymentProvider,
    PixCharge,
    ProviderError,
    RemotePayment,
    RemoteRefund,
)
from payments.selectors import payment_of, refund_quote

logger = logging.getLogger(__name__)

# A pending charge is offered again only while the person still has time to pay it.
REUSE_MIN_LEFT = timedelta(minutes=5)
# A PIX paid in its last second settles within seconds; past this margin the charge is over.
EXPIRY_GRACE = timedelta(minutes=10)
RECONCILE_LIMIT = 200
# While its person polls, a pending charge is read back at most this often (per charge).
REFRESH_SECONDS = 10
OPEN_PURCHASE = (Purchase.Status.REQUESTED, Purchase.Status.PAID)
OPEN_REFUND = (PaymentRefund.Status.REQUESTED, PaymentRefund.Status.CONFIRMED)
# The notification fields worth keeping; the rest (and every header) is dropped.
WEBHOOK_FIELDS = ("id", "type", "action", "api_version", "live_mode", "date_created")


class PaymentUnavailable(Exception):
    """The provider did not answer; the same request may be made again (same idempotency key)."""


class PaymentRefused(Exception):
    """The provider refused the charge itself; its purchase was cancelled."""


class SignatureInvalid(Exception):
    """A webhook delivery not signed with our secret, or signed too long ago."""


@dataclass(frozen=True)
class Checkout:
    purchase: Purchase
    payment: Payment | None  # None: a manual purchase request
    created: bool  # False: the open purchase of this package was returned again


@dataclass
class Reconciliation:
    read: int = 0  # payments read back from the provider
    expired: int = 0  # charges whose creation was never answered, closed after their expiry
    refunds_sent: int = 0  # refund requests that had no answer, sent again
    failed: int = 0  # the provider did not answer for these; the next run tries again


def provider_get() -> PaymentProvider | None:
    """The configured provider: Mercado Pago when its access token is set; else purchases are
    manual requests."""
    return mercadopago.MercadoPago.from_settings()


def webhook_url() -> str:
    """Where the provider sends a charge's notifications. Mercado Pago only calls public https
    URLs, so a Solaris without one sends none (the account's webhook setting and reconciliation
    remain); `source_news=webhooks` asks for the signed notifications only."""
    public = settings.SOLARIS_PUBLIC_URL
    if not public.startswith("https://"):
        return ""
    return public + reverse("payments:mercadopago-webhook") + "?source_news=webhooks"


def _user_lock(user: User) -> None:
    """Serialise one person's purchase starts (a double click), nobody else's."""
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


# --- starting a purchase ---


def purchase_checkout(
    *, user: User, package: CreditPackage, now: datetime | None = None
) -> Checkout:
    """Buy a package: a PIX charge when a provider is configured, else a manual request.

    Asking again for the same package while its purchase is open returns that purchase, so a
    double click never makes two charges. Raises PaymentUnavailable (ask again: the same charge
    is retried with the same idempotency key) or PaymentRefused.
    """
    now = now or timezone.now()
    provider = provider_get()
    if provider is None:
        return _manual_checkout(user=user, package=package)
    payment, created = _pix_payment_open(user=user, package=package, provider=provider, now=now)
    if not payment.provider_payment_id:
        payment = _pix_charge_send(payment=payment, provider=provider, now=now)
    return Checkout(purchase=payment.purchase, payment=payment, created=created)


@transaction.atomic
def _manual_checkout(*, user: User, package: CreditPackage) -> Checkout:
    _user_lock(user)
    open_request = (
        Purchase.objects.filter(
            user=user,
            package=package,
            method=Purchase.Method.MANUAL,
            status=Purchase.Status.REQUESTED,
        )
        .order_by("-created_at")
        .first()
    )
    if open_request is not None:
        return Checkout(purchase=open_request, payment=None, created=False)
    purchase = credit_services.purchase_request(
        user=user, package=package, idempotency_key=f"api:{user.pk}:{uuid.uuid4().hex}"
    )
    return Checkout(purchase=purchase, payment=None, created=True)


@transaction.atomic
def _pix_payment_open(
    *, user: User, package: CreditPackage, provider: PaymentProvider, now: datetime
) -> tuple[Payment, bool]:
    _user_lock(user)
    open_payment = (
        Payment.objects.select_related("purchase", "purchase__user", "purchase__package")
        .filter(
            purchase__user=user,
            purchase__package=package,
            purchase__status=Purchase.Status.REQUESTED,
            status=Payment.Status.PENDING,
            expires_at__gt=now + REUSE_MIN_LEFT,
        )
        .order_by("-created_at")
        .first()
    )
    if open_payment is not None:
        return open_payment, False
    if package.price_cents <= 0:
        raise ValidationError(_("This package has no price to pay by PIX."), code="price")
    purchase = credit_services.purchase_request(
        user=user,
        package=package,
        idempotency_key=f"pix:{user.pk}:{uuid.uuid4().hex}",
        method=Purchase.Method.ONLINE,
    )
    payment = Payment.objects.create(
        purchase=purchase,
        provider=provider.name,
        reference=f"solaris-{purchase.pk}-{uuid.uuid4().hex[:12]}",
        idempotency_key=str(uuid.uuid4()),
        amount_cents=purchase.price_cents,
        # Whole seconds: the provider keeps milliseconds at most, so both sides agree exactly.
        expires_at=(now + timedelta(minutes=settings.MERCADOPAGO_PIX_EXPIRATION_MINUTES)).replace(
            microsecond=0
        ),
        created_at=now,
    )
    return payment, True


def _description(purchase: Purchase) -> str:
    name = purchase.package.name if purchase.package else f"{purchase.credits}"
    return f"IA SOLARIS · {name}"[:250]


def _pix_charge_send(*, payment: Payment, provider: PaymentProvider, now: datetime) -> Payment:
    purchase = payment.purchase
    charge = PixCharge(
        reference=payment.reference,
        idempotency_key=payment.idempotency_key,
        amount_cents=payment.amount_cents,
        description=_description(purchase),
        payer_email=purchase.user.email,
        expires_at=payment.expires_at,
        notification_url=webhook_url(),
    )
    try:
        remote = provider.pix_charge_create(charge=charge)
    except ProviderError as error:
        if error.permanent:
            _payment_close(
                payment_id=payment.pk, status=Payment.Status.CANCELLED, detail=str(error), now=now
            )
            raise PaymentRefused(str(error)) from error
        raise PaymentUnavailable(str(error)) from error
    return _payment_apply(payment_id=payment.pk, remote=remote, now=now)


@transaction.atomic
def _payment_close(*, payment_id: int, status: str, now: datetime, detail: str = "") -> Payment:
    """End a charge that was never paid: its purchase is cancelled."""
    payment = Payment.objects.select_for_update().select_related("purchase").get(pk=payment_id)
    if payment.status != Payment.Status.PENDING:
        return payment
    if payment.purchase.status in OPEN_PURCHASE:
        credit_services.purchase_cancel(purchase=payment.purchase, cancelled_by=None)
    payment.status = status
    payment.provider_status_detail = detail[:64] or payment.provider_status_detail
    payment.synced_at = now
    payment.save()
    logger.info("payment closed", extra={"payment_id": payment.pk, "status": status})
    return payment


# --- what the provider says, applied ---


def _status_for(payment: Payment, remote: RemotePayment, now: datetime) -> tuple[str, str]:
    """The Solaris status (and review reason) this reading of the provider calls for."""
    Status, Reason = Payment.Status, Payment.ReviewReason
    if remote.outcome == Outcome.APPROVED:
        if remote.amount_cents != payment.amount_cents or remote.currency != "BRL":
            return Status.REVIEW, Reason.AMOUNT
        if remote.refunded_cents:
            ours = payment.refunds.filter(
                status__in=[PaymentRefund.Status.CONFIRMED, PaymentRefund.Status.BOOKED]
            ).exists()
            return (Status.REFUNDED, "") if ours else (Status.REVIEW, Reason.PARTIAL_REFUND)
        return Status.PAID, ""
    if remote.outcome == Outcome.REFUNDED:
        return Status.REFUNDED, ""
    if remote.outcome == Outcome.DISPUTED:
        return Status.REVIEW, Reason.DISPUTED
    expires_at = remote.expires_at or payment.expires_at
    if remote.outcome == Outcome.EXPIRED:
        return Status.EXPIRED, ""
    if remote.outcome == Outcome.FAILED:
        return (Status.EXPIRED if now >= expires_at else Status.CANCELLED), ""
    return (Status.EXPIRED if now >= expires_at + EXPIRY_GRACE else Status.PENDING), ""


def _review(payment: Payment, reason: str) -> None:
    payment.status = Payment.Status.REVIEW
    payment.review_reason = reason
    logger.warning("payment in review", extra={"payment_id": payment.pk, "reason": reason})


def _grant(payment: Payment, remote: RemotePayment, now: datetime) -> None:
    purchase = payment.purchase
    if purchase.status not in OPEN_PURCHASE:
        _review(payment, Payment.ReviewReason.LATE)
        return
    payment.purchase = credit_services.purchase_confirm(
        purchase=purchase,
        confirmed_by=None,
        payment_reference=f"Mercado Pago {remote.provider_id}",
        now=now,
    )
    payment.status = Payment.Status.PAID
    payment.paid_at = remote.approved_at or now
    logger.info("payment granted", extra={"payment_id": payment.pk, "purchase_id": purchase.pk})


def _refund_book(payment: Payment, now: datetime) -> None:
    """The provider gave the money back: take back the credits it paid for, once (credits'
    `purchase_refund_credits`): the credits quoted for a pro-rata refund, every credit of the
    purchase for a full one (or one made in the provider's panel), the part already spent as
    debt. Deferred (the payment stays paid, reconciliation tries again) while calls in flight hold
    those credits."""
    refund = payment.refunds.filter(status=PaymentRefund.Status.CONFIRMED).first()
    purchase = payment.purchase
    if purchase.status == Purchase.Status.CREDITED:
        pro_rata = refund is not None and not refund.full
        try:
            payment.purchase = credit_services.purchase_refund_credits(
                purchase=purchase,
                credits=refund.credits_quoted if refund and pro_rata else purchase.credits,
                refunded_by=refund.requested_by if refund else None,
                idempotency_key=(
                    f"payment-refund:{refund.idempotency_key}"
                    if refund
                    else f"payment-refunded:{payment.reference}"
                ),
                reason=(refund.reason if refund else "") or _("Refunded through Mercado Pago"),
                now=now,
            )
        except ValidationError as error:
            logger.info(
                "refund booking deferred",
                extra={"payment_id": payment.pk, "error": "; ".join(error.messages)},
            )
            return
    elif purchase.status in OPEN_PURCHASE:
        credit_services.purchase_cancel(purchase=purchase, cancelled_by=None)
    if refund is not None:
        refund.status = PaymentRefund.Status.BOOKED
        refund.booked_at = now
        refund.save(update_fields=["status", "booked_at"])
    payment.status = Payment.Status.REFUNDED
    logger.info("refund booked", extra={"payment_id": payment.pk, "purchase_id": purchase.pk})


def _move(payment: Payment, target: str, reason: str, remote: RemotePayment, now: datetime) -> None:
    """Move the payment (and, through credits, its purchase) to `target` where that is a step
    forward; an older reading never undoes a newer one. `refunded` and `review` are final here:
    finance decides what follows."""
    Status = Payment.Status
    current = payment.status
    if target == current:
        return
    if current == Status.PENDING:
        if target == Status.PAID:
            _grant(payment, remote, now)
        elif target == Status.REVIEW:
            _review(payment, reason)
        elif target == Status.REFUNDED:
            _refund_book(payment, now)
        elif target in (Status.CANCELLED, Status.EXPIRED):
            if payment.purchase.status in OPEN_PURCHASE:
                credit_services.purchase_cancel(purchase=payment.purchase, cancelled_by=None)
            payment.status = target
    elif current == Status.PAID:
        if target == Status.REFUNDED:
            _refund_book(payment, now)
        elif target == Status.REVIEW:
            _review(payment, reason)
    elif current in (Status.CANCELLED, Status.EXPIRED) and remote.outcome in (
        Outcome.APPROVED,
        Outcome.DISPUTED,
    ):
        _review(payment, Payment.ReviewReason.LATE)


def _refunds_confirm(payment: Payment, remote: RemotePayment, now: datetime) -> None:
    """Our refunds the provider now reports as done (or as refused)."""
    by_id = {refund.provider_id: refund for refund in remote.refunds}
    for refund in payment.refunds.filter(status=PaymentRefund.Status.REQUESTED).exclude(
        provider_refund_id=""
    ):
        reported = by_id.get(refund.provider_refund_id)
        if reported is None:
            continue
        refund.provider_status = reported.status
        if reported.confirmed:
            refund.status = PaymentRefund.Status.CONFIRMED
            refund.confirmed_at = now
        elif reported.status in ("rejected", "cancelled"):
            refund.status = PaymentRefund.Status.FAILED
            refund.failure = _("The provider reports the refund as %(status)s.") % {
                "status": reported.status
            }
        refund.save()


@transaction.atomic
def _payment_apply(*, payment_id: int, remote: RemotePayment, now: datetime) -> Payment:
    """Record one reading of the provider and act on it, under the payment's lock, so that any
    number of readings at once (webhook retries, reconciliation) act once."""
    payment = Payment.objects.select_for_update().select_related("purchase").get(pk=payment_id)
    if remote.reference != payment.reference or payment.provider_payment_id not in (
        "",
        remote.provider_id,
    ):
        # Not this charge: only money moving under our reference is finance's business.
        if remote.outcome in (Outcome.APPROVED, Outcome.DISPUTED) and payment.status in (
            Payment.Status.PENDING,
            Payment.Status.PAID,
        ):
            _review(payment, Payment.ReviewReason.FOREIGN)
            payment.save()
        logger.warning(
            "provider payment does not match its charge",
            extra={"payment_id": payment.pk, "provider_payment_id": remote.provider_id},
        )
        return payment
    payment.provider_payment_id = remote.provider_id
    payment.qr_code = payment.qr_code or remote.qr_code
    payment.qr_code_base64 = payment.qr_code_base64 or remote.qr_code_base64
    payment.ticket_url = payment.ticket_url or remote.ticket_url
    payment.provider_outcome = remote.outcome
    payment.provider_status = remote.status
    payment.provider_status_detail = remote.status_detail
    payment.refunded_cents = remote.refunded_cents
    payment.synced_at = now
    _refunds_confirm(payment, remote, now)
    target, reason = _status_for(payment, remote, now)
    _move(payment, target, reason, remote, now)
    payment.save()
    return payment


def payment_sync(*, provider_payment_id: str, now: datetime | None = None) -> Payment | None:
    """Read one payment back from the provider and apply it; None when the provider does not
    know it or it is not one of ours (nothing changes then). Raises PaymentUnavailable."""
    provider = provider_get()
    if provider is None:
        return None
    try:
        remote = provider.payment_get(provider_id=provider_payment_id)
    except PaymentNotFound:
        logger.info("payment unknown to the provider", extra={"provider_id": provider_payment_id})
        return None
    except ProviderError as error:
        raise PaymentUnavailable(str(error)) from error
    ours = Payment.objects.filter(provider=provider.name)
    payment = ours.filter(reference=remote.reference).first() if remote.reference else None
    if payment is None:
        payment = ours.filter(provider_payment_id=remote.provider_id).first()
    if payment is None:
        logger.info("payment not ours", extra={"provider_id": remote.provider_id})
        return None
    return _payment_apply(payment_id=payment.pk, remote=remote, now=now or timezone.now())


def payment_refresh(*, purchase: Purchase) -> bool:
    """Read a pending PIX charge back while its person waits on it, at most every
    REFRESH_SECONDS, so a lost webhook costs seconds (and works without beat). True when the
    provider was read."""
    payment = payment_of(purchase)
    if payment is None or payment.status != Payment.Status.PENDING:
        return False
    if not payment.provider_payment_id:
        return False
    if not cache.add(f"payments:refresh:{payment.pk}", 1, timeout=REFRESH_SECONDS):
        return False
    try:
        payment_sync(provider_payment_id=payment.provider_payment_id)
    except PaymentUnavailable:
        logger.info("payment not refreshed: provider unavailable", extra={"payment_id": payment.pk})
        return False
    return True


# --- the webhook ---


def _redacted(body: bytes) -> dict:
    """The notification's identifying fields only: no headers, no signature, no payer."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    kept: dict[str, Any] = {
        name: str(parsed[name])[:64]
        for name in WEBHOOK_FIELDS
        if isinstance(parsed.get(name), str | int | bool)
    }
    data = parsed.get("data")
    if isinstance(data, dict) and isinstance(data.get("id"), str | int):
        kept["data"] = {"id": str(data["id"])[:64]}
    return kept


def webhook_receive(
    *,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
) -> WebhookDelivery:
    """Check Mercado Pago's signature, log the delivery and hand a payment notification to Celery
    (after commit). Raises SignatureInvalid, having written nothing."""
    now = now or timezone.now()
    data_id = query.get("data.id", "")
    request_id = headers.get("x-request-id", "")
    if not mercadopago.signature_valid(
        header=headers.get("x-signature", ""),
        request_id=request_id,
        data_id=data_id,
        secret=settings.MERCADOPAGO_WEBHOOK_SECRET,
        now=now,
        tolerance_seconds=settings.MERCADOPAGO_WEBHOOK_TOLERANCE_SECONDS,
    ):
        logger.warning("webhook signature refused", extra={"x_request_id": request_id[:128]})
        raise SignatureInvalid
    body_kept = _redacted(body)
    topic = query.get("type", "") or str(body_kept.get("type", ""))
    delivery = WebhookDelivery(
        provider=Provider.MERCADOPAGO,
        received_at=now,
        request_id=request_id[:128],
        topic=topic[:64],
        action=str(body_kept.get("action", "")),
        resource_id=data_id[:64],
        body=body_kept,
    )
    actionable = topic == "payment" and bool(mercadopago.RESOURCE_ID.fullmatch(data_id))
    if not actionable:
        delivery.outcome = "ignored"
        delivery.processed_at = now
    with transaction.atomic():
        delivery.save()
        if actionable:
            transaction.on_commit(partial(_webhook_enqueue, delivery_id=delivery.pk), robust=True)
    return delivery


def _webhook_enqueue(*, delivery_id: int) -> None:
    """Hand the delivery to Celery; a broker outage only delays it (reconciliation reads every
    pending charge within a minute)."""
    from payments.tasks import process_webhook  # the tasks module builds on this one

    try:
        process_webhook.delay(delivery_id)
    except Exception:
        logger.warning(
            "webhook delivery not enqueued", extra={"delivery_id": delivery_id}, exc_info=True
        )


def webhook_process(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery:
    """Read the notified payment back from the provider and apply it. Raises PaymentUnavailable."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    payment = payment_sync(provider_payment_id=delivery.resource_id, now=now)
    delivery.payment = payment
    delivery.outcome = payment.status if payment is not None else "unknown payment"
    delivery.processed_at = now
    delivery.save(update_fields=["payment", "outcome", "processed_at"])
    return delivery


# --- refunds ---


def payment_refund(
    *,
    payment: Payment,
    requested_by: User | None,
    full: bool = False,
    reason: str = "",
    now: datetime | None = None,
) -> PaymentRefund:
    """Give money back through the provider: by default pro rata to the credits not yet spent,
    or the whole price (`full`). Once the provider confirms (now, or later through the webhook or
    reconciliation) credits' `purchase_refund_credits` takes back the credits quoted (pro rata) or
    all the purchase's credits (full, the spent part as debt).

    Raises ValidationError when the payment cannot be refunded or the provider refuses, and
    PaymentUnavailable when the provider did not answer (reconciliation asks again, same key).
    """
    now = now or timezone.now()
    provider = provider_get()
    if provider is None or provider.name != payment.provider:
        raise ValidationError(_("Mercado Pago is not configured."), code="provider")
    refund = _refund_open(
        payment_id=payment.pk, requested_by=requested_by, full=full, reason=reason, now=now
    )
    return _refund_send(refund=refund, provider=provider, now=now)


@transaction.atomic
def _refund_open(
    *, payment_id: int, requested_by: User | None, full: bool, reason: str, now: datetime
) -> PaymentRefund:
    payment = Payment.objects.select_for_update().select_related("purchase").get(pk=payment_id)
    if payment.status != Payment.Status.PAID:
        raise ValidationError(_("Only a paid PIX purchase can be refunded."), code="status")
    if payment.refunds.filter(status__in=OPEN_REFUND).exists():
        raise ValidationError(_("A refund of this payment is already in progress."), code="open")
    quote = refund_quote(payment=payment, now=now)
    amount = quote.full_cents if full else quote.pro_rata_cents
    if amount <= 0:
        raise ValidationError(
            _(
                "No credit of this purchase is left unspent, so a pro rata refund is zero; "
                "choose a full refund."
            ),
            code="nothing_left",
        )
    return PaymentRefund.objects.create(
        payment=payment,
        amount_cents=amount,
        full=full,
        credits_quoted=quote.credits_left,
        idempotency_key=str(uuid.uuid4()),
        reason=reason[:300],
        requested_by=requested_by,
        created_at=now,
    )


def _refund_send(
    *, refund: PaymentRefund, provider: PaymentProvider, now: datetime
) -> PaymentRefund:
    payment = refund.payment
    whole = refund.amount_cents == payment.amount_cents
    try:
        remote = provider.refund_create(
            provider_id=payment.provider_payment_id,
            amount_cents=None if whole else refund.amount_cents,
            idempotency_key=refund.idempotency_key,
        )
    except ProviderError as error:
        if error.permanent:
            PaymentRefund.objects.filter(pk=refund.pk).update(
                status=PaymentRefund.Status.FAILED, failure=str(error)[:300]
            )
            raise ValidationError(
                _("Mercado Pago refused the refund: %(error)s") % {"error": error},
                code="refused",
            ) from error
        raise PaymentUnavailable(str(error)) from error
    return _refund_record(payment_id=payment.pk, refund_id=refund.pk, remote=remote, now=now)


@transaction.atomic
def _refund_record(
    *, payment_id: int, refund_id: int, remote: RemoteRefund, now: datetime
) -> PaymentRefund:
    payment = Payment.objects.select_for_update().select_related("purchase").get(pk=payment_id)
    refund = PaymentRefund.objects.get(pk=refund_id, payment=payment)
    refund.provider_refund_id = remote.provider_id
    refund.provider_status = remote.status
    if remote.confirmed and refund.status == PaymentRefund.Status.REQUESTED:
        refund.status = PaymentRefund.Status.CONFIRMED
        refund.confirmed_at = now
        payment.refunded_cents = max(payment.refunded_cents, refund.amount_cents)
    refund.save()
    if refund.status == PaymentRefund.Status.CONFIRMED and payment.status == Payment.Status.PAID:
        _refund_book(payment, now)
        refund.refresh_from_db()
    payment.save()
    return refund


# --- reconciliation (beat, every minute) ---


def payments_reconcile(
    *, now: datetime | None = None, limit: int = RECONCILE_LIMIT
) -> Reconciliation:
    """Catch what webhooks missed: read back every pending charge and every refund not yet
    booked, ask again for refunds that got no answer, and close charges whose creation was
    never answered once they can no longer be paid."""
    now = now or timezone.now()
    result = Reconciliation()
    unanswered = Payment.objects.filter(
        status=Payment.Status.PENDING, provider_payment_id="", expires_at__lte=now
    ).values_list("pk", flat=True)[:limit]
    for payment_id in list(unanswered):
        _payment_close(payment_id=payment_id, status=Payment.Status.EXPIRED, now=now)
        result.expired += 1
    provider = provider_get()
    if provider is None:
        return result
    unsent = PaymentRefund.objects.filter(
        status=PaymentRefund.Status.REQUESTED, provider_refund_id=""
    ).select_related("payment")[:limit]
    for refund in list(unsent):
        try:
            _refund_send(refund=refund, provider=provider, now=now)
            result.refunds_sent += 1
        except (PaymentUnavailable, ValidationError):
            result.failed += 1
    refunding = PaymentRefund.objects.filter(status__in=OPEN_REFUND).values("payment_id")
    due = (
        Payment.objects.filter(provider=provider.name)
        .exclude(provider_payment_id="")
        .filter(
            Q(status=Payment.Status.PENDING)
            | Q(pk__in=refunding)
            | Q(status=Payment.Status.PAID, refunded_cents__gt=0)
        )
        .order_by(F("synced_at").asc(nulls_first=True), "id")
        .values_list("provider_payment_id", flat=True)[:limit]
    )
    for provider_payment_id in list(due):
        try:
            payment_sync(provider_payment_id=provider_payment_id, now=now)
            result.read += 1
        except PaymentUnavailable:
            result.failed += 1
    return result
