"""The attacks that worked against the real LiteLLM (1.106.2, tests/proxy/litellm_config.yaml),
tried again through Solaris. What LiteLLM received is read from its own recorder callback
(tests/proxy/litellm_recorder.py)."""

import httpx
import pytest

from accounts.services import api_key_create
from proxy import protection
from proxy.models import CallRecord
from tests.factories import UserFactory
from tests.proxy.fault_upstream import wait_until

pytestmark = pytest.mark.litellm

MESSAGES = [{"role": "user", "content": "hi"}]
ANSWER = "Hello from the Solaris mock model."
# Each made LiteLLM answer 500 (or reroute, or answer for free) when it reached it.
MALFORMED = [
    {"timeout": "abc"},
    {"response_format": 5},
    {"fallbacks": ["mock-gpt"]},
    {"context_window_fallbacks": [{"mock-error": ["mock-gpt"]}]},
    {"num_retries": 3},
    {"mock_response": "free"},
    {"stream_options": {"include_usage": "yes"}},
    {"max_tokens": 10**30},
]


def chat(solaris, key, body, **kwargs):
    return httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=30,
        **kwargs,
    )


def test_fallbacks_never_reach_litellm(
    via_litellm, solaris, member, member_key, settings, litellm_received
):
    """Sent to LiteLLM directly, `fallbacks` makes a failing model answer from another one (the
    plan bypass); through Solaris it is refused and LiteLLM never sees it, even when the operator
    lists it as an extra."""
    base_url, master_key = via_litellm
    direct = httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"model": "mock-error", "messages": MESSAGES, "fallbacks": ["mock-gpt"]},
        timeout=30,
    )
    assert direct.status_code == 200 and direct.json()["choices"][0]["message"]["content"] == ANSWER
    assert litellm_received.bodies()[0]["fallbacks"] == ["mock-gpt"]
    litellm_received.clear()
    plan = member.subscription.plan
    plan.all_models, plan.allowed_models = False, ["mock-error"]
    plan.save()
    body = {"model": "mock-error", "messages": MESSAGES, "fallbacks": ["mock-gpt"]}
    for extras in ([], ["fallbacks"]):
        settings.SOLARIS_EXTRA_PARAMS = extras
        refused = chat(solaris, member_key, body)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "unsupported_parameter"
        assert refused.json()["error"]["param"] == "fallbacks"
    assert litellm_received.bodies() == []
    # Without the field the call reaches LiteLLM, and fails as that model fails.
    plain = chat(solaris, member_key, {"model": "mock-error", "messages": MESSAGES})
    assert plain.status_code == 502
    [received] = litellm_received.bodies()
    assert "fallbacks" not in received and received["model"] == "mock-error"


def test_malformed_floods_from_one_key_leave_another_users_call_answering(
    via_litellm, solaris, member, member_key, settings, litellm_received
):
    """One key sends what used to make LiteLLM answer 500, and calls a model that does answer
    500, over and over: the circuit stays closed, another user's next call answers 200."""
    settings.SOLARIS_CIRCUIT_FAILURES = 2
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 0
    for _round in range(3):
        for fields in MALFORMED:
            response = chat(
                solaris, member_key, {"model": "mock-gpt", "messages": MESSAGES, **fields}
            )
            assert response.status_code == 400
        for stream in (False, True):
            failed = chat(
                solaris, member_key, {"model": "mock-error", "messages": MESSAGES, "stream": stream}
            )
            assert failed.status_code == 502
    solaris.settled()
    # Only the well-formed calls reached LiteLLM; they failed there, for one user only.
    assert [body["model"] for body in litellm_received.bodies()] == ["mock-error"] * 6
    assert protection.circuit_state() == protection.CLOSED
    victim = UserFactory(email="victim@example.com")
    answer = chat(
        solaris,
        api_key_create(user=victim, name="k")[1],
        {"model": "mock-gpt", "messages": MESSAGES},
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == ANSWER
    refused = CallRecord.objects.filter(user=member, error_code="unsupported_parameter")
    assert refused.count() == 3 * 5  # the other malformed ones are invalid_request_error
    assert not CallRecord.objects.filter(error_code="upstream_unavailable").exists()


def test_server_errors_for_three_users_open_the_circuit(via_litellm, solaris, member_key, settings):
    """The same 5xx for three distinct end users is an outage, not a caller's doing: it opens
    the circuit (the counterpart of the test above, against the same LiteLLM)."""
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 0
    keys = [member_key] + [
        api_key_create(user=UserFactory(email=f"user{n}@example.com"), name="k")[1]
        for n in range(2)
    ]
    for key in keys:
        assert chat(solaris, key, {"model": "mock-error", "messages": MESSAGES}).status_code == 502
    wait_until(lambda: protection.circuit_state() == protection.OPEN)
    closed = chat(solaris, keys[0], {"model": "mock-gpt", "messages": MESSAGES})
    assert closed.status_code == 503
    assert closed.json()["error"]["code"] == "upstream_unavailable"


def test_through_librechat_5xx_count_per_librechat_user(
    via_litellm, solaris, integration_key, plan_live, settings
):
    """All LibreChat users share one integration key: the end user counted is the LibreChat
    identity. One of them failing again and again leaves the circuit closed; three open it."""
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 0

    def as_user(n, model):
        return httpx.post(
            f"{solaris.url}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {integration_key}",
                "X-LibreChat-User-Email": f"lc{n}@example.com",
                "X-LibreChat-User-Id": f"lc-{n}",
            },
            json={"model": model, "messages": MESSAGES},
            timeout=30,
        )

    for _attempt in range(6):
        assert as_user(1, "mock-error").status_code == 502
    solaris.settled()
    assert protection.circuit_state() == protection.CLOSED
    assert as_user(2, "mock-gpt").status_code == 200
    for n in (2, 3):
        assert as_user(n, "mock-error").status_code == 502
    wait_until(lambda: protection.circuit_state() == protection.OPEN)
    # A LibreChat user behind the open circuit reads it in band (docs/proxy.md, notices).
    refused = as_user(4, "mock-gpt")
    assert refused.status_code == 200
    assert refused.headers["X-Solaris-Notice"] == "upstream_unavailable"
