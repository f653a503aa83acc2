"""Notices in band (proxy/notices.py): for an integration key, a refusal about the user decided
before any output is a normal chat completion carrying the localized notice, over real HTTP against
the fault-injecting upstream."""

import json
import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Integration, User
from credits.models import Hold, LedgerEntry, Subscription
from credits.selectors import account_summary, ledger_violations
from credits.services import credits_adjust, credits_grant
from kernel.errors import SolarisError
from proxy import metrics, notices, protection, services
from proxy.models import CallRecord
from proxy.payload import NOTICE_MARK
from tests.factories import PlanFactory, UserFactory
from tests.proxy.conftest import free_port
from tests.proxy.fault_upstream import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Olá"}]


@pytest.fixture
def ask(faulty, solaris, integration_key, settings):
    """One chat call through the integration key for the user with this e-mail."""
    settings.SOLARIS_PUBLIC_URL = "https://ia.example"
    settings.SOLARIS_PURCHASE_EMAIL = "compras@ia.example"

    def call(email: str, **body) -> httpx.Response:
        response = httpx.post(
            f"{solaris.url}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {integration_key}",
                "X-LibreChat-User-Email": email,
            },
            json={"model": "fault-ok", "messages": MESSAGES, **body},
            timeout=20,
        )
        solaris.settled()
        return response

    return call


def exhausted(language: str = "pt-br") -> User:
    PlanFactory(slug="zero", monthly_allowance=0)
    return UserFactory(email=f"zero-{language}@example.com", plan_slug="zero", language=language)


def events_of(response: httpx.Response) -> list[str]:
    return [event for event in response.text.split("\n\n") if event]


def chunks_of(response: httpx.Response) -> list[dict]:
    return [json.loads(event[6:]) for event in events_of(response)[:-1]]


def books(user: User) -> tuple[int, int]:
    return LedgerEntry.objects.filter(account_id=user.pk).count(), account_summary(
        user_id=user.pk
    ).available


def notices_counted(code: str) -> float:
    return metrics.REGISTRY.get_sample_value("solaris_proxy_notices_total", {"code": code})


def test_a_streamed_notice_is_a_whole_chat_completion_stream(ask, faulty, plan_live):
    user = exhausted()
    before, counted = books(user), notices_counted("insufficient_quota")
    response = ask(user.email, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["X-Solaris-Notice"] == "insufficient_quota"
    assert response.headers["X-Solaris-Credits-Remaining"] == "0"
    assert response.headers["X-Solaris-Credit-State"] == "blocked"
    assert response.headers["X-Request-ID"]
    assert events_of(response)[-1] == "data: [DONE]"
    first, last = chunks_of(response)
    assert first["object"] == "chat.completion.chunk" and first["id"].startswith("chatcmpl-")
    assert first["model"] == "fault-ok" and isinstance(first["created"], int)
    [choice] = first["choices"]
    assert choice["delta"]["role"] == "assistant" and choice["finish_reason"] is None
    text = choice["delta"]["content"]
    assert text == (
        f"{NOTICE_MARK}**Créditos esgotados**\n\nSeus créditos acabaram, então esta mensagem não "
        "foi enviada à IA e nada foi cobrado. Para continuar conversando, compre mais créditos "
        f"em https://ia.example/conta/comprar/ ou escreva para compras@ia.example.{NOTICE_MARK}"
    )
    assert last["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert "usage" not in last  # not asked for
    [record] = CallRecord.objects.filter(user=user)
    assert (record.end_reason, record.status_code, record.error_code, record.credits) == (
        "refused",
        200,
        "insufficient_quota",
        0,
    )
    assert record.stream is True
    assert books(user) == before
    assert notices_counted("insufficient_quota") == counted + 1
    assert faulty.requests == []


def test_a_notice_stream_parses_with_the_openai_sdk_and_its_usage_is_zero(
    faulty, solaris, integration_key, plan_live
):
    user = exhausted(language="en")
    client = openai.OpenAI(
        base_url=f"{solaris.url}/v1",
        api_key=integration_key,
        max_retries=0,
        default_headers={"X-LibreChat-User-Email": user.email},
    )
    chunks = list(
        client.chat.completions.create(
            model="fault-ok",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"{NOTICE_MARK}**Credits exhausted**")
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "stop"]


def test_a_non_streamed_notice_is_one_short_line(ask, plan_live):
    """LibreChat's title call is not streamed: its answer becomes the conversation's title."""
    user = exhausted()
    response = ask(user.email)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Solaris-Notice"] == "insufficient_quota"
    document = response.json()
    assert document["object"] == "chat.completion"
    [choice] = document["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": f"{NOTICE_MARK}Créditos esgotados{NOTICE_MARK}",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    assert document["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert CallRecord.objects.get(user=user).stream is False


def suspended() -> User:
    user = UserFactory(email="suspensa@example.com")
    User.objects.filter(pk=user.pk).update(is_suspended=True)
    return user


def not_allowed() -> User:
    PlanFactory(slug="so-big", all_models=False, allowed_models=["fault-big"])
    return UserFactory(email="limitada@example.com", plan_slug="so-big")


def rate_limited() -> User:
    PlanFactory(slug="lento", requests_per_minute=1)
    user = UserFactory(email="apressada@example.com", plan_slug="lento")
    if time.time() % 60 > 55:  # the limit counts in fixed minutes: stay inside one
        time.sleep(61 - time.time() % 60)
    protection.rate_limit_hit(user_id=user.pk, limit=1)
    return user


def behind_an_open_circuit() -> User:
    cache.set(protection.OPEN_UNTIL_KEY, time.time() + 30, timeout=60)
    protection.circuit_forget()
    return UserFactory(email="paciente@example.com")


@pytest.mark.parametrize(
    ("make", "code", "title", "says"),
    [
        (exhausted, "insufficient_quota", "Créditos esgotados", "conta/comprar/"),
        (suspended, "account_suspended", "Conta suspensa", "Fale com o administrador"),
        (not_allowed, "model_not_allowed", "Plano não inclui este modelo", "fault-ok"),
        (rate_limited, "rate_limit_exceeded", "Limite de mensagens por minuto", "1 mensagem"),
        (behind_an_open_circuit, "upstream_unavailable", "Serviço de IA indisponível", "segundos"),
    ],
)
def test_each_refusal_about_the_user_is_a_notice(ask, faulty, plan_live, make, code, title, says):
    user = make()
    before = books(user)
    streamed = ask(user.email, stream=True)
    assert streamed.status_code == 200 and streamed.headers["X-Solaris-Notice"] == code
    text = chunks_of(streamed)[0]["choices"][0]["delta"]["content"]
    assert text.startswith(f"{NOTICE_MARK}**{title}**") and says in text
    whole = ask(user.email)
    assert whole.json()["choices"][0]["message"]["content"] == f"{NOTICE_MARK}{title}{NOTICE_MARK}"
    records = CallRecord.objects.filter(user=user)
    assert {(r.end_reason, r.status_code, r.error_code, r.credits) for r in records} == {
        ("refused", 200, code, 0)
    }
    assert books(user) == before
    assert faulty.requests == []


def test_the_renewal_date_is_told_when_it_is_near(ask, plan_live):
    PlanFactory(slug="mensal", monthly_allowance=100_000)
    user = UserFactory(email="mensal@example.com", plan_slug="mensal")
    credits_adjust(user=user, amount=-100_000, idempotency_key="spent", reason="all spent")
    renewal = timezone.now() + timedelta(days=3)
    Subscription.objects.filter(user=user).update(cycle_end=renewal)
    text = chunks_of(ask(user.email, stream=True))[0]["choices"][0]["delta"]["content"]
    date = timezone.localtime(renewal).strftime("%d/%m/%Y")
    assert f"Seu plano renova em {date} com 100.000 créditos." in text
    Subscription.objects.filter(user=user).update(cycle_end=timezone.now() + timedelta(days=20))
    text = chunks_of(ask(user.email, stream=True))[0]["choices"][0]["delta"]["content"]
    assert "renova" not in text


def test_a_request_larger_than_what_is_left_is_a_notice(ask, plan_live, monkeypatch):
    """The refusal of a request larger than the credits left while the account is not blocked
    (429 request_exceeds_credits, made by proxy.services.quota_refusal) is answered in band too."""

    def larger_than_left(*, user, **_kwargs):
        return SolarisError(
            "This request is larger than your remaining credits.",
            status=429,
            code="request_exceeds_credits",
            type="insufficient_quota",
            headers={"x-should-retry": "false"},
        )

    monkeypatch.setattr(services, "quota_refusal", larger_than_left)
    user = exhausted()
    response = ask(user.email, stream=True)
    assert response.headers["X-Solaris-Notice"] == "request_exceeds_credits"
    text = chunks_of(response)[0]["choices"][0]["delta"]["content"]
    assert text.startswith(f"{NOTICE_MARK}**Mensagem maior que seus créditos**")
    assert "os 0 créditos que você ainda tem" in text and "conta/comprar/" in text
    assert ask(user.email).json()["choices"][0]["message"]["content"] == (
        f"{NOTICE_MARK}Mensagem maior que seus créditos{NOTICE_MARK}"
    )


def test_litellm_unreachable_is_a_notice_and_the_hold_is_released(ask, faulty, plan_live, settings):
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"
    user = UserFactory(email="paciente@example.com")
    before = books(user)
    unavailable = metrics.REGISTRY.get_sample_value(
        "solaris_upstream_errors_total", {"kind": "unavailable"}
    )
    response = ask(user.email, stream=True)
    assert response.headers["X-Solaris-Notice"] == "upstream_unavailable"
    assert response.headers["X-Solaris-Credits-Remaining"] == str(before[1])
    assert "Serviço de IA indisponível" in chunks_of(response)[0]["choices"][0]["delta"]["content"]
    record = CallRecord.objects.get(user=user)
    assert (record.end_reason, record.status_code, record.error_code, record.credits) == (
        "refused",
        200,
        "upstream_unavailable",
        0,
    )
    assert books(user) == before
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert ledger_violations() == []
    # It is still an upstream failure: counted, and fed to the circuit breaker.
    assert (
        metrics.REGISTRY.get_sample_value("solaris_upstream_errors_total", {"kind": "unavailable"})
        == unavailable + 1
    )
    assert cache.get(protection.FAILURES_KEY) == 1


@pytest.mark.parametrize("stream", [True, False])
def test_a_timeout_before_the_first_byte_is_a_notice(ask, plan_live, settings, stream):
    settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = 0.5
    user = UserFactory(email="paciente@example.com")
    before = books(user)
    response = ask(user.email, model="fault-slow-first-byte", stream=stream)
    assert response.status_code == 200
    assert response.headers["X-Solaris-Notice"] == "upstream_timeout"
    record = CallRecord.objects.get(user=user)
    assert (record.end_reason, record.error_code) == ("refused", "upstream_timeout")
    assert books(user) == before


def test_a_failure_after_the_first_byte_stays_an_error_chunk(ask, plan_live):
    """The partial answer is kept: the stream carries it, then the error event."""
    user = UserFactory(email="paciente@example.com")
    response = ask(user.email, model="fault-error-event", stream=True)
    assert "X-Solaris-Notice" not in response.headers
    events = events_of(response)
    assert "palavra" in events[0] and events[-1].startswith('data: {"error"')
    record = wait_until(lambda: CallRecord.objects.filter(user=user).first())
    assert record.end_reason == "upstream_error" and record.credits > 0


def test_an_integration_without_notices_answers_the_error_table(ask, plan_live):
    Integration.objects.update(notices_in_band=False)
    user = exhausted()
    response = ask(user.email, stream=True)
    assert response.status_code == 429 and "X-Solaris-Notice" not in response.headers
    assert response.json()["error"]["code"] == "insufficient_quota"
    record = CallRecord.objects.get(user=user)
    assert (record.status_code, record.error_code) == (429, "insufficient_quota")


def test_refusals_that_are_not_about_the_user_stay_errors(ask, plan_live):
    user = UserFactory(email="curiosa@example.com")
    assert ask(user.email, model="nope").status_code == 404
    assert ask(user.email, temperature=7).status_code == 400


def test_a_notice_in_the_history_never_reaches_the_model(ask, faulty, plan_live):
    user = exhausted()
    notice = chunks_of(ask(user.email, stream=True))[0]["choices"][0]["delta"]["content"]
    credits_grant(user=user, amount=50_000, idempotency_key="top-up")
    history = [
        {"role": "user", "content": "Olá"},
        {"role": "assistant", "content": notice},
        {"role": "assistant", "content": [{"type": "text", "text": notice}]},
        {"role": "user", "content": "Olá de novo"},
    ]
    assert ask(user.email, messages=history, max_tokens=2).status_code == 200
    assert faulty.last_body()["messages"] == [
        {"role": "user", "content": "Olá"},
        {"role": "user", "content": "Olá de novo"},
    ]


def test_every_notice_code_is_counted_by_the_metrics():
    counted = {
        sample.labels["code"]
        for family in metrics.REGISTRY.collect()
        if family.name == "solaris_proxy_notices"
        for sample in family.samples
        if sample.name == "solaris_proxy_notices_total"
    }
    assert counted == set(notices.CODES)
