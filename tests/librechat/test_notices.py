"""What the person in LibreChat sees when Solaris refuses: LibreChat's own model client (client.mjs,
with LangChain's retries on, as LibreChat runs it) against Solaris in front of the real LiteLLM.

A refusal about the user arrives as the answer itself — the text the client returns, with the way
to buy more where it applies — at once (one request, no retry) and charged nothing. Personal keys,
through the official Python SDK, keep the error table."""

import time

import openai
import pytest

from accounts.models import User
from accounts.services import api_key_create
from credits.models import LedgerEntry
from credits.selectors import account_summary
from proxy.models import CallRecord
from proxy.payload import NOTICE_MARK
from tests.factories import PlanFactory, UserFactory
from tests.librechat.test_client import ANSWER, LIBRECHAT_ID
from tests.proxy.conftest import free_port
from tests.proxy.fault_upstream import wait_until

pytestmark = [pytest.mark.litellm, pytest.mark.django_db(transaction=True)]

PURCHASE_URL = "https://ia.example/conta/comprar/"
PURCHASE_EMAIL = "compras@ia.example"
# LibreChat's client, its node process aside, answers a notice in well under this.
PROMPT_SECONDS = 3.0


@pytest.fixture
def librechat(via_litellm, solaris, integration_key, plan_live, settings, librechat_client):
    """Call Solaris as LibreChat's custom endpoint does, for the user with this e-mail."""
    settings.SOLARIS_PUBLIC_URL = "https://ia.example"
    settings.SOLARIS_PURCHASE_EMAIL = PURCHASE_EMAIL

    def call(email: str, **overrides) -> dict:
        spec = {
            "baseURL": f"{solaris.url}/v1",
            "apiKey": integration_key,
            "model": "mock-gpt",
            "user": LIBRECHAT_ID,
            "headers": {"X-LibreChat-User-Email": email, "X-LibreChat-User-Id": LIBRECHAT_ID},
            "messages": [{"role": "user", "content": "Olá!"}],
            **overrides,
        }
        answer = librechat_client(spec)
        solaris.settled()
        return answer

    return call


@pytest.fixture
def personal(via_litellm, solaris):
    """The official Python SDK with a user's personal key (its own retries off)."""

    def client(user: User) -> openai.OpenAI:
        key = api_key_create(user=user, name="sdk")[1]
        return openai.OpenAI(base_url=f"{solaris.url}/v1", api_key=key, timeout=20, max_retries=0)

    return client


def minute_fresh() -> None:
    """The per-minute limit counts in fixed minutes: start a test's calls well inside one."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def books(user: User) -> tuple[int, int]:
    return LedgerEntry.objects.filter(account_id=user.pk).count(), account_summary(
        user_id=user.pk
    ).available


def exhausted(language: str = "pt-br") -> User:
    PlanFactory(slug="zero", monthly_allowance=0, default_max_tokens=1_000)
    return UserFactory(
        email=f"sem-creditos-{language}@example.com", plan_slug="zero", language=language
    )


def suspended() -> User:
    user = UserFactory(email="suspensa@example.com")
    User.objects.filter(pk=user.pk).update(is_suspended=True)
    return user


def not_allowed() -> User:
    PlanFactory(
        slug="so-gpt", monthly_allowance=50_000, all_models=False, allowed_models=["mock-gpt"]
    )
    return UserFactory(email="limitada@example.com", plan_slug="so-gpt")


def assert_refused_in_band(user: User, answer: dict, code: str, before: tuple[int, int]) -> str:
    """The client returned the notice as the answer, at once; Solaris saw one call for it and
    charged nothing; LiteLLM never saw it."""
    assert answer["ok"], answer
    assert answer["elapsed_ms"] < PROMPT_SECONDS * 1000, answer
    text = answer["content"]
    assert text.startswith(NOTICE_MARK) and text.endswith(NOTICE_MARK)
    [record] = CallRecord.objects.filter(user=user)
    assert (record.end_reason, record.error_code, record.status_code) == ("refused", code, 200)
    assert record.credits == 0
    assert books(user) == before
    return text


@pytest.mark.parametrize(
    ("language", "title", "words"),
    [
        ("pt-br", "Créditos esgotados", "compre mais créditos em"),
        ("en", "Credits exhausted", "buy more credits at"),
    ],
)
def test_an_exhausted_user_reads_how_to_buy_more(
    librechat, litellm_received, language, title, words
):
    user = exhausted(language)
    before = books(user)
    text = assert_refused_in_band(user, librechat(user.email), "insufficient_quota", before)
    assert f"**{title}**" in text and words in text
    assert PURCHASE_URL in text and PURCHASE_EMAIL in text
    assert litellm_received.bodies() == []


def test_the_title_call_of_an_exhausted_user_names_the_conversation(librechat, litellm_received):
    """LibreChat's title call is not streamed: its answer is the short line."""
    user = exhausted()
    answer = librechat(user.email, stream=False)
    assert answer["ok"], answer
    assert answer["content"] == f"{NOTICE_MARK}Créditos esgotados{NOTICE_MARK}"
    assert litellm_received.bodies() == []


def test_a_suspended_user_reads_that_the_account_is_suspended(librechat, litellm_received):
    user = suspended()
    text = assert_refused_in_band(user, librechat(user.email), "account_suspended", books(user))
    assert "**Conta suspensa**" in text
    assert litellm_received.bodies() == []


def test_a_model_outside_the_plan_is_explained(librechat, litellm_received):
    user = not_allowed()
    text = assert_refused_in_band(
        user, librechat(user.email, model="mock-gpt-long"), "model_not_allowed", books(user)
    )
    assert "**Plano não inclui este modelo**" in text and "mock-gpt-long" in text
    assert litellm_received.bodies() == []


def test_a_rate_limited_user_reads_when_to_send_again(librechat, litellm_received, plan_live):
    plan_live.requests_per_minute = 1
    plan_live.save()
    user = UserFactory(email="apressada@example.com")
    minute_fresh()
    assert librechat(user.email)["content"] == ANSWER
    before = books(user)
    answer = librechat(user.email)
    assert answer["ok"] and answer["elapsed_ms"] < PROMPT_SECONDS * 1000, answer
    assert "**Limite de mensagens por minuto**" in answer["content"]
    assert "permite 1 mensagem por minuto" in answer["content"]
    records = CallRecord.objects.filter(user=user).order_by("id")
    assert [(r.end_reason, r.error_code) for r in records] == [
        ("completed", ""),
        ("refused", "rate_limit_exceeded"),
    ]
    assert books(user) == before
    assert len(litellm_received.bodies()) == 1


def test_when_litellm_is_down_the_user_reads_it_at_once(librechat, settings):
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    user = UserFactory(email="paciente@example.com")
    text = assert_refused_in_band(user, librechat(user.email), "upstream_unavailable", books(user))
    assert "**Serviço de IA indisponível**" in text


def test_without_notices_litellm_down_is_retried_by_librechat(librechat, settings, solaris):
    """Why notices are in band: the same 503 as an HTTP error makes LibreChat's client try again
    (here once; LibreChat allows 6, with backoff) and the person reads a generic error."""
    from accounts.models import Integration

    Integration.objects.update(notices_in_band=False)
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"
    user = UserFactory(email="paciente@example.com")
    answer = librechat(user.email, maxRetries=1)
    assert not answer["ok"] and answer["status"] == 503
    assert CallRecord.objects.filter(user=user, error_code="upstream_unavailable").count() == 2


def test_a_funded_user_still_gets_the_answer_and_old_notices_never_reach_the_model(
    librechat, litellm_received
):
    user = exhausted()
    notice = librechat(user.email)["content"]
    from credits.services import credits_grant

    credits_grant(user=user, amount=50_000, idempotency_key="top-up")
    history = [
        {"role": "user", "content": "Olá!"},
        {"role": "assistant", "content": notice},
        {"role": "user", "content": "Olá de novo!"},
    ]
    answer = librechat(user.email, messages=history)
    assert answer["ok"] and answer["content"] == ANSWER
    [received] = litellm_received.bodies()
    assert [m["content"] for m in received["messages"]] == ["Olá!", "Olá de novo!"]
    record = wait_until(
        lambda: CallRecord.objects.filter(user=user, end_reason="completed").first()
    )
    assert record.credits > 0


def test_personal_keys_keep_the_error_table(personal, settings, plan_live):
    """The same refusals through the official Python SDK: status codes and codes, no notice."""
    cases = []
    user = exhausted()
    cases.append((user, "mock-gpt", openai.RateLimitError, "insufficient_quota"))
    cases.append((suspended(), "mock-gpt", openai.PermissionDeniedError, "account_suspended"))
    cases.append(
        (not_allowed(), "mock-gpt-long", openai.PermissionDeniedError, "model_not_allowed")
    )
    for who, model, error, code in cases:
        with pytest.raises(error) as caught:
            personal(who).chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Olá"}], stream=True
            )
        assert caught.value.body["code"] == code
        assert "X-Solaris-Notice" not in caught.value.response.headers
    plan_live.requests_per_minute = 1
    plan_live.save()
    hurried = personal(UserFactory(email="apressada@example.com"))
    minute_fresh()
    hurried.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.RateLimitError) as caught:
        hurried.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "b"}]
        )
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert caught.value.response.headers["Retry-After"]
    plan_live.requests_per_minute = 0
    plan_live.save()
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(openai.InternalServerError) as caught:
        personal(UserFactory(email="paciente@example.com")).chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "Olá"}]
        )
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable"
