"""End to end against a REAL LiteLLM proxy (mock models), Solaris served by uvicorn, driven by the
official openai SDK, sync and async, streamed and not."""

import asyncio
import json
from io import StringIO

import httpx
import openai
import pytest
from django.core.cache import cache
from django.core.management import call_command

from accounts.services import api_key_create
from credits.models import Hold, LedgerEntry
from credits.pricing import cost
from credits.selectors import account_summary
from credits.services import credits_adjust
from proxy import catalog
from proxy.models import CallRecord
from tests.factories import UserFactory
from tests.proxy.fault_upstream import wait_until

pytestmark = [pytest.mark.litellm, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MESSAGES = [{"role": "user", "content": "hi"}]
ANSWER = "Hello from the Solaris mock model."
LONG_START = "Solaris is a credit-control gateway."


def sdk(solaris, key):
    return openai.OpenAI(base_url=f"{solaris.url}/v1", api_key=key, max_retries=0, timeout=30)


def async_sdk(solaris, key):
    return openai.AsyncOpenAI(base_url=f"{solaris.url}/v1", api_key=key, max_retries=0, timeout=30)


def assert_billed(user, record, *, prompt, completion, input_weight="1.5", output_weight="3"):
    """Credits = upstream usage × the model's weights, and the ledger, the record and the
    account agree; check_ledger is clean."""
    from decimal import Decimal

    expected = cost(
        prompt_tokens=prompt,
        completion_tokens=completion,
        input_weight=Decimal(input_weight),
        output_weight=Decimal(output_weight),
    )
    assert (record.prompt_tokens, record.completion_tokens) == (prompt, completion)
    assert record.credits == expected
    hold = Hold.objects.get(request_id=record.request_id)
    assert hold.status == Hold.Status.SETTLED
    assert LedgerEntry.objects.get(hold=hold).amount == -expected
    out = StringIO()
    call_command("check_ledger", stdout=out)  # raises CommandError on any violation
    assert "ledger OK" in out.getvalue()
    assert account_summary(user_id=user.pk).held == 0


def test_sync_non_stream(via_litellm, solaris, member, member_key):
    before = account_summary(user_id=member.pk).available
    raw = sdk(solaris, member_key).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=MESSAGES
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == ANSWER
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (10, 20)
    solaris.settled()  # it lands right after the answer
    record = CallRecord.objects.get(user=member)
    assert_billed(member, record, prompt=10, completion=20)
    assert record.credits == 75  # ceil(10 × 1.5 + 20 × 3)
    assert account_summary(user_id=member.pk).available == before - 75
    # The headers show the account at admission, with this call's worst case held.
    assert record.held > 75
    assert raw.headers["X-Solaris-Credits-Remaining"] == str(before - record.held)
    assert raw.headers["X-Solaris-Credit-State"] == "normal"
    assert raw.headers["X-Request-ID"]


def test_sync_stream_without_usage_request(via_litellm, solaris, member, member_key):
    stream = sdk(solaris, member_key).chat.completions.create(
        model="mock-gpt-long", messages=MESSAGES, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(LONG_START) and text.endswith("many chunks.")
    assert all(chunk.usage is None for chunk in chunks)  # not asked for: not passed on
    record = wait_until(lambda: CallRecord.objects.filter(user=member).first())
    # LiteLLM counts streamed usage with cl100k: 8 prompt tokens for "hi", 56 for this answer.
    assert_billed(member, record, prompt=8, completion=56)


def test_async_stream_with_usage_request(via_litellm, solaris, member, member_key):
    async def call():
        client = async_sdk(solaris, member_key)
        stream = await client.chat.completions.create(
            model="mock-gpt",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(call())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    usage = [chunk.usage for chunk in chunks if chunk.usage]
    assert len(usage) == 1
    record = wait_until(lambda: CallRecord.objects.filter(user=member).first())
    assert_billed(
        member, record, prompt=usage[0].prompt_tokens, completion=usage[0].completion_tokens
    )


def test_extra_fields_only_when_the_operator_names_them(
    via_litellm, solaris, member, member_key, settings, litellm_received
):
    """An unknown field is refused before anything is held or sent; named in
    SOLARIS_EXTRA_PARAMS it reaches LiteLLM; LiteLLM's own fields never do, named or not."""

    async def call(extra):
        client = async_sdk(solaris, member_key)
        return await client.chat.completions.create(
            model="mock-gpt", messages=MESSAGES, max_tokens=50, extra_body=extra
        )

    with pytest.raises(openai.BadRequestError) as caught:
        asyncio.run(call({"solaris_test_field": {"kept": True}}))
    assert caught.value.body["code"] == "unsupported_parameter"
    assert caught.value.body["param"] == "solaris_test_field"
    settings.SOLARIS_EXTRA_PARAMS = ["solaris_test_field", "mock_response"]
    with pytest.raises(openai.BadRequestError) as caught:
        asyncio.run(call({"solaris_test_field": {"kept": True}, "mock_response": "free answer"}))
    assert caught.value.body["param"] == "mock_response"
    tagged = {"tags": ["caller-chosen-tag"], "model_group": "mock-dear"}
    answer = asyncio.run(call({"solaris_test_field": {"kept": True}, "metadata": tagged}))
    assert answer.choices[0].message.content == ANSWER
    [received] = litellm_received.bodies()
    assert received["solaris_test_field"] == {"kept": True}
    assert "mock_response" not in received
    # LiteLLM adds a `metadata` of its own; the caller's never arrived.
    assert "caller-chosen-tag" not in json.dumps(received) and "mock-dear" not in json.dumps(
        received
    )
    solaris.settled()
    record = CallRecord.objects.get(user=member, end_reason="completed")
    assert_billed(member, record, prompt=10, completion=20)


@pytest.mark.parametrize(
    ("model", "status", "code", "end_reason"),
    [
        ("mock-error", 502, "upstream_error", "upstream_error"),
        ("mock-timeout", 504, "upstream_timeout", "upstream_error"),
        ("mock-ratelimit", 429, "429", "upstream_error"),
    ],
)
def test_upstream_errors(via_litellm, solaris, member, member_key, model, status, code, end_reason):
    before = account_summary(user_id=member.pk).available
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            sdk(solaris, member_key).chat.completions.create(
                model=model, messages=MESSAGES, stream=stream
            )
        assert caught.value.status_code == status
        assert caught.value.body["code"] == code
        assert "{" not in caught.value.body["message"]
    assert account_summary(user_id=member.pk).available == before
    records = CallRecord.objects.filter(user=member)
    assert records.count() == 2 and {r.credits for r in records} == {0}
    assert {r.end_reason for r in records} == {end_reason}


def test_upstream_rejecting_our_key_is_not_the_users_401(
    via_litellm, solaris, member, member_key, settings
):
    settings.LITELLM_API_KEY = "sk-wrong-" + "x" * 20
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(solaris, member_key).chat.completions.create(model="mock-gpt", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_auth_failed"
    assert "db" not in caught.value.body["message"].lower()


def test_models_is_plan_priced_and_upstream(via_litellm, solaris, member, member_key):
    from tests.factories import ModelPriceFactory

    ModelPriceFactory(model="priced-but-not-upstream", active=True)
    # The first answer starts reading LiteLLM's list in the background (proxy.catalog).
    assert "priced-but-not-upstream" in {m.id for m in sdk(solaris, member_key).models.list()}
    wait_until(lambda: cache.get(catalog.KEY))
    ids = {model.id for model in sdk(solaris, member_key).models.list()}
    assert ids == {
        "mock-gpt",
        "mock-gpt-long",
        "mock-gpt-slow",
        "mock-error",
        "mock-ratelimit",
        "mock-timeout",
        "mock-cheap",
        "mock-dear",
    }
    plan = member.subscription.plan
    plan.all_models, plan.allowed_models = False, ["mock-gpt"]
    plan.save()
    assert [model.id for model in sdk(solaris, member_key).models.list()] == ["mock-gpt"]
    response = httpx.get(f"{solaris.url}/v1/models", headers={"Authorization": "Bearer sol-nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_client_disconnect_on_a_real_upstream(via_litellm, solaris, member, member_key):
    """mock-gpt-slow sends nothing for 2 s: a client that gives up meanwhile is charged its
    prompt (sent and processed), not the hold."""
    with pytest.raises(openai.APITimeoutError):
        openai.OpenAI(
            base_url=f"{solaris.url}/v1", api_key=member_key, max_retries=0, timeout=0.5
        ).chat.completions.create(model="mock-gpt-slow", messages=MESSAGES, stream=True)
    record = wait_until(lambda: CallRecord.objects.filter(user=member).first())
    hold = Hold.objects.get(request_id=record.request_id)
    assert record.end_reason == "client_disconnected"
    assert 0 < record.credits < hold.amount
    assert hold.status == Hold.Status.SETTLED


def test_prompt_estimate_bounds_litellm_token_count(via_litellm, solaris, member, member_key):
    """The estimate (no tokenizer) is never below what LiteLLM's tokenizer counts."""
    from proxy.payload import prompt_estimate

    conversations = [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "word " * 500}],
        [{"role": "user", "content": "日本語のテキスト" * 20}],
        [{"role": "system", "content": "be nice"}, {"role": "user", "content": "emoji 🎉🎉"}],
        [{"role": "user", "content": [{"type": "text", "text": "a,b;c." * 100}]}],
    ]
    client = sdk(solaris, member_key)
    for messages in conversations:
        chunks = list(
            client.chat.completions.create(
                model="mock-gpt",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        counted = next(chunk.usage for chunk in chunks if chunk.usage).prompt_tokens
        assert prompt_estimate({"messages": messages}) >= counted


def _fallback_expected(prompt, completion):
    from decimal import Decimal

    def at(input_weight, output_weight):
        return cost(
            prompt_tokens=prompt,
            completion_tokens=completion,
            input_weight=Decimal(input_weight),
            output_weight=Decimal(output_weight),
        )

    return at("1", "2"), at("15", "30")


@pytest.mark.parametrize("stream", [False, True])
def test_an_operator_fallback_is_billed_at_the_price_of_who_answered(
    via_litellm, solaris, member, member_key, stream
):
    """LiteLLM answers mock-cheap's call from mock-dear (its router_settings.fallbacks): the call
    records mock-dear and costs mock-dear's price; the excess over the hold is flagged."""
    base_url, master_key = via_litellm
    # What LiteLLM tells Solaris about it, on streams as on whole answers.
    direct = httpx.post(
        f"{base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"model": "mock-cheap", "messages": MESSAGES, "stream": stream},
        timeout=30,
    )
    assert direct.headers["x-litellm-attempted-fallbacks"] == "1"
    assert direct.headers["x-litellm-model-group"] == "mock-dear"
    answer = sdk(solaris, member_key).chat.completions.create(
        model="mock-cheap",
        messages=MESSAGES,
        stream=stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    )
    if stream:
        chunks = list(answer)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = next(chunk.usage for chunk in chunks if chunk.usage)
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
    else:
        text = answer.choices[0].message.content
        prompt, completion = 10, 20
    assert text == "Answered by the dear fallback."
    solaris.settled()
    record = CallRecord.objects.get(user=member)
    cheap, dear = _fallback_expected(prompt, completion)
    assert (record.model, record.answered_model) == ("mock-cheap", "mock-dear")
    assert record.credits == dear > cheap
    hold = Hold.objects.get(request_id=record.request_id)
    entry = LedgerEntry.objects.get(hold=hold)
    assert -entry.amount == dear and entry.reason == "mock-cheap → mock-dear"
    assert entry.flagged == (dear > hold.amount)
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_fallback_beyond_the_balance_is_booked_as_debt(via_litellm, solaris, member_key):
    """The admitted price fit the balance, the fallback's does not: the difference becomes debt,
    flagged, exactly as for an upstream that ignores max_tokens."""
    poor = UserFactory(email="poor@example.com")
    key = api_key_create(user=poor, name="k")[1]
    available = account_summary(user_id=poor.pk).available
    credits_adjust(user=poor, amount=-(available - 400), idempotency_key="leave-400", reason="test")
    answer = sdk(solaris, key).chat.completions.create(
        model="mock-cheap", messages=MESSAGES, max_tokens=100
    )
    assert answer.choices[0].message.content == "Answered by the dear fallback."
    solaris.settled()
    record = CallRecord.objects.get(user=poor)
    assert record.credits == 15 * 10 + 30 * 20  # 750 at mock-dear's weights, 400 available
    summary = account_summary(user_id=poor.pk)
    assert (summary.balance, summary.debt) == (400 - 750, 750 - 400)
    assert LedgerEntry.objects.get(hold__request_id=record.request_id).flagged
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
