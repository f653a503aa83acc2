"""The notification outbox (docs/notifications.md): rows written, rendered and delivered.

`notification_create` runs INSIDE the transaction of the change that causes the row (credits writes
its notifications through it, with everything the e-mail says in the row's context), so an outbox
row exists exactly when its cause committed; this app never reads credits. Delivery
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

from notifications.models import Notification

logger = logging.getLogger(__name__)

STATEMENT_PATH = "/conta/"
BUY_PATH = "/conta/comprar/"
LANGUAGES = ("pt-br", "en")
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
