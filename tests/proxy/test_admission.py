"""Identity, admission, limits, headers and notices of the proxy, over real HTTP (uvicorn) against
the fault-injecting upstream, which records what Solaris forwarded."""

import json
import threading

import httpx
import openai
import pytest

from accounts.models import User
from accounts.services import api_key_create
from credits.models import Hold, LedgerEntry
from credits.selectors import account_summary, ledger_violations
from credits.services import credits_grant, hold_create, hold_settle
from kernel.local_cache import lookups_changed
from notifications.models import Notification
from proxy.models import CallRecord
from proxy.payload import NOTICE_MARK
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory
from tests.proxy.fault_upstream import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Olá"}]


def post(solaris, key, body, headers=None, **kwargs):
    """One call; returns once it is answered and settled (settlement lands after the answer)."""
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={**auth, **(headers or {})},
        json=body,
        timeout=20,
        **kwargs,
    )
    solaris.settled()
    return response


def sdk(solaris, key, **kwargs):
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=f"{solaris.url}/v1", api_key=key, timeout=20, **kwargs)


def error_of(response):
    body = response.json()
    assert set(body["error"]) == {"message", "type", "code", "param"}
    return body["error"]


# --- identity (docs/librechat.md) ---


@pytest.mark.parametrize("key", ["", "sol-wrong", "sk-other"])
def test_missing_or_wrong_key(faulty, solaris, key):
    response = post(solaris, key, {"model": "fault-ok", "messages": MESSAGES})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert faulty.requests == []


def test_librechat_headers_provision_the_user(faulty, solaris, plan_live, integration_key):
    headers = {
        "X-LibreChat-User-Email": "Nova@Example.com",
        "X-LibreChat-User-Id": "lc-123",
        "X-LibreChat-Conversation-Id": "conv-9",
    }
    stream = sdk(solaris, integration_key, default_headers=headers).chat.completions.create(
        model="fault-ok", messages=MESSAGES, stream=True, max_tokens=2
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    user = User.objects.get(email="nova@example.com")
    assert user.librechat_id == "lc-123"
    assert user.subscription.plan == plan_live
    assert faulty.last_body()["user"] == str(user.pk)
    record = wait_until(lambda: CallRecord.objects.filter(user=user).first())
    assert record.integration_id and record.conversation_id == "conv-9"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-LibreChat-User-Email": "{{LIBRECHAT_USER_EMAIL}}"},
        {"X-LibreChat-User-Email": "", "X-LibreChat-User-Id": ""},
        {"X-LibreChat-User-Email": "", "X-LibreChat-User-Id": "{{LIBRECHAT_USER_ID}}"},
        {},
    ],
)
def test_unusable_identity_is_refused(faulty, solaris, plan_live, integration_key, headers):
    users = User.objects.count()
    body = {"model": "fault-ok", "messages": MESSAGES, "user": "{{LIBRECHAT_USER_ID}}"}
    response = post(solaris, integration_key, body, headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "user_identity_missing"
    assert User.objects.count() == users
    assert faulty.requests == []


def test_body_user_identifies_a_known_librechat_user(faulty, solaris, member, integration_key):
    User.objects.filter(pk=member.pk).update(librechat_id="lc-bia")
    response = post(
        solaris,
        integration_key,
        {"model": "fault-ok", "messages": MESSAGES, "user": "lc-bia", "max_tokens": 2},
        {"X-LibreChat-User-Email": "{{LIBRECHAT_USER_EMAIL}}"},
    )
    assert response.status_code == 200
    assert faulty.last_body()["user"] == str(member.pk)


def test_title_call_in_parallel_with_the_message(faulty, solaris, member, integration_key):
    """LibreChat's title request: non-streamed, same headers, often at the same time."""
    headers = {"X-LibreChat-User-Email": member.email, "X-LibreChat-User-Id": "lc-bia"}
    client = sdk(solaris, integration_key, default_headers=headers)
    results = {}

    def chat():
        stream = client.chat.completions.create(
            model="fault-slow-stream", messages=MESSAGES, stream=True, max_tokens=6
        )
        results["chat"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    thread = threading.Thread(target=chat)
    thread.start()
    title = client.chat.completions.create(
        model="fault-ok",
        messages=[{"role": "system", "content": "Write a title"}, *MESSAGES],
        max_tokens=3,
    )
    thread.join(20)
    assert title.choices[0].message.content == "palavra " * 3
    assert results["chat"] == "x" * 6
    records = wait_until(
        lambda: list(CallRecord.objects.filter(user=member).order_by("stream")) or None
    )
    wait_until(lambda: CallRecord.objects.filter(user=member).count() == 2)
    records = list(CallRecord.objects.filter(user=member).order_by("stream"))
    assert [(r.stream, r.completion_tokens, r.credits) for r in records] == [
        (False, 3, 10 + 6),
        (True, 6, 10 + 12),
    ]
    assert ledger_violations() == []


def test_suspended_account(faulty, solaris, member, member_key):
    User.objects.filter(pk=member.pk).update(is_suspended=True)
    response = post(solaris, member_key, {"model": "fault-ok", "messages": MESSAGES})
    assert response.status_code == 403
    assert error_of(response)["code"] == "account_suspended"


# --- admission ---


def test_unpriced_inactive_and_not_allowed_models(faulty, solaris, member, member_key):
    ModelPriceFactory(model="dormant", active=False)
    for model in ("nope", "dormant"):
        response = post(solaris, member_key, {"model": model, "messages": MESSAGES})
        assert response.status_code == 404
        assert error_of(response) | {"message": ""} == {
            "message": "",
            "type": "invalid_request_error",
            "code": "model_not_found",
            "param": "model",
        }
    plan = member.subscription.plan
    plan.all_models, plan.allowed_models = False, ["fault-big"]
    plan.save()
    response = post(solaris, member_key, {"model": "fault-ok", "messages": MESSAGES})
    assert response.status_code == 403
    assert error_of(response)["code"] == "model_not_allowed"
    assert faulty.requests == []
    refused = CallRecord.objects.filter(user=member, end_reason="refused")
    assert sorted(refused.values_list("error_code", flat=True)) == [
        "model_not_allowed",
        "model_not_found",
        "model_not_found",
    ]


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b'{"messages": []}', "model"),
        (b'{"model": "fault-ok"}', "messages"),
        (b'{"model": "fault-ok", "messages": ["x"]}', "messages.[0]"),
        (b'{"model": "fault-ok", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
        (b'{"model": "fault-ok", "messages": [{"role": "user"}], "max_tokens": "9"}', "max_tokens"),
        (b'{"model": "fault-ok", "messages": [{"role": "user"}], "n": 99}', "n"),
        (b'{"model": "fault-ok", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
        (
            b'{"model": "fault-ok", "messages": [{"role": "user"}], "stream_options": 1}',
            "stream_options",
        ),
    ],
)
def test_malformed_requests(faulty, solaris, member, member_key, raw, param):
    response = httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}", "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request_error" and error["param"] == param
    assert faulty.requests == []
    assert not Hold.objects.exists()


def test_body_size_limit(faulty, solaris, member_key, settings):
    settings.SOLARIS_MAX_BODY_BYTES = 2_000
    big = [{"role": "user", "content": "x" * 3_000}]
    response = post(solaris, member_key, {"model": "fault-ok", "messages": big})
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    chunked = httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}"},
        content=iter([json.dumps({"model": "fault-ok", "messages": big}).encode()]),
    )
    assert chunked.status_code == 413


def poor_user(*, language="pt-br", credits=0):
    PlanFactory(slug="zero", monthly_allowance=0, default_max_tokens=1_000)
    user = UserFactory(email=f"pobre-{language}@example.com", plan_slug="zero", language=language)
    if credits:
        credits_grant(user=user, amount=credits, idempotency_key=f"poor-{language}")
    return user, api_key_create(user=user)[1]


@pytest.mark.parametrize(
    ("language", "words"), [("pt-br", "Para comprar mais"), ("en", "To buy more")]
)
def test_insufficient_quota(faulty, solaris, language, words, settings):
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    settings.SOLARIS_PUBLIC_URL = "https://ia.example"
    user, key = poor_user(language=language, credits=50)
    # The SDK's own retries stay off: x-should-retry: false.
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(solaris, key, max_retries=2).chat.completions.create(
            model="fault-ok", messages=MESSAGES
        )
    response = caught.value.response
    assert response.headers["x-should-retry"] == "false"
    assert "Retry-After" not in response.headers
    assert response.headers["X-Solaris-Credits-Remaining"] == "50"
    error = caught.value.body
    assert error["code"] == error["type"] == "insufficient_quota"
    assert words in error["message"]
    assert "https://ia.example/conta/" in error["message"]
    assert "compras@solaris.example" in error["message"]
    assert "{" not in error["message"]
    assert CallRecord.objects.filter(user=user, error_code="insufficient_quota").count() == 1
    assert faulty.requests == []


def test_refused_call_of_a_spent_account_sends_one_blocked_email(faulty, solaris, settings):
    settings.SOLARIS_MIN_ANSWER_TOKENS = 100
    user, key = poor_user(credits=1_000)
    price = ModelPriceFactory(model="fault-ok")
    admission = hold_create(
        user=user, request_id="spend", price=price, prompt_tokens=400, max_tokens=300
    )
    # 400 × 1 + 290 × 2 = 980 of 1,000 spent: 98 % used, too little left for 100 answer tokens.
    hold_settle(request_id=admission.hold.request_id, prompt_tokens=400, completion_tokens=290)
    for _attempt in range(2):
        response = post(solaris, key, {"model": "fault-ok", "messages": MESSAGES})
        assert response.status_code == 429
    blocked = Notification.objects.filter(
        account_id=user.pk, kind=Notification.Kind.CREDITS_BLOCKED
    )
    assert blocked.count() == 1
    assert blocked.get().recipient == user.email


def test_max_tokens_lowered_near_the_end_of_the_balance(faulty, solaris, settings):
    settings.SOLARIS_MIN_ANSWER_TOKENS = 10
    user, key = poor_user(credits=300)
    response = post(solaris, key, {"model": "fault-ok", "messages": MESSAGES, "max_tokens": 500})
    assert response.status_code == 200
    forwarded = faulty.last_body()["max_tokens"]
    record = CallRecord.objects.get(user=user)
    estimate = record.held - 2 * forwarded  # hold = estimate × 1 + max_tokens × 2
    assert forwarded == (300 - estimate) // 2 < 500
    assert account_summary(user_id=user.pk).available >= 0


def test_max_output_defaults_and_caps(faulty, solaris, member, member_key):
    post(solaris, member_key, {"model": "fault-ok", "messages": MESSAGES})
    assert faulty.last_body()["max_tokens"] == 64  # the plan's default
    ModelPriceFactory(model="fault-ok").__class__.objects.filter(model="fault-ok").update(
        max_output_tokens=7
    )
    lookups_changed()  # a raw UPDATE bypasses the signals that empty the per-process price cache
    post(
        solaris,
        member_key,
        {"model": "fault-ok", "messages": MESSAGES, "max_completion_tokens": 100, "n": 2},
    )
    sent = faulty.last_body()
    assert sent["max_completion_tokens"] == 7 and "max_tokens" not in sent
    record = CallRecord.objects.filter(user=member).order_by("-id").first()
    hold = Hold.objects.get(request_id=record.request_id)
    assert hold.amount == record.held
    assert (hold.amount - 2 * 7 * 2) > 0  # the prompt estimate plus n × max × weight


def test_upstream_ignoring_max_tokens_is_flagged(faulty, solaris, member, member_key):
    response = post(
        solaris, member_key, {"model": "fault-overrun", "messages": MESSAGES, "max_tokens": 3}
    )
    assert response.status_code == 200
    record = CallRecord.objects.get(user=member)
    assert record.completion_tokens == 8
    assert LedgerEntry.objects.get(hold__request_id=record.request_id).flagged is (
        record.credits > record.held
    )
    assert ledger_violations() == []


def test_repeated_request_id_gets_distinct_holds(faulty, solaris, member, member_key):
    body = {"model": "fault-ok", "messages": MESSAGES, "max_tokens": 2}
    first = post(solaris, member_key, body, {"X-Request-ID": "lc-same-id"})
    second = post(solaris, member_key, body, {"X-Request-ID": "lc-same-id"})
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Request-ID"] == second.headers["X-Request-ID"] == "lc-same-id"
    ids = list(CallRecord.objects.filter(user=member).values_list("request_id", flat=True))
    assert len(set(ids)) == 2 and all(i.startswith("lc-same-id.") for i in ids)
    assert Hold.objects.filter(status=Hold.Status.SETTLED).count() == 2


# --- protection ---


def test_requests_per_minute(faulty, solaris, member, member_key):
    plan = member.subscription.plan
    plan.requests_per_minute = 2
    plan.save()
    body = {"model": "fault-ok", "messages": MESSAGES, "max_tokens": 1}
    assert [post(solaris, member_key, body).status_code for _ in range(2)] == [200, 200]
    refused = post(solaris, member_key, body)
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(faulty.requests) == 2


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("fault-auth", 502, "upstream_auth_failed"),
        ("fault-budget", 502, "upstream_error"),
        ("fault-context", 400, "context_length_exceeded"),
    ],
)
def test_upstream_4xx_mapping(faulty, solaris, member, member_key, model, status, code):
    response = post(solaris, member_key, {"model": model, "messages": MESSAGES})
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert "budget" not in error["message"].lower() and "{" not in error["message"]
    if model == "fault-context":
        assert error["param"] == "messages"
        assert error["message"] == "This model's maximum context length is 8 tokens."
    assert CallRecord.objects.get(user=member).credits == 0


def test_method_not_allowed(faulty, solaris, member_key):
    response = httpx.get(
        f"{solaris.url}/v1/chat/completions", headers={"Authorization": f"Bearer {member_key}"}
    )
    assert response.status_code == 405
    response = httpx.post(f"{solaris.url}/v1/models", headers={"Authorization": "Bearer x"})
    assert response.status_code == 405


# --- headers, usage chunk and notice ---


def test_stream_headers_and_usage_chunk_when_asked(faulty, solaris, member, member_key):
    with httpx.stream(
        "POST",
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}"},
        json={
            "model": "fault-ok",
            "messages": MESSAGES,
            "stream": True,
            "max_tokens": 2,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        body = response.read().decode()
        headers = response.headers
    assert headers["content-type"].startswith("text/event-stream")
    held = Hold.objects.get().amount
    assert int(headers["X-Solaris-Credits-Remaining"]) == 100_000 - held
    assert headers["X-Solaris-Credit-State"] == "normal"
    assert headers["X-Solaris-Credits-Used-Percent"] == "0.00"
    events = body.strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    usage_chunk = json.loads(events[-2][6:])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 2


def alert_user():
    user = UserFactory(email="quase@example.com", language="en")
    admission = hold_create(
        user=user,
        request_id="spend",
        price=ModelPriceFactory(model="fault-ok"),
        prompt_tokens=85_000,
        max_tokens=1,
    )
    from credits.services import hold_settle

    hold_settle(request_id=admission.hold.request_id, prompt_tokens=85_000, completion_tokens=0)
    return user, api_key_create(user=user)[1]


def test_alert_notice_appended_and_stripped(faulty, solaris, plan_live, settings):
    settings.SOLARIS_PUBLIC_URL = "https://ia.example"
    _user, key = alert_user()
    earlier = "Resposta anterior." + f"\n\n{NOTICE_MARK}_old notice_{NOTICE_MARK}"
    messages = [
        {"role": "assistant", "content": earlier},
        {"role": "user", "content": [{"type": "text", "text": f"oi{NOTICE_MARK}x{NOTICE_MARK}"}]},
    ]
    raw = sdk(solaris, key).chat.completions.with_raw_response.create(
        model="fault-ok", messages=messages, stream=True, max_tokens=2
    )
    assert raw.headers["X-Solaris-Credit-State"] == "alert"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("palavra palavra \n\n" + NOTICE_MARK)
    assert "85% of your credits" in text and "https://ia.example/conta/" in text
    assert text.endswith(NOTICE_MARK)
    sent = faulty.last_body()["messages"]
    assert sent[0]["content"] == "Resposta anterior."
    assert sent[1]["content"][0]["text"] == "oi"
    settings.SOLARIS_ALERT_NOTICE = False
    stream = sdk(solaris, key).chat.completions.create(
        model="fault-ok", messages=MESSAGES, stream=True, max_tokens=2
    )
    assert NOTICE_MARK not in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_metrics(faulty, solaris, member, member_key):
    post(solaris, member_key, {"model": "fault-ok", "messages": MESSAGES, "max_tokens": 2})
    post(solaris, member_key, {"model": "nope", "messages": MESSAGES})
    post(solaris, "sol-wrong", {"model": "fault-ok", "messages": MESSAGES})
    wait_until(lambda: CallRecord.objects.count() == 2)
    text = httpx.get(f"{solaris.url}/metrics").text
    assert 'solaris_proxy_requests_total{end_reason="refused",model="",status="401"}' in text
    assert (
        'solaris_proxy_requests_total{end_reason="completed",model="fault-ok",status="200"}' in text
    )
    assert 'solaris_proxy_requests_total{end_reason="refused",model="",status="404"}' in text
    for name in (
        "solaris_proxy_request_duration_seconds_bucket",
        "solaris_proxy_added_latency_seconds_bucket",
        'solaris_proxy_tokens_total{kind="completion",model="fault-ok"}',
        'solaris_proxy_credits_total{model="fault-ok"}',
        "solaris_proxy_open_streams",
        "solaris_upstream_circuit_state 0.0",
    ):
        assert name in text
