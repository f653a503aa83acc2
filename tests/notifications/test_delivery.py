"""Delivery: at least once, never twice for one send, retried with backoff, swept when stuck."""

import socket
import threading
import time
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.management import call_command
from django.db import close_old_connections, transaction
from django.utils import timezone

from credits.models import Account, LedgerEntry
from notifications import services
from notifications.models import Notification
from notifications.tasks import deliver_notification, sweep_notifications
from tests.notifications.backends import SlowBackend

pytestmark = pytest.mark.django_db

FAILING = "tests.notifications.backends.FailingBackend"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make(user, key="n-1", **fields) -> Notification:
    defaults = {
        "kind": Notification.Kind.CREDITS_ALERT,
        "recipient": user.email,
        "language": "pt-br",
        "account_id": user.pk,
        "context": {"name": "Ana", "available": 1, "used_percent": "99.99", "threshold": 80},
        "dedupe_key": key,
    }
    return Notification.objects.create(**{**defaults, **fields})


def test_sending_twice_sends_once(user):
    notification = make(user)
    assert services.notification_deliver(notification_id=notification.pk) is True
    # The task redelivered after the mail went out (acks_late, a worker restart): no second e-mail.
    assert deliver_notification.apply(args=(notification.pk,)).get() is False
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    assert notification.attempts == 1
    assert len(mail.outbox) == 1


def test_a_delivery_in_progress_is_not_sent_by_another_worker(user):
    notification = make(user)
    claimed = services._claim(notification.pk)
    assert claimed is not None and claimed.attempts == 1
    assert services.notification_deliver(notification_id=notification.pk) is False
    assert mail.outbox == []


def test_unknown_notification_is_ignored(db):
    assert services.notification_deliver(notification_id=987_654) is False


def test_a_failure_is_recorded_and_retried_with_exponential_backoff(user, settings):
    settings.EMAIL_BACKEND = FAILING
    settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS = 3
    notification = make(user)
    countdowns = []
    with mock.patch.object(deliver_notification, "retry", side_effect=Retry()) as retry:
        for _attempt in range(2):
            with pytest.raises(Retry):
                deliver_notification(notification.pk)
            countdowns.append(retry.call_args.kwargs["countdown"])
            notification.refresh_from_db()
            assert notification.next_attempt_at > timezone.now()
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
        assert deliver_notification(notification.pk) is False  # third and last attempt
        assert retry.call_count == 2

    assert countdowns == [30, 60]
    notification.refresh_from_db()
    assert notification.attempts == 3
    assert notification.state == Notification.State.FAILED
    assert notification.last_error == "SMTPServerDisconnected: connection unexpectedly closed"
    assert notification.sent_at is None
    assert services.notifications_sweep(older_than_seconds=0) == 0  # given up: admin resends


def test_backoff_grows_and_is_capped(settings):
    settings.SOLARIS_NOTIFICATION_RETRY_SECONDS = 30
    settings.SOLARIS_NOTIFICATION_RETRY_MAX_SECONDS = 3600
    delays = [services.retry_delay(attempts=n) for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_eager_smtp_failure_never_breaks_the_credit_change(user, spend, settings):
    """The embedded default delivers in-process on commit: a dead SMTP server is logged only."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    started = time.monotonic()
    spend(user, 85_000)
    assert time.monotonic() - started < 10

    assert Account.objects.get(pk=user.pk).balance == 15_000
    notification = Notification.objects.get()
    assert notification.sent_at is None
    assert notification.attempts == 1
    assert "ConnectionRefusedError" in notification.last_error
    assert notification.state == Notification.State.PENDING


def test_an_unexpected_error_in_eager_delivery_is_contained(user, spend):
    with mock.patch.object(
        services, "notification_message", side_effect=LookupError("template missing")
    ):
        spend(user, 85_000)
    notification = Notification.objects.get()
    assert notification.last_error == "LookupError: template missing"
    assert Account.objects.get(pk=user.pk).balance == 15_000


def test_enqueue_failure_is_logged_and_leaves_the_row_pending(user, caplog):
    notification = make(user)
    with mock.patch.object(deliver_notification, "delay", side_effect=OSError("broker gone")):
        assert services.notification_enqueue(notification_id=notification.pk) is False
    assert "the sweep will retry it" in caplog.text
    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING


def test_sweep_sends_only_what_is_old_enough_and_due(user, settings):
    settings.SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS = 180
    now = timezone.now()
    old = make(user, "old", created_at=now - timedelta(minutes=5))
    fresh = make(user, "fresh")
    backing_off = make(
        user,
        "backing-off",
        created_at=now - timedelta(minutes=5),
        next_attempt_at=now + timedelta(minutes=1),
        attempts=1,
    )
    sent = make(user, "sent", created_at=now - timedelta(minutes=5), sent_at=now)

    assert sweep_notifications.apply().get() == 1
    assert len(mail.outbox) == 1
    for row in (old, fresh, backing_off, sent):
        row.refresh_from_db()
    assert old.sent_at is not None
    assert fresh.sent_at is None and backing_off.sent_at is None
    assert sweep_notifications.apply().get() == 0
    assert len(mail.outbox) == 1


def test_send_notifications_command_sends_everything_pending(user):
    make(user, "a")
    make(user, "b")
    out = StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().strip() == "2 notification(s) queued."
    assert len(mail.outbox) == 2
    assert not Notification.objects.filter(sent_at__isnull=True).exists()


def test_resend_makes_a_sent_or_failed_notification_go_out_again(
    user, settings, django_capture_on_commit_callbacks
):
    sent = make(user, "sent", sent_at=timezone.now(), attempts=1)
    failed = make(user, "failed", attempts=8, last_error="SMTPServerDisconnected: x")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notifications_resend(notification_ids=[sent.pk, failed.pk]) == 2
    assert len(mail.outbox) == 2
    for row in (sent, failed):
        row.refresh_from_db()
        assert row.state == Notification.State.SENT
        assert row.attempts == 1
        assert row.last_error == ""


def test_the_sweep_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-notifications"]
    assert entry["task"] == "notifications.tasks.sweep_notifications"
    assert entry["schedule"] <= settings.SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_one_email(user, settings):
    """Real row locks: two deliveries of the same row at once, one SMTP round trip."""
    settings.EMAIL_BACKEND = "tests.notifications.backends.SlowBackend"
    SlowBackend.sent.clear()
    notification = make(user)
    results = []

    def deliver():
        try:
            results.append(services.notification_deliver(notification_id=notification.pk))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, True]
    assert len(SlowBackend.sent) == 1
    notification.refresh_from_db()
    assert notification.attempts == 1 and notification.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_outbox_row_commits_with_the_ledger_entry_or_not_at_all(user, eco):
    from credits import services as credits

    credits.hold_create(user=user, request_id="r-1", price=eco, prompt_tokens=0, max_tokens=90_000)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        credits.hold_settle(request_id="r-1", prompt_tokens=0, completion_tokens=90_000)
        1 / 0  # noqa: B018 - the caller fails after the settle, inside its transaction
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    assert not Notification.objects.exists()
    assert mail.outbox == []

    credits.hold_settle(request_id="r-1", prompt_tokens=0, completion_tokens=90_000)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == 1
    assert Notification.objects.get().sent_at is not None  # delivered on the real commit
    assert len(mail.outbox) == 1
