"""End to end on the production topology: PostgreSQL, Redis as broker, a real `celery worker`
process and a real SMTP server (aiosmtpd)."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from credits import services as credits
from credits.selectors import account_summary
from notifications.models import Notification
from notifications.tasks import sweep_notifications
from solaris.celery import app as celery_app
from tests.notifications.conftest import celery_reconnect

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30
PUBLIC_URL = "https://solaris.example.com.br"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self):
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def wait_for(self, count: int) -> list[EmailMessage]:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.messages


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def worker_database_url() -> str:
    """The worker must read the database pytest-django created, not the configured one."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def part(message: EmailMessage, subtype: str) -> str:
    return message.get_body(preferencelist=(subtype,)).get_content()


@pytest.fixture
def worker(smtp, tmp_path):
    _inbox, port = smtp
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "SOLARIS_PUBLIC_URL": PUBLIC_URL,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "worker-test-secret"),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.pop("CELERY_BROKER_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "solaris",
            "worker",
            "--pool=solo",
            "--purge",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log = log
    deadline = time.monotonic() + WAIT_SECONDS
    # --purge drops stale messages at start-up: publish nothing before the worker is ready.
    while b" ready." not in log.read_bytes():
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.2)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def real_broker():
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_reconnect()
    yield
    celery_reconnect()
    celery_app.conf.task_always_eager = saved


def worker_output(process) -> str:
    return process.log.read_text(errors="replace")[-4000:]


def test_alert_travels_through_a_real_worker_to_a_real_smtp_server(
    user, eco, smtp, worker, real_broker
):
    inbox, _port = smtp
    credits.hold_create(user=user, request_id="w-1", price=eco, prompt_tokens=0, max_tokens=85_000)
    credits.hold_settle(request_id="w-1", prompt_tokens=0, completion_tokens=85_000)

    messages = inbox.wait_for(1)
    assert len(messages) == 1, worker_output(worker)
    message = messages[0]
    assert message["Subject"] == "Você já usou 85% dos seus créditos"
    assert message["X-Envelope-To"] == "ana@example.com"
    assert message["To"] == "ana@example.com"
    text, html = part(message, "plain"), part(message, "html")
    assert f"{PUBLIC_URL}/conta/comprar/" in text
    assert f'href="{PUBLIC_URL}/conta/"' in html

    deadline = time.monotonic() + WAIT_SECONDS
    while Notification.objects.filter(sent_at__isnull=True).exists():
        assert time.monotonic() < deadline, "the worker sent the mail but never marked it sent"
        time.sleep(0.2)
    notification = Notification.objects.get()
    assert notification.attempts == 1
    assert notification.state == Notification.State.SENT


def test_after_a_broker_outage_the_sweep_delivers_exactly_once(
    user, eco, smtp, worker, real_broker, settings
):
    inbox, _port = smtp
    working_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # the outage
    celery_reconnect()
    credits.hold_create(user=user, request_id="w-2", price=eco, prompt_tokens=0, max_tokens=100_000)
    credits.hold_settle(request_id="w-2", prompt_tokens=0, completion_tokens=100_000)
    notification = Notification.objects.get()
    assert notification.kind == Notification.Kind.CREDITS_BLOCKED
    assert notification.state == Notification.State.PENDING

    celery_app.conf.broker_url = working_broker  # the broker is back
    celery_reconnect()
    # A few minutes later beat publishes the sweep; the worker runs it and then the delivery.
    Notification.objects.filter(pk=notification.pk).update(
        created_at=notification.created_at
        - timedelta(seconds=settings.SOLARIS_NOTIFICATION_SWEEP_AFTER_SECONDS + 1)
    )
    sweep_notifications.delay()

    messages = inbox.wait_for(1)
    assert len(messages) == 1, worker_output(worker)
    assert messages[0]["X-Envelope-To"] == "ana@example.com"
    assert messages[0]["Subject"] == "Seus créditos acabaram: veja como comprar mais"
    assert f"{PUBLIC_URL}/conta/comprar/" in part(messages[0], "plain")

    deadline = time.monotonic() + WAIT_SECONDS
    while not Notification.objects.filter(sent_at__isnull=False).exists():
        assert time.monotonic() < deadline, "never marked sent"
        time.sleep(0.2)
    sweep_notifications.delay()  # a later sweep finds nothing left to send
    time.sleep(2)
    assert len(inbox.messages) == 1
    assert Notification.objects.get().attempts == 1


def _all_sent() -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while Notification.objects.filter(sent_at__isnull=True).exists():
        assert time.monotonic() < deadline, "a notification was never sent"
        time.sleep(0.2)


def test_blocked_before_zero_mails_once_per_crossing_and_a_top_up_rearms_it(
    user, eco, smtp, worker, real_broker
):
    """Blocked means too little for a short call (200 prompt + 256 answer tokens at 1 credit
    each: 456), not zero: leaving 300 credits sends one blocked e-mail; refusals and calls after
    it send none; a top-up re-arms it, and the next crossing sends the second one."""
    inbox, _port = smtp
    credits.hold_create(user=user, request_id="b-1", price=eco, prompt_tokens=0, max_tokens=99_700)
    credits.hold_settle(request_id="b-1", prompt_tokens=0, completion_tokens=99_700)
    assert account_summary(user_id=user.pk).state == "blocked"
    with pytest.raises(credits.InsufficientCredits):
        credits.hold_create(
            user=user, request_id="b-2", price=eco, prompt_tokens=100, max_tokens=999
        )
    assert credits.notification_credits_refused(user_id=user.pk) is None
    credits.hold_create(user=user, request_id="b-3", price=eco, prompt_tokens=0, max_tokens=50)
    credits.hold_settle(request_id="b-3", prompt_tokens=0, completion_tokens=50)  # 250 left
    assert len(inbox.wait_for(1)) == 1, worker_output(worker)
    _all_sent()
    time.sleep(1)
    assert [m["Subject"] for m in inbox.messages] == [
        "Seus créditos acabaram: veja como comprar mais"
    ]
    assert "300" in part(inbox.messages[0], "plain")  # what was left at the crossing

    credits.credits_grant(user=user, amount=10_000, idempotency_key="top-up")
    assert account_summary(user_id=user.pk).state == "alert"
    credits.hold_create(user=user, request_id="b-4", price=eco, prompt_tokens=0, max_tokens=9_900)
    credits.hold_settle(request_id="b-4", prompt_tokens=0, completion_tokens=9_900)
    assert len(inbox.wait_for(2)) == 2, worker_output(worker)
    _all_sent()
    time.sleep(1)
    assert [m["Subject"] for m in inbox.messages] == [
        "Seus créditos acabaram: veja como comprar mais"
    ] * 2
    kinds = list(Notification.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [Notification.Kind.CREDITS_BLOCKED] * 2
