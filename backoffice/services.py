"""What staff do from admin and the admin API, through the guard rails (docs/admin.md).

Whatever their rights, no staff member grants, confirms a purchase or refunds for their own
account; a grant above SOLARIS_GRANT_APPROVAL_ABOVE waits for a second staff member's approval;
nobody adds credits to someone with a purchase waiting for payment without saying they know of it
(the purchase, once paid, would grant the same money again); a custom purchase stays within sane
bounds and has a price; a purchase paid by PIX is refunded through its payment, money first. The
manage.py commands call the credits services directly: the operator's shell is not held by these
rules.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from backoffice.models import GrantRequest
from backoffice.selectors import purchases_open
from credits.models import CreditPackage, Grant, Purchase
from credits.selectors import grant_already_made
from credits.services import (
    credits_grant,
    purchase_cancel,
    purchase_confirm,
    purchase_refund,
    purchase_request,
)
from kernel.formats import credits_text
from payments.models import Payment, PaymentRefund
from payments.selectors import payment_of
from payments.services import payment_refund

GRANT_RIGHT = "backoffice.grant_credits"
# A custom purchase (no package): at most this many credits, for at most this price (R$ 1 000 000).
MAX_PURCHASE_CREDITS = 10**9
MAX_PURCHASE_PRICE_CENTS = 10**8
GRANT_SOURCES = (Grant.Source.MANUAL, Grant.Source.PROMO)

OWN_ACCOUNT = {
    "grant": gettext_lazy("You cannot add credits to your own account: ask another staff member."),
    "approve": gettext_lazy("You cannot approve credits for your own account."),
    "purchase": gettext_lazy(
        "You cannot record a purchase for your own account: ask another staff member."
    ),
    "confirm": gettext_lazy(
        "You cannot confirm a purchase of your own account: ask another staff member."
    ),
    "refund": gettext_lazy(
        "You cannot refund a purchase of your own account: ask another staff member."
    ),
}


def _refuse_own_account(*, actor: User, user_id: int, action: str) -> None:
    if actor.pk == user_id:
        raise ValidationError(str(OWN_ACCOUNT[action]), code="own_account")


def approval_needed(amount: int) -> bool:
    threshold = settings.SOLARIS_GRANT_APPROVAL_ABOVE
    return threshold is not None and amount > threshold


def _same_request(existing: GrantRequest, *, user: User, amount: int, source: str) -> GrantRequest:
    if (existing.user_id, existing.amount, existing.source) != (user.pk, amount, source):
        raise ValidationError(
            _("This idempotency key was already used for a different grant."), code="conflict"
        )
    return existing


def _refuse_unacknowledged_purchases(*, user: User, acknowledged: Collection[int]) -> None:
    """A top-up while a purchase waits for payment grants the same money twice once that purchase
    is confirmed (or its PIX paid): it needs whoever adds the credits to say they know of each
    one."""
    unknown = [p.pk for p in purchases_open(user_id=user.pk) if p.pk not in acknowledged]
    if unknown:
        raise ValidationError(
            _(
                "%(user)s has a purchase waiting for payment (%(purchases)s): confirm that "
                "purchase instead, or confirm you know about it to add these credits as well."
            )
            % {"user": user.email, "purchases": ", ".join(f"#{pk}" for pk in unknown)},
            code="pending_purchase",
            params={"purchases": unknown},
        )


@transaction.atomic
def staff_grant(
    *,
    actor: User,
    user: User,
    amount: int,
    idempotency_key: str,
    reason: str,
    source: str = Grant.Source.MANUAL,
    expires_at: datetime | None = None,
    acknowledged_purchases: Collection[int] = (),
) -> Grant | GrantRequest:
    """Credits a staff member adds: granted now, or, above the approval threshold, recorded as a
    pending request that reaches the ledger only once another staff member approves it.
    The same idempotency key twice acts once, either way. While the user has purchases waiting
    for payment, each must be in `acknowledged_purchases` (their ids)."""
    _refuse_own_account(actor=actor, user_id=user.pk, action="grant")
    existing = GrantRequest.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _same_request(existing, user=user, amount=amount, source=source)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(_("The amount must be a positive number of credits."), code="amount")
    replay = grant_already_made(idempotency_key=idempotency_key)
    if not replay:
        _refuse_unacknowledged_purchases(user=user, acknowledged=acknowledged_purchases)
    if not approval_needed(amount) or replay:
        return credits_grant(
            user=user,
            amount=amount,
            idempotency_key=idempotency_key,
            source=source,
            expires_at=expires_at,
            reason=reason,
            created_by=actor,
        )
    if source not in GRANT_SOURCES:
        raise ValidationError(
            _("Plan and purchase credits are granted by their own services."), code="source"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError(_("The expiry must be in the future."), code="expires_at")
    if not idempotency_key or not idempotency_key.strip():
        raise ValidationError(_("An idempotency key is required."), code="idempotency_key")
    try:
        with transaction.atomic():
            return GrantRequest.objects.create(
                user=user,
                amount=amount,
                source=source,
                reason=reason,
                expires_at=expires_at,
                idempotency_key=idempotency_key,
                requested_by=actor,
            )
    except IntegrityError:
        # The same request arrived twice at once: the first one is the request.
        existing = GrantRequest.objects.get(idempotency_key=idempotency_key)
        return _same_request(existing, user=user, amount=amount, source=source)


@transaction.atomic
def grant_request_approve(*, grant_request: GrantRequest, approver: User) -> GrantRequest:
    """Grant the requested credits, exactly once however often it is approved. The requester,
    and the user the credits are for, cannot approve."""
    request = (
        GrantRequest.objects.select_for_update().select_related("user").get(pk=grant_request.pk)
    )
    if request.status == GrantRequest.Status.APPROVED:
        return request
    if request.status != GrantRequest.Status.PENDING:
        raise ValidationError(_("This request was already rejected."), code="status")
    if approver.pk == request.requested_by_id:
        raise ValidationError(
            _("You asked for these credits: another staff member must approve them."),
            code="second_approver",
        )
    _refuse_own_account(actor=approver, user_id=request.user_id, action="approve")
    if not approver.has_perm(GRANT_RIGHT):
        raise ValidationError(_("Approving needs the right to add credits."), code="permission")
    grant = credits_grant(
        user=request.user,
        amount=request.amount,
        idempotency_key=f"approval:{request.pk}",
        source=request.source,
        expires_at=request.expires_at,
        reason=request.reason,
        created_by=request.requested_by,
    )
    request.status = GrantRequest.Status.APPROVED
    request.decided_by = approver
    request.decided_at = timezone.now()
    request.grant = grant
    request.save(update_fields=["status", "decided_by", "decided_at", "grant"])
    return request


@transaction.atomic
def grant_request_reject(
    *, grant_request: GrantRequest, decided_by: User, note: str = ""
) -> GrantRequest:
    """Close a pending request without granting anything (rejecting twice changes nothing)."""
    request = GrantRequest.objects.select_for_update().get(pk=grant_request.pk)
    if request.status == GrantRequest.Status.REJECTED:
        return request
    if request.status != GrantRequest.Status.PENDING:
        raise ValidationError(_("This request was already approved."), code="status")
    request.status = GrantRequest.Status.REJECTED
    request.decided_by = decided_by
    request.decided_at = timezone.now()
    request.decision_note = note
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return request


def staff_purchase_request(
    *,
    actor: User,
    user: User,
    idempotency_key: str,
    package: CreditPackage | None = None,
    credits: int | None = None,
    price_cents: int | None = None,
) -> Purchase:
    """Record a purchase for a customer. A custom one (no package) has a price of at least one
    cent and bounded credits (free credits are a promo grant), and while grants need approval it
    cannot exceed the threshold (a paid custom purchase would otherwise skip the approval)."""
    _refuse_own_account(actor=actor, user_id=user.pk, action="purchase")
    if package is None:
        if isinstance(credits, int) and credits > MAX_PURCHASE_CREDITS:
            raise ValidationError(
                _("A custom purchase is at most %(count)s credits.")
                % {"count": credits_text(MAX_PURCHASE_CREDITS)},
                code="amount",
            )
        if isinstance(credits, int) and approval_needed(credits):
            raise ValidationError(
                _(
                    "Above %(count)s credits a custom purchase needs approval: sell a package, "
                    "or add the credits as a grant."
                )
                % {"count": credits_text(settings.SOLARIS_GRANT_APPROVAL_ABOVE)},
                code="amount",
            )
        if isinstance(price_cents, int) and not 0 < price_cents <= MAX_PURCHASE_PRICE_CENTS:
            raise ValidationError(
                _(
                    "A custom purchase costs from 1 to %(max)s cents; free credits are a "
                    "promo grant."
                )
                % {"max": credits_text(MAX_PURCHASE_PRICE_CENTS)},
                code="price",
            )
    return purchase_request(
        user=user,
        idempotency_key=idempotency_key,
        package=package,
        credits=credits,
        price_cents=price_cents,
    )


def staff_purchase_confirm(
    *, actor: User, purchase: Purchase, payment_reference: str = ""
) -> Purchase:
    _refuse_own_account(actor=actor, user_id=purchase.user_id, action="confirm")
    return purchase_confirm(
        purchase=purchase, confirmed_by=actor, payment_reference=payment_reference
    )


@dataclass(frozen=True)
class StaffRefund:
    purchase: Purchase
    payment_refund: PaymentRefund | None  # a PIX purchase's refund through the provider


def staff_purchase_refund(
    *, actor: User, purchase: Purchase, reason: str, full: bool = False
) -> StaffRefund:
    """Refund a credited purchase. A PIX purchase's money goes back through the provider first
    (payments' `payment_refund`: pro rata to the credits not yet spent, or `full`, the spent part
    then booked as debt); its credits are taken back once the provider confirms. A manual
    purchase's money is returned outside Solaris: what is left of its credits is taken back now.

    Raises ValidationError, and payments' PaymentUnavailable when the provider did not answer.
    """
    _refuse_own_account(actor=actor, user_id=purchase.user_id, action="refund")
    payment = payment_of(purchase)
    if payment is None:
        if full:
            raise ValidationError(
                _(
                    "A manual purchase's money is returned outside Solaris: its refund takes "
                    "back what is left of its credits, there is no full refund."
                ),
                code="full",
            )
        return StaffRefund(
            purchase=purchase_refund(purchase=purchase, refunded_by=actor, reason=reason),
            payment_refund=None,
        )
    refund = payment_refund(payment=payment, requested_by=actor, full=full, reason=reason)
    purchase.refresh_from_db()
    return StaffRefund(purchase=purchase, payment_refund=refund)


def staff_purchase_cancel(*, actor: User, purchase: Purchase) -> Purchase:
    """Cancel a purchase not yet credited. Not a PIX purchase whose charge can still be paid: the
    person may pay it after the cancel, and the money would arrive for nothing; it expires by
    itself (then its purchase is cancelled)."""
    payment = payment_of(purchase)
    if payment is not None and payment.status == Payment.Status.PENDING:
        raise ValidationError(
            _(
                "This purchase's PIX charge can still be paid until %(expires)s: it cannot be "
                "cancelled here; once it expires the purchase is cancelled by itself."
            )
            % {"expires": date_format(localtime(payment.expires_at), "SHORT_DATETIME_FORMAT")},
            code="pix_pending",
        )
    return purchase_cancel(purchase=purchase, cancelled_by=actor)


def staff_history_log(*, actor: User, obj: Model, message: str) -> None:
    """Write what an API call changed into the object's admin history, as admin does."""
    LogEntry.objects.log_actions(
        actor.pk, [obj], CHANGE, change_message=message, single_object=True
    )
