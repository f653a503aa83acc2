"""Reads for payments: a purchase as the person's API shows it, refund quotes, and what finance
reconciles. Pages, the widget and admin screens render these; nothing here writes."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from credits.models import Grant, Purchase
from payments.models import Payment, PaymentInstructions
from payments.providers import Outcome

# A manual purchase's status, in the words the API uses for every purchase.
MANUAL_STATUS: dict[str, str] = {
    Purchase.Status.REQUESTED: Payment.Status.PENDING,
    Purchase.Status.PAID: Payment.Status.PENDING,
    Purchase.Status.CREDITED: Payment.Status.PAID,
    Purchase.Status.CANCELLED: Payment.Status.CANCELLED,
    Purchase.Status.REFUNDED: Payment.Status.REFUNDED,
}


def payment_of(purchase: Purchase) -> Payment | None:
    """The purchase's PIX charge; None for a manual purchase."""
    try:
        return purchase.payment
    except Payment.DoesNotExist:
        return None


def purchase_status(*, purchase: Purchase) -> str:
    """pending, paid, expired, cancelled, refunded or review (docs/payments.md)."""
    if purchase.status == Purchase.Status.REFUNDED:
        return Payment.Status.REFUNDED
    payment = payment_of(purchase)
    if payment is not None:
        return payment.status
    return MANUAL_STATUS[purchase.status]


def purchase_get(*, user_id: int, purchase_id: int) -> Purchase | None:
    """One of the user's own purchases; None for anyone else's (and for ids that cannot exist)."""
    return (
        Purchase.objects.select_related("payment", "package")
        .filter(pk=purchase_id, user_id=user_id)
        .first()
    )


def manual_instructions() -> str:
    """How to pay a manual request, in the active language: finance's text from admin
    (`PaymentInstructions`), else a generic note."""
    saved = PaymentInstructions.objects.filter(pk=PaymentInstructions.SINGLETON_ID).first()
    if saved is not None:
        english = (get_language() or "").startswith("en")
        text = (saved.text_en if english else "") or saved.text_pt_br
        if text.strip():
            return text.strip()
    return _(
        "An administrator will contact you with the payment details; your credits arrive as "
        "soon as the payment is confirmed. Questions: %(email)s."
    ) % {"email": settings.SOLARIS_PURCHASE_EMAIL}


def purchase_payload(*, purchase: Purchase) -> dict:
    """What `POST`/`GET /api/v1/me/purchases` answer: the PIX code for a PIX purchase, the
    payment instructions for a manual one."""
    payment = payment_of(purchase)
    pix = None
    if payment is not None and payment.qr_code:
        pix = {
            "qr_code": payment.qr_code,
            "qr_code_base64": payment.qr_code_base64,
            "ticket_url": payment.ticket_url or None,
            "expires_at": payment.expires_at.isoformat(),
        }
    return {
        "id": purchase.pk,
        "status": purchase_status(purchase=purchase),
        "method": "pix" if payment is not None else "manual",
        "package": purchase.package_id,
        "credits": purchase.credits,
        "price_cents": purchase.price_cents,
        "created_at": purchase.created_at.isoformat(),
        "pix": pix,
        "instructions": None if payment is not None else manual_instructions(),
    }


@dataclass(frozen=True)
class RefundQuote:
    credits: int  # what the purchase granted
    credits_left: int  # not spent yet (0 once its grant expired)
    pro_rata_cents: int  # the price × credits left ÷ credits, rounded down
    full_cents: int


def refund_quote(*, payment: Payment, now: datetime | None = None) -> RefundQuote:
    """What a refund of this payment gives back: pro rata to the credits not yet spent by
    default, or the whole price."""
    now = now or timezone.now()
    purchase = payment.purchase
    grant = Grant.objects.filter(purchase_id=purchase.pk).first()
    left = 0
    if grant is not None and (grant.expires_at is None or grant.expires_at > now):
        left = grant.remaining
    return RefundQuote(
        credits=purchase.credits,
        credits_left=left,
        pro_rata_cents=payment.amount_cents * left // purchase.credits,
        full_cents=payment.amount_cents,
    )


@dataclass(frozen=True)
class ReconciliationReport:
    paid_not_granted: list[Payment]  # the provider says approved; the purchase was not credited
    granted_not_paid: list[Payment]  # credited, but the provider no longer says approved
    review: list[Payment]  # waiting for finance


def reconciliation_report(*, limit: int = 500) -> ReconciliationReport:
    payments = Payment.objects.select_related("purchase", "purchase__user").order_by("-created_at")
    credited = Q(purchase__status__in=[Purchase.Status.CREDITED, Purchase.Status.REFUNDED])
    return ReconciliationReport(
        paid_not_granted=list(
            payments.filter(provider_outcome=Outcome.APPROVED).exclude(credited)[:limit]
        ),
        granted_not_paid=list(
            payments.filter(purchase__status=Purchase.Status.CREDITED).exclude(
                provider_outcome=Outcome.APPROVED
            )[:limit]
        ),
        review=list(payments.filter(status=Payment.Status.REVIEW)[:limit]),
    )
