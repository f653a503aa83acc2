"""/metrics: the installation-wide gauges computed at scrape time (monitoring.collector) and the
counters of events that happen outside the scraped process (reaper, shutdown)."""

import asyncio
import contextlib
import logging
import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from credits import services as credits
from credits.models import Account
from credits.tasks import reap_holds
from monitoring import selectors
from notifications import services as notifications
from notifications.models import Notification
from proxy import edge, metrics, protection, runtime
from tests.factories import CreditPackageFactory, ModelPriceFactory, PlanFactory, UserFactory
from tests.monitoring.conftest import value


@pytest.fixture
def unit(db):
    return ModelPriceFactory(model="unit", input_weight="1", output_weight="1")


@pytest.fixture
def customer(db):
    PlanFactory(slug="cem-mil", monthly_allowance=100_000, is_default=True)
    return UserFactory(email="cliente@example.com")


# What the e-mail templates of these kinds read.
CONTEXT = {
    "name": "Cliente",
    "available": 15_000,
    "used_percent": "85.00",
    "threshold": 80,
    "renews_at": "2030-01-01T00:00:00+00:00",
    "plan": "Cem mil",
    "allowance": 100_000,
    "purchase_id": 1,
    "credits": 50_000,
    "price_cents": 2_990,
    "package": "Pacote",
    "payment_reference": "",
    "paid_at": "2030-01-01T00:00:00+00:00",
    "expires_at": None,
}


def spend(user, price, amount: int, request_id: str) -> None:
    credits.hold_create(
        user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount
    )
    credits.hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)


def test_open_holds_their_credits_and_the_oldest_age(scrape, customer, unit):
    now = timezone.now()
    credits.hold_create(
        user=customer,
        request_id="old",
        price=unit,
        prompt_tokens=0,
        max_tokens=300,
        now=now - timedelta(seconds=600),
    )
    credits.hold_create(
        user=customer, request_id="new", price=unit, prompt_tokens=0, max_tokens=200
    )
    credits.hold_create(
        user=customer, request_id="done", price=unit, prompt_tokens=0, max_tokens=50
    )
    credits.hold_settle(request_id="done", prompt_tokens=0, completion_tokens=10)

    samples = scrape()
    assert value(samples, "solaris_holds_open") == 2
    assert value(samples, "solaris_holds_open_credits") == 500
    assert 600 <= value(samples, "solaris_holds_oldest_age_seconds") < 660
    assert value(samples, "solaris_hold_max_age_seconds") == 900


def test_no_open_hold_reads_zero(scrape, db):
    samples = scrape()
    assert value(samples, "solaris_holds_open") == 0
    assert value(samples, "solaris_holds_oldest_age_seconds") == 0


def test_the_reaper_counts_the_holds_it_released(scrape, customer, unit, caplog):
    long_ago = timezone.now() - timedelta(hours=1)
    for request_id in ("lost-1", "lost-2"):
        credits.hold_create(
            user=customer,
            request_id=request_id,
            price=unit,
            prompt_tokens=0,
            max_tokens=100,
            now=long_ago,
        )
    credits.hold_create(user=customer, request_id="live", price=unit, prompt_tokens=0, max_tokens=1)
    assert value(scrape(), "solaris_holds_reaped_total") == 0

    with caplog.at_level(logging.WARNING, logger="credits.tasks"):
        assert reap_holds.apply().get() == 2
    assert reap_holds.apply().get() == 0

    samples = scrape()
    assert value(samples, "solaris_holds_reaped_total") == 2
    assert value(samples, "solaris_holds_open") == 1
    reaped = [r.holds for r in caplog.records if r.name == "credits.tasks"]
    assert reaped == [2]


def test_notifications_by_kind_and_delivery_state(scrape, customer, settings):
    settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS = 2

    def outbox(kind: str) -> Notification:
        return notifications.notification_create(
            kind=kind,
            recipient="cliente@example.com",
            language="pt-br",
            dedupe_key=f"test:{kind}",
            account_id=customer.pk,
            context=CONTEXT,
        )

    def deliver(notification: Notification) -> None:
        Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
        with contextlib.suppress(notifications.DeliveryFailed):
            notifications.notification_deliver(notification_id=notification.pk)

    outbox(Notification.Kind.CREDITS_ALERT)  # never tried: pending
    sent = outbox(Notification.Kind.CYCLE_RENEWED)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    deliver(sent)
    settings.EMAIL_BACKEND = "tests.notifications.backends.FailingBackend"
    retrying = outbox(Notification.Kind.CREDITS_BLOCKED)
    deliver(retrying)
    failed = outbox(Notification.Kind.PURCHASE_CONFIRMED)
    deliver(failed)
    deliver(failed)

    samples = scrape()
    states = {
        (kind, state): value(samples, "solaris_notifications", kind=kind, state=state)
        for kind in Notification.Kind.values
        for state in ("pending", "retrying", "failed", "sent")
    }
    assert {key: n for key, n in states.items() if n} == {
        ("credits_alert", "pending"): 1,
        ("cycle_renewed", "sent"): 1,
        ("credits_blocked", "retrying"): 1,
        ("purchase_confirmed", "failed"): 1,
    }
    # Every kind and state is there, at zero when nothing is in it (rates and deltas need them).
    assert all(n is not None for n in states.values())


def test_purchases_by_status(scrape, customer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    package = CreditPackageFactory()
    first = credits.purchase_request(user=customer, idempotency_key="p-1", package=package)
    credits.purchase_request(user=customer, idempotency_key="p-2", package=package)
    credits.purchase_confirm(purchase=first, confirmed_by=None)

    samples = scrape()
    assert value(samples, "solaris_purchases", status="requested") == 1
    assert value(samples, "solaris_purchases", status="credited") == 1
    assert value(samples, "solaris_purchases", status="cancelled") == 0


def test_customers_by_credit_state(scrape, unit, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    PlanFactory(slug="cem-mil", monthly_allowance=100_000, is_default=True)
    UserFactory(email="tranquila@example.com")
    alert = UserFactory(email="alerta@example.com")
    spend(alert, unit, 85_000, "alert-1")
    blocked = UserFactory(email="zerada@example.com")
    spend(blocked, unit, 100_000, "blocked-1")

    samples = scrape()
    assert value(samples, "solaris_accounts", state="normal") == 1
    assert value(samples, "solaris_accounts", state="alert") == 1
    assert value(samples, "solaris_accounts", state="blocked") == 1


def test_ledger_gauges_appear_with_the_first_check(scrape, customer):
    from monitoring.tasks import check_ledger

    samples = scrape()
    assert value(samples, "solaris_ledger_check_interval_seconds") == 3600
    assert value(samples, "solaris_ledger_violations") is None
    assert value(samples, "solaris_ledger_check_timestamp_seconds") is None

    assert check_ledger.apply().get() == 0
    Account.objects.filter(pk=customer.pk).update(held=7)
    assert check_ledger.apply().get() == 1

    samples = scrape()
    assert value(samples, "solaris_ledger_violations") == 1
    checked = selectors.ledger_check_last()
    assert value(samples, "solaris_ledger_check_timestamp_seconds") == pytest.approx(
        checked.checked_at.timestamp()
    )
    assert abs(checked.checked_at.timestamp() - timezone.now().timestamp()) < 60


def test_readiness_and_circuit_state(scrape, db, settings):
    settings.LITELLM_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    samples = scrape()
    assert value(samples, "solaris_ready", check="database") == 1
    assert value(samples, "solaris_ready", check="cache") == 1
    assert value(samples, "solaris_ready", check="upstream") == 0
    assert value(samples, "solaris_upstream_circuit_state") == 0

    protection.circuit_record(
        ticket=protection.circuit_admit(), verdict=protection.FAILURE, user_id=0
    )
    assert value(scrape(), "solaris_upstream_circuit_state") == 2


def test_a_failing_group_is_left_out_and_the_scrape_still_answers(scrape, db, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(selectors, "holds_open", broken)
    with caplog.at_level(logging.ERROR, logger="monitoring.collector"):
        samples = scrape()
    assert value(samples, "solaris_holds_open") is None
    assert value(samples, "solaris_hold_max_age_seconds") is None
    assert value(samples, "solaris_accounts", state="normal") == 0
    assert value(samples, "solaris_ready", check="database") == 1
    assert [r.group for r in caplog.records if r.name == "monitoring.collector"] == ["holds"]


def test_the_database_gauges_are_computed_once_per_scrape(
    client, customer, django_assert_max_num_queries
):
    # holds, notifications, purchases, accounts (and the plans and prices of their blocked lines,
    # when the per-process cache is cold), ledger check, readiness's SELECT 1
    with django_assert_max_num_queries(8):
        assert client.get("/metrics").status_code == 200


async def test_settlements_left_at_shutdown_are_counted(settings, db):
    settings.SOLARIS_SHUTDOWN_SETTLE_SECONDS = 0.05
    stuck = asyncio.ensure_future(asyncio.sleep(3600))
    runtime.settlements.add(stuck)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    try:
        await edge.lifespan(receive, send)
    finally:
        runtime.settlements.discard(stuck)
        stuck.cancel()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    from kernel.shared_counters import SHUTDOWN_UNSETTLED, shared_counters_get

    assert shared_counters_get()[SHUTDOWN_UNSETTLED] == 1


def test_a_worker_drops_the_live_gauges_of_dead_workers_and_its_own_at_exit(tmp_path, settings):
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    own = os.getpid()
    for name in (f"gauge_livesum_{dead.pid}", f"gauge_livesum_{own}", f"counter_{dead.pid}"):
        (tmp_path / f"{name}.db").write_bytes(b"")

    metrics.dead_processes_forget()
    left = sorted(path.name for path in tmp_path.iterdir())
    # A dead worker's counters stay: they are part of the server's totals.
    assert left == sorted([f"counter_{dead.pid}.db", f"gauge_livesum_{own}.db"])

    metrics.process_forget()
    assert [path.name for path in tmp_path.iterdir()] == [f"counter_{dead.pid}.db"]
