"""Solaris as production runs it — scripts/serve.sh, 2 uvicorn workers, multiprocess metrics —
scraped for real: one scrape of either worker is the whole server, the database gauges are
computed once, and every name the dashboard and the alert rules read is one it exposes."""

import time

import httpx
import pytest
import yaml

from accounts.services import api_key_create
from credits import services as credits
from monitoring.tasks import check_ledger
from proxy.models import CallRecord
from tests.conftest import ROOT
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory
from tests.monitoring.conftest import samples_of, value
from tests.monitoring.promql import metric_names
from tests.monitoring.servers import Workers
from tests.monitoring.test_dashboard import dashboard, panel_queries
from tests.proxy.fault_upstream import FaultUpstream

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMPLETED = {"model": "fault-ok", "status": "200", "end_reason": "completed"}


@pytest.fixture(scope="module")
def upstream():
    server = FaultUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def served(tmp_path, upstream, transactional_db):
    workers = Workers(tmp_path, LITELLM_BASE_URL=upstream.base_url).start()
    yield workers
    workers.stop()


@pytest.fixture
def key(transactional_db):
    PlanFactory(slug="ilimitado", monthly_allowance=10_000_000, is_default=True)
    for model in ("fault-ok", "fault-error-before", "fault-context"):
        ModelPriceFactory(model=model, input_weight="1", output_weight="2")
    return api_key_create(user=UserFactory(email="carga@example.com"), name="carga")[1]


def call(served: Workers, key: str, model: str = "fault-ok") -> int:
    # A client of its own per call: a new connection, which either worker may accept.
    response = httpx.post(
        f"{served.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "oi"}], "max_tokens": 3},
        timeout=30,
    )
    return response.status_code


def wait_until(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_scrape_of_either_worker_counts_every_call(served, key):
    sample = "solaris_proxy_requests_total"
    made = 0
    # Until both workers have served calls (the kernel hands connections to either).
    while len([n for n in served.per_worker(sample).values() if n]) < 2:
        assert made < 300, f"one worker took every call: {served.per_worker(sample)}"
        for _ in range(10):
            assert call(served, key) == 200
            made += 1
        # Calls are counted at their settlement, just after the answer.
        wait_until(lambda total=made: sum(served.per_worker(sample).values()) == total)
    per_worker = served.per_worker(sample)
    assert len(per_worker) == 2 and all(0 < n < made for n in per_worker.values())

    # Several scrapes, each answered by either worker: every one shows all the calls.
    for _ in range(6):
        samples = samples_of(served.scrape())
        assert value(samples, sample, **COMPLETED) == made
        assert value(samples, "solaris_proxy_credits_total", model="fault-ok") == sum(
            CallRecord.objects.values_list("credits", flat=True)
        )
        assert value(samples, "solaris_proxy_open_streams") == 0
        assert value(samples, "solaris_proxy_settlements_running") == 0
    assert CallRecord.objects.count() == made


def test_database_gauges_are_computed_once_not_summed_per_worker(served):
    PlanFactory(slug="basico", monthly_allowance=1_000, is_default=True)
    user = UserFactory(email="reservas@example.com")
    price = ModelPriceFactory(model="fault-ok")
    for index in range(3):
        credits.hold_create(
            user=user, request_id=f"open-{index}", price=price, prompt_tokens=0, max_tokens=10
        )
    for _ in range(4):
        samples = samples_of(served.scrape())
        assert value(samples, "solaris_holds_open") == 3
        assert value(samples, "solaris_holds_open_credits") == 60
        assert value(samples, "solaris_accounts", state="normal") == 1


def test_the_files_of_an_earlier_run_are_removed_at_start(tmp_path, upstream, key):
    """A restart (same metrics directory) starts the counters again: no pid takes over old files."""
    first = Workers(tmp_path, LITELLM_BASE_URL=upstream.base_url).start()
    try:
        for _ in range(5):
            assert call(first, key) == 200
        wait_until(
            lambda: (
                value(samples_of(first.scrape()), "solaris_proxy_requests_total", **COMPLETED) == 5
            )
        )
    finally:
        first.stop()
    again = Workers(tmp_path, LITELLM_BASE_URL=upstream.base_url).start()
    try:
        assert call(again, key) == 200
        wait_until(
            lambda: (
                value(samples_of(again.scrape()), "solaris_proxy_requests_total", **COMPLETED) == 1
            )
        )
    finally:
        again.stop()


def test_the_dashboard_and_the_rules_read_only_metrics_solaris_exports(served, key):
    assert call(served, key) == 200
    assert call(served, key, "fault-error-before") == 502
    assert call(served, key, "fault-context") == 400
    assert call(served, "sol-wrong", "fault-ok") == 401
    check_ledger.apply()
    wait_until(lambda: CallRecord.objects.count() == 3)
    exported = {name for name, _labels in samples_of(served.scrape())}

    for title, queries in panel_queries(dashboard()).items():
        for expr in queries:
            unknown = metric_names(expr) - exported
            assert not unknown, f"panel {title!r} reads {unknown}, not in /metrics"
    for path in ("alerts.yml", "optional/no-traffic.yml"):
        groups = yaml.safe_load((ROOT / "ops" / "prometheus" / path).read_text())["groups"]
        for rule in (rule for group in groups for rule in group["rules"]):
            # `up` is Prometheus's own, one per scrape target.
            unknown = metric_names(rule["expr"]) - exported - {"up"}
            assert not unknown, f"{rule['alert']} reads {unknown}, not in /metrics"

    samples = samples_of(served.scrape())
    assert value(samples, "solaris_upstream_errors_total", kind="server_error") == 1
    assert value(samples, "solaris_upstream_errors_total", kind="client_error") == 1
    assert value(samples, "solaris_ledger_violations") == 0
