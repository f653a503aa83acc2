"""What the proxy counts per process (proxy/metrics.py) when the upstream fails in each way."""

import httpx
import pytest

from proxy import metrics
from proxy.models import CallRecord
from tests.proxy.fault_upstream import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Olá"}]


def errors() -> dict[str, float]:
    return {
        kind: metrics.REGISTRY.get_sample_value("solaris_upstream_errors_total", {"kind": kind})
        for kind in metrics.UPSTREAM_ERROR_KINDS
    }


def post(solaris, key: str, model: str, *, stream: bool = False) -> httpx.Response:
    return httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": MESSAGES, "max_tokens": 4, "stream": stream},
        timeout=20,
    )


@pytest.mark.parametrize(
    ("model", "stream", "status", "kind"),
    [
        ("fault-error-before", False, 502, "server_error"),
        ("fault-bad-json", False, 502, "server_error"),
        ("fault-error-event", True, 200, "server_error"),
        ("fault-cut", True, 200, "server_error"),
        ("fault-context", False, 400, "client_error"),
        ("fault-auth", False, 502, "auth"),
        ("fault-slow-first-byte", False, 504, "timeout"),
        ("unreachable", False, 503, "unavailable"),
    ],
)
def test_each_upstream_failure_is_counted_once_by_kind(
    faulty, solaris, member, member_key, settings, model, stream, status, kind
):
    settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = 1.0
    if model == "unreachable":
        settings.LITELLM_BASE_URL = faulty.base_url.rsplit(":", 1)[0] + ":1"
        model = "fault-ok"
    before = errors()
    assert post(solaris, member_key, model, stream=stream).status_code == status
    wait_until(lambda: CallRecord.objects.filter(user=member).exists())
    solaris.settled()
    after = errors()
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {kind: 1}


def test_a_completed_call_is_no_upstream_error(faulty, solaris, member, member_key):
    before = errors()
    assert post(solaris, member_key, "fault-ok", stream=True).status_code == 200
    wait_until(lambda: CallRecord.objects.filter(user=member).exists())
    solaris.settled()
    assert errors() == before
    assert metrics.REGISTRY.get_sample_value("solaris_proxy_settlements_running") == 0


def test_notices_are_counted_by_code():
    before = metrics.REGISTRY.get_sample_value(
        "solaris_proxy_notices_total", {"code": "insufficient_quota"}
    )
    metrics.notice_observe(code="insufficient_quota")
    after = metrics.REGISTRY.get_sample_value(
        "solaris_proxy_notices_total", {"code": "insufficient_quota"}
    )
    assert after == before + 1
