"""Notifications (CONTRACT §5, docs/notifications.md).

The `notification_*` writers run INSIDE the transaction of the credit change that causes them (the
account row is already locked), so an outbox row exists exactly when its cause committed. Delivery
happens after commit, through Celery, at least once; a row is only marked sent after the mail went
out, and a short lease (never a lock held across SMTP) keeps two workers from sending it together.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from credits import selectors as credit_selectors
from credits import services as credit_services
from credits.models import Account, Grant, LedgerEntry, Purchase, Subscription
from notifications.models import Notification

logger = logging.getLogger(__name__)

STATEMENT_PATH = "/conta/"
BUY_PATH = "/conta/comprar/"
LANGUAGES = ("pt-br", "en")
STATE_RANK: dict[str, int] = {
    Account.State.NORMAL: 0,
    Account.State.ALERT: 1,
    Account.State.BLOCKED: 2,
}
STATE_KIND: dict[str, str] = {
    Account.State.ALERT: Notification.Kind.CREDITS_ALERT,
    Account.State.BLOCKED: Notification.Kind.CREDITS_BLOCKED,
}
ERROR_MAX_CHARS = 2000


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retry_in: int | None):
        super().__init__(message)
        self.retry_in = retry_in  # seconds until the next attempt; None when attempts are exhausted


# --- writing the outbox (inside the caller's transaction) ---


def notification_create(
    *,
    kind: str,
    recipient: str,
    language: str,
    dedupe_key: str,
    account_id: int | None = None,
    context: dict | None = None,
) -> Notification:
    """One outbox row per dedupe key, handed to Celery once the surrounding transaction commits."""
    notification, created = Notification.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "recipient": recipient,
            "language": language if language in LANGUAGES else settings.LANGUAGE_CODE,
            "account_id": account_id,
            "context": context or {},
        },
    )
    if created:
        transaction.on_commit(
            partial(notification_enqueue, notification_id=notification.pk), robust=True
        )
    return notification


def _last_entry_id(account_id: int) -> int:
    last = LedgerEntry.objects.filter(account_id=account_id).order_by("-id").first()
    return last.pk if last else 0


def _notified_state_set(account: Account, state: str) -> None:
    account.notified_state = state
    Account.objects.filter(pk=account.pk).update(notified_state=state)


def _credit_state_notification(
    account: Account, state: str, position: credit_selectors.CreditPosition
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
    position: credit_selectors.CreditPosition | None = None,
) -> Notification | None:
    """Call inside a credit change that holds the account lock, after the change.

    Notifies once when the account crosses upwards (normal → alert → blocked) past what it was
    last notified of; re-arms silently when credits were added (top-up, purchase, renewal) and the
    account fell back below it, so the next crossing notifies again.
    """
    # The locked account in memory is current: only the grants need reading (or were read).
    position = position or credit_selectors.credit_position(user_id=account.pk, account=account)
    new, notified = position.state, account.notified_state
    if STATE_RANK[new] > STATE_RANK[notified]:
        _notified_state_set(account, new)
        return _credit_state_notification(account, new, position)
    if STATE_RANK[new] < STATE_RANK[notified] and credits_added:
        _notified_state_set(account, new)
    return None


@transaction.atomic
def notification_credits_refused(*, user_id: int) -> Notification | None:
    """A call was refused for credits (its own transaction rolled back): blocked, once per crossing.

    Only when the account is nearly out (alert or blocked): a refusal with most credits left means
    one oversized request, not an empty account, and is answered by the 429 alone.
    """
    account = credit_services.account_lock(user_id=user_id)
    if account.notified_state == Account.State.BLOCKED:
        return None
    position = credit_selectors.credit_position(user_id=user_id, account=account)
    if position.state == Account.State.NORMAL:
        return None
    _notified_state_set(account, Account.State.BLOCKED)
    return _credit_state_notification(account, Account.State.BLOCKED, position)


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
    position = credit_selectors.credit_position(user_id=user.pk)
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
    position = credit_selectors.credit_position(user_id=user.pk)
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


# --- delivery (after commit, in a Celery worker or eagerly in-process) ---


def notification_enqueue(*, notification_id: int) -> bool:
    """Hand one notification to Celery. Never raises: the credit change that wrote it has
    committed; if the broker is down the row stays pending and the sweep sends it later."""
    from notifications.tasks import deliver_notification  # the tasks module builds on this one

    try:
        deliver_notification.delay(notification_id)
    except Exception:
        logger.warning(
            "notification not enqueued, the sweep will retry it",
            extra={"notification_id": notification_id},
            exc_info=True,
        )
        return False
    return True


def retry_delay(*, attempts: int) -> int:
    """Exponential backoff in seconds after the given number of failed attempts."""
    base = settings.SOLARIS_NOTIFICATION_RETRY_SECONDS
    return int(
        min(base * 2 ** max(attempts - 1, 0), settings.SOLARIS_NOTIFICATION_RETRY_MAX_SECONDS)
    )


def _claim(notification_id: int) -> Notification | None:
    """Take a short lease on a pending, due notification (row locked only for this instant)."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        now = timezone.now()
        if (
            notification is None
            or notification.sent_at is not None
            or notification.next_attempt_at > now
            or notification.attempts >= settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS
        ):
            return None
        notification.attempts += 1
        notification.next_attempt_at = now + timedelta(
            seconds=settings.SOLARIS_NOTIFICATION_LEASE_SECONDS
        )
        notification.save(update_fields=["attempts", "next_attempt_at"])
        return notification


def _render_context(notification: Notification) -> dict:
    context: dict = dict(notification.context)
    for key, value in notification.context.items():
        if key.endswith("_at") and value:
            context[key] = datetime.fromisoformat(value)
    public = settings.SOLARIS_PUBLIC_URL
    context.update(
        statement_url=public + STATEMENT_PATH,
        buy_url=public + BUY_PATH,
        purchase_email=settings.SOLARIS_PURCHASE_EMAIL,
        public_url=public,
    )
    if notification.kind == Notification.Kind.PURCHASE_REQUESTED:
        path = reverse("admin:credits_purchase_change", args=[context["purchase_id"]])
        context["admin_url"] = public + path
    return context


def notification_message(*, notification: Notification) -> EmailMultiAlternatives:
    """The e-mail of a notification, plain text and HTML, in the recipient's language."""
    prefix = f"emails/{notification.language}/{notification.kind}"
    with translation.override(notification.language):
        context = _render_context(notification)
        subject = " ".join(render_to_string(f"{prefix}.subject.txt", context).split())
        text = render_to_string(f"{prefix}.txt", context)
        html = render_to_string(f"{prefix}.html", context)
    message = EmailMultiAlternatives(subject, text, to=[notification.recipient])
    message.attach_alternative(html, "text/html")
    return message


def notification_deliver(*, notification_id: int) -> bool:
    """Send one notification if it is still pending and due; True when this call sent it.

    Raises DeliveryFailed (with when to retry) when the e-mail could not be sent.
    """
    notification = _claim(notification_id)
    if notification is None:
        return False
    try:
        notification_message(notification=notification).send()
    except Exception as exc:
        exhausted = notification.attempts >= settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS
        delay = retry_delay(attempts=notification.attempts)
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
        Notification.objects.filter(pk=notification.pk, sent_at__isnull=True).update(
            last_error=error, next_attempt_at=timezone.now() + timedelta(seconds=delay)
        )
        logger.warning(
            "notification not sent",
            extra={
                "notification_id": notification.pk,
                "attempts": notification.attempts,
                "error": error,
            },
        )
        raise DeliveryFailed(error, retry_in=None if exhausted else delay) from exc
    Notification.objects.filter(pk=notification.pk).update(sent_at=timezone.now())
    logger.info(
        "notification sent",
        extra={"notification_id": notification.pk, "kind": notification.kind},
    )
    return True


def notifications_sweep(*, older_than_seconds: int | None = None, limit: int = 500) -> int:
    """Enqueue notifications still pending a while after they were written (a broker outage, a
    crashed worker, retries that ran out of chain); returns how many were handed to Celery."""
    if older_than_seconds is None:
        older_than_seconds = settings.SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS
    now = timezone.now()
    ids = list(
        Notification.objects.filter(
            sent_at__isnull=True,
            attempts__lt=settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS,
            next_attempt_at__lte=now,
            created_at__lte=now - timedelta(seconds=older_than_seconds),
        )
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(notification_enqueue(notification_id=pk) for pk in ids)


def notifications_resend(*, notification_ids: list[int]) -> int:
    """Admin's "send again": make the notifications pending and due now, deliver after commit."""
    with transaction.atomic():
        count = Notification.objects.filter(pk__in=notification_ids).update(
            sent_at=None, attempts=0, last_error="", next_attempt_at=timezone.now()
        )
        for pk in sorted(notification_ids):
            transaction.on_commit(partial(notification_enqueue, notification_id=pk), robust=True)
    return count
