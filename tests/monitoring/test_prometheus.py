"""A real Prometheus (Debian's package) scrapes Solaris served by 2 uvicorn workers against the
real LiteLLM, with the alert rules of ops/prometheus/alerts.yml: an open circuit and a ledger
violation planted in the test database fire their alerts, read back from Prometheus's API.

The rules are the shipped ones with every `for:` cut to 2 s, scraped and evaluated every second
(a copy written for the test); expressions and thresholds are untouched.
"""

import time

import httpx
import pytest
import yaml

from accounts.services import api_key_create
from credits.models import Account
from monitoring.tasks import check_ledger
from tests.conftest import ROOT
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory
from tests.monitoring.servers import PROMETHEUS, Prometheus, Workers, free_port
from tests.monitoring.test_dashboard import dashboard, panel_queries
from tests.proxy.litellm_server import litellm_running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,  # the circuit both workers share lives in the cache
    pytest.mark.litellm,
    pytest.mark.skipif(
        not PROMETHEUS.exists(), reason="needs Prometheus: apt-get install prometheus"
    ),
    pytest.mark.django_db(transaction=True),
]

TEST_FOR = "2s"
MESSAGES = [{"role": "user", "content": "Olá"}]


@pytest.fixture(scope="module")
def litellm():
    with litellm_running(ROOT / ".litellm-venv", free_port()) as upstream:
        yield upstream


def rules_for_test(tmp_path) -> str:
    rules = yaml.safe_load((ROOT / "ops" / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    return str(path)


def shipped_authorization(tmp_path, token: str) -> dict:
    """ops/prometheus/prometheus.yml's authorization of the solaris job, its credentials file (the
    compose secret) written here."""
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    path = tmp_path / "solaris_metrics_token"
    path.write_text(token + "\n")
    return {**job["authorization"], "credentials_file": str(path)}


@pytest.fixture
def stack(tmp_path, litellm, transactional_db):
    base_url, master_key = litellm
    # Warm LiteLLM up: its first answer may be slower than the short timeout below.
    httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"model": "mock-gpt", "messages": MESSAGES},
        timeout=30,
    ).raise_for_status()
    workers = Workers(
        tmp_path,
        LITELLM_BASE_URL=base_url,
        LITELLM_API_KEY=master_key,
        # mock-gpt-slow answers after 2 s: a timeout, which always counts for the circuit.
        SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT="1",
        SOLARIS_CIRCUIT_FAILURES="2",
        SOLARIS_CIRCUIT_OPEN_SECONDS="600",
        SOLARIS_CIRCUIT_CLEAR_SECONDS="0",
    ).start()
    prometheus = Prometheus(
        tmp_path,
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules_for_test(tmp_path)],
            "scrape_configs": [
                {
                    "job_name": "solaris",
                    "static_configs": [{"targets": [f"127.0.0.1:{workers.port}"]}],
                    "authorization": shipped_authorization(tmp_path, workers.metrics_token),
                }
            ],
        },
    ).start()
    yield workers, prometheus
    prometheus.stop()
    workers.stop()


def chat(workers: Workers, key: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{workers.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": MESSAGES, "max_tokens": 8},
        timeout=30,
    )


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


def scalar(prometheus: Prometheus, query: str) -> float | None:
    result = prometheus.api("query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def test_an_open_circuit_and_a_ledger_violation_fire_their_alerts(stack):
    workers, prometheus = stack
    PlanFactory(slug="basico", monthly_allowance=100_000, is_default=True)
    for model in ("mock-gpt", "mock-gpt-slow"):
        ModelPriceFactory(model=model, input_weight="1.5", output_weight="3")
    user = UserFactory(email="ana@example.com")
    key = api_key_create(user=user, name="prometheus")[1]

    for _ in range(4):
        assert chat(workers, key, "mock-gpt").status_code == 200
    wait_for(lambda: scalar(prometheus, 'up{job="solaris"}') == 1, "the first scrape")
    wait_for(
        lambda: scalar(prometheus, "sum(solaris_proxy_requests_total)") == 4,
        "one target to show the calls of both workers",
    )
    assert "SolarisCircuitOpen" not in prometheus.alerts()
    assert "SolarisLedgerViolation" not in prometheus.alerts()

    # Two timeouts open the circuit; the next call is refused without reaching LiteLLM.
    for _ in range(2):
        assert chat(workers, key, "mock-gpt-slow").status_code == 504
    refused = chat(workers, key, "mock-gpt")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "upstream_unavailable"

    # A violation planted in the database, found by the periodic check.
    Account.objects.filter(pk=user.pk).update(held=12_345)
    assert check_ledger.apply().get() == 1

    def both_firing() -> dict[str, str] | None:
        alerts = prometheus.alerts()
        wanted = ("SolarisCircuitOpen", "SolarisLedgerViolation")
        return alerts if all(alerts.get(name) == "firing" for name in wanted) else None

    firing = wait_for(both_firing, "SolarisCircuitOpen and SolarisLedgerViolation to fire")
    # LiteLLM answers its health check: readiness holds even with the circuit open.
    assert "SolarisNotReady" not in firing and "SolarisDown" not in firing
    assert scalar(prometheus, "max(solaris_ledger_violations)") == 1
    assert scalar(prometheus, 'sum(solaris_upstream_errors_total{kind="timeout"})') == 2

    # Every dashboard query is valid PromQL for this Prometheus.
    for queries in panel_queries(dashboard()).values():
        for expr in queries:
            prometheus.api("query", query=expr.replace("$__rate_interval", "1m"))
