"""What credits writes to the notifications outbox, inside the transaction of the change that
causes it (the account row is already locked), so a row exists exactly when its cause committed.

Credits decides when to notify (the state crossings, `Account.notified_state`) and what the e-mail
says (its context, built here); the notifications app only stores, renders and delivers the row.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from credits.models import Account, Grant, LedgerEntry, Purchase, Subscription
from credits.selectors import STATE_RANK, CreditPosition, credit_position
from credits.services.ledger import account_lock
from notifications.models import Notification
from notifications.services import notification_create

STATE_KIND: dict[str, str] = {
    Account.State.ALERT: Notification.Kind.CREDITS_ALERT,
    Account.State.BLOCKED: Notification.Kind.CREDITS_BLOCKED,
}


def _last_entry_id(account_id: int) -> int:
    last = LedgerEntry.objects.filter(account_id=account_id).order_by("-id").first()
    return last.pk if last else 0


def _notified_state_set(account: Account, state: str) -> None:
    account.notified_state = state
    Account.objects.filter(pk=account.pk).update(notified_state=state)


def _credit_state_notification(
    account: Account, state: str, position: CreditPosition
) -> Notification:
    user = User.objects.get(pk=account.pk)
    subscription = Subscription.objects.filter(user_id=account.pk).first()
    kind = STATE_KIND[state]
    return notification_create(
        kind=kind,
        recipient=user.email,
        language=user.language,
        account_id=account.pk,
        # One per crossing: the ledger entry after which it happened names the crossing.
        dedupe_key=f"{kind}:{account.pk}:{_last_entry_id(account.pk)}",
        context={
            "name": user.get_short_name(),
            "available": max(position.available, 0),
            "used_percent": str(position.used_percent),
            "threshold": settings.SOLARIS_ALERT_THRESHOLD,
            "renews_at": subscription.cycle_end.isoformat() if subscription else None,
        },
    )


def notification_credit_state(
    *,
    account: Account,
    credits_added: bool = False,
    position: CreditPosition | None = None,
) -> Notification | None:
    """Call inside a credit change that holds the account lock, after the change.

    Notifies once when the account crosses upwards (normal → alert → blocked) past what it was
    last notified of; re-arms silently when credits were added (top-up, purchase, renewal) and the
    account fell back below it, so the next crossing notifies again.
    """
    # The locked account in memory is current: only the grants need reading (or were read).
    position = position or credit_position(user_id=account.pk, account=account)
    new, notified = position.state, account.notified_state
    if STATE_RANK[new] > STATE_RANK[notified]:
        _notified_state_set(account, new)
        return _credit_state_notification(account, new, position)
    if STATE_RANK[new] < STATE_RANK[notified] and credits_added:
        _notified_state_set(account, new)
    return None


@transaction.atomic
def notification_credits_refused(*, user_id: int) -> Notification | None:
    """A call was refused for credits (its own transaction rolled back): the state is decided again
    under the account lock, as at any credit event. A blocked account is told once per crossing,
    also when a price edit moved its blocked line since its last call; a refusal of an account that
    is not blocked (one request larger than what is left) writes nothing."""
    return notification_credit_state(account=account_lock(user_id=user_id))


def notification_purchase_requested(*, purchase: Purchase) -> Notification:
    """To the purchase mailbox (SOLARIS_PURCHASE_EMAIL), in the site's language."""
    user = purchase.user
    return notification_create(
        kind=Notification.Kind.PURCHASE_REQUESTED,
        recipient=settings.SOLARIS_PURCHASE_EMAIL,
        language=settings.LANGUAGE_CODE,
        account_id=user.pk,
        dedupe_key=f"purchase_requested:{purchase.pk}",
        context={
            "purchase_id": purchase.pk,
            "user_name": user.get_full_name(),
            "user_email": user.email,
            "credits": purchase.credits,
            "price_cents": purchase.price_cents,
            "package": purchase.package.name if purchase.package else "",
            "method": purchase.method,
            "created_at": purchase.created_at.isoformat(),
        },
    )


def notification_purchase_confirmed(*, purchase: Purchase) -> Notification:
    """The user's receipt, once per purchase."""
    user = purchase.user
    grant = Grant.objects.filter(purchase=purchase).first()
    position = credit_position(user_id=user.pk)
    expires_at = grant.expires_at if grant else None
    return notification_create(
        kind=Notification.Kind.PURCHASE_CONFIRMED,
        recipient=user.email,
        language=user.language,
        account_id=user.pk,
        dedupe_key=f"purchase_confirmed:{purchase.pk}",
        context={
            "name": user.get_short_name(),
            "purchase_id": purchase.pk,
            "credits": purchase.credits,
            "price_cents": purchase.price_cents,
            "package": purchase.package.name if purchase.package else "",
            "payment_reference": purchase.payment_reference,
            "paid_at": (purchase.paid_at or timezone.now()).isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
            "available": max(position.available, 0),
        },
    )


def notification_cycle_renewed(*, subscription: Subscription) -> Notification | None:
    """The new cycle's allowance is there; nothing to say for a plan without allowance."""
    plan = subscription.plan
    if plan.monthly_allowance <= 0:
        return None
    user = User.objects.get(pk=subscription.user_id)
    position = credit_position(user_id=user.pk)
    return notification_create(
        kind=Notification.Kind.CYCLE_RENEWED,
        recipient=user.email,
        language=user.language,
        account_id=user.pk,
        dedupe_key=f"cycle_renewed:{user.pk}:{subscription.cycle_start.isoformat()}",
        context={
            "name": user.get_short_name(),
            "plan": plan.name,
            "allowance": plan.monthly_allowance,
            "renews_at": subscription.cycle_end.isoformat(),
            "available": max(position.available, 0),
        },
    )
