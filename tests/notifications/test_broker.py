"""A dead broker delays notifications, never loses them, and never holds up a credit change."""

import socket
import time

import pytest
from django.core import mail

from credits import services as credits
from credits.models import Account, LedgerEntry
from notifications import services
from notifications.models import Notification
from solaris.celery import app as celery_app
from tests.notifications.conftest import celery_reconnect

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hung_port():
    """A port that accepts connections and never answers, like a wedged broker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture(params=["closed", pytest.param("hung", marks=pytest.mark.slow)])
def broker_down(request):
    """The app publishes to a Redis URL where nothing listens (or nothing answers), eager off."""
    port = closed_port() if request.param == "closed" else request.getfixturevalue("hung_port")
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    celery_app.conf.task_always_eager = False
    celery_reconnect()
    yield
    celery_reconnect()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved


def settle(user, price, request_id: str, amount: int) -> None:
    credits.hold_create(
        user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount
    )
    credits.hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)


def test_broker_down_the_credit_change_commits_and_the_sweep_delivers_later(
    user, eco, broker_down, caplog
):
    started = time.monotonic()
    settle(user, eco, "r-1", 85_000)
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"a dead broker held the credit change for {elapsed:.1f} s"
    assert Account.objects.get(pk=user.pk).balance == 15_000
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == 1
    notification = Notification.objects.get()
    assert notification.kind == Notification.Kind.CREDITS_ALERT
    assert notification.state == Notification.State.PENDING
    assert notification.attempts == 0
    assert mail.outbox == []
    assert "notification not enqueued" in caplog.text

    # The sweep runs (from beat) while the broker is still down: the row stays pending.
    assert services.notifications_sweep(older_than_seconds=0) == 0
    assert Notification.objects.get().state == Notification.State.PENDING

    # The broker is back (in-process here; the worker test covers a real one).
    celery_app.conf.task_always_eager = True
    assert services.notifications_sweep(older_than_seconds=0) == 1
    assert services.notifications_sweep(older_than_seconds=0) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Você já usou 85% dos seus créditos"
    assert Notification.objects.get().state == Notification.State.SENT


def test_broker_down_purchase_request_is_recorded(user, broker_down):
    purchase = credits.purchase_request(
        user=user, credits=10_000, price_cents=990, idempotency_key="buy-down"
    )
    assert purchase.pk is not None
    assert Notification.objects.get().kind == Notification.Kind.PURCHASE_REQUESTED
    assert Notification.objects.get().sent_at is None
