"""The proxy against an upstream that fails on purpose (tests/proxy/fault_upstream.py), served for
real by uvicorn and driven by the official openai SDK or raw httpx."""

import httpx
import openai
import pytest

from credits.models import Hold, LedgerEntry
from credits.selectors import account_summary, ledger_violations
from proxy.models import CallRecord
from tests.factories import ModelPriceFactory
from tests.proxy.fault_upstream import FALLBACK_MODEL, PROMPT_TOKENS, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Olá"}]


def sdk(solaris, key):
    return openai.OpenAI(base_url=f"{solaris.url}/v1", api_key=key, max_retries=0, timeout=20)


def record_of(user, **filters):
    return wait_until(lambda: CallRecord.objects.filter(user=user, **filters).first())


def assert_clean(user):
    assert ledger_violations() == []
    assert not Hold.objects.filter(account_id=user.pk, status=Hold.Status.OPEN).exists()


def test_stream_completes_and_charges_usage(faulty, solaris, member, member_key):
    before = account_summary(user_id=member.pk).available
    stream = sdk(solaris, member_key).chat.completions.create(
        model="fault-ok", messages=MESSAGES, stream=True, max_tokens=5
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "palavra " * 5
    record = record_of(member)
    assert (record.prompt_tokens, record.completion_tokens) == (PROMPT_TOKENS, 5)
    assert record.credits == PROMPT_TOKENS * 1 + 5 * 2
    assert record.end_reason == CallRecord.EndReason.COMPLETED
    assert account_summary(user_id=member.pk).available == before - record.credits
    sent = faulty.last_body()
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["user"] == str(member.pk)
    assert sent["max_tokens"] == 5
    assert_clean(member)


def test_error_before_first_byte_releases(faulty, solaris, member, member_key):
    before = account_summary(user_id=member.pk).available
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(solaris, member_key).chat.completions.create(
            model="fault-error-before", messages=MESSAGES, stream=True
        )
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"
    record = record_of(member)
    assert record.end_reason == CallRecord.EndReason.UPSTREAM_ERROR and record.credits == 0
    assert account_summary(user_id=member.pk).available == before
    assert_clean(member)


def test_error_mid_stream_sends_one_error_chunk(faulty, solaris, member, member_key):
    with httpx.stream(
        "POST",
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}"},
        json={"model": "fault-error-event", "messages": MESSAGES, "stream": True},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    events = [line for line in body.split("\n\n") if line]
    assert events[0].startswith("data: {") and "palavra" in events[0]
    assert events[-1].startswith('data: {"error"') and "upstream_error" in events[-1]
    assert "provider exploded" not in body
    assert "[DONE]" not in body
    record = record_of(member)
    assert record.end_reason == CallRecord.EndReason.UPSTREAM_ERROR
    assert record.completion_tokens == 2 * len("palavra ")  # what was relayed
    assert_clean(member)


def test_connection_cut_mid_stream(faulty, solaris, member, member_key):
    client = sdk(solaris, member_key)
    chunks = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="fault-cut", messages=MESSAGES, stream=True
        ):
            chunks.append(chunk)
    assert caught.value.message == "O serviço de IA falhou. Tente de novo."  # Bia reads pt-BR
    assert chunks and chunks[0].choices[0].delta.content == "palavra "
    record = record_of(member)
    assert record.end_reason == CallRecord.EndReason.UPSTREAM_ERROR
    assert record.completion_tokens == 2 * len("palavra ")
    assert_clean(member)


def test_slow_first_byte_is_a_timeout(faulty, solaris, member, member_key, settings):
    settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = 0.5
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(solaris, member_key).chat.completions.create(
            model="fault-slow-first-byte", messages=MESSAGES
        )
    assert caught.value.status_code == 504
    assert caught.value.body["code"] == "upstream_timeout"
    record = record_of(member)
    assert record.end_reason == CallRecord.EndReason.TIMEOUT and record.credits == 0
    assert_clean(member)


def test_hanging_stream_ends_with_timeout_chunk(faulty, solaris, member, member_key, settings):
    settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT = 0.5
    with httpx.stream(
        "POST",
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}"},
        json={"model": "fault-hang", "messages": MESSAGES, "stream": True},
        timeout=20,
    ) as response:
        body = response.read().decode()
    assert body.count("palavra") == 2
    assert body.rstrip().endswith("}") and '"code": "upstream_timeout"' in body
    record = record_of(member)
    assert record.end_reason == CallRecord.EndReason.TIMEOUT
    assert record.completion_tokens == 2 * len("palavra ")
    assert_clean(member)


@pytest.mark.parametrize(
    ("model", "end_reason"),
    [
        ("fault-error-event", CallRecord.EndReason.UPSTREAM_ERROR),
        ("fault-cut", CallRecord.EndReason.UPSTREAM_ERROR),
        ("fault-hang", CallRecord.EndReason.TIMEOUT),
    ],
)
def test_stream_cut_after_output_is_charged_for_what_was_delivered(
    faulty, solaris, member, member_key, settings, model, end_reason
):
    """The upstream fails after 2 chunks of text reached the client: the call costs the prompt
    plus what was delivered (counted conservatively, as for a client that leaves), more than the
    prompt alone and less than the hold."""
    settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT = 0.5
    before = account_summary(user_id=member.pk).available
    with httpx.stream(
        "POST",
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {member_key}"},
        json={"model": model, "messages": MESSAGES, "stream": True},
        timeout=20,
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200 and body.count("palavra") == 2
    record = record_of(member)
    hold = Hold.objects.get(request_id=record.request_id)
    prompt_cost = record.prompt_tokens * 1  # fault models: input weight 1, output weight 2
    assert record.end_reason == end_reason
    assert prompt_cost < record.credits < hold.amount
    assert record.credits == prompt_cost + 2 * record.completion_tokens
    entry = LedgerEntry.objects.get(hold=hold)
    assert -entry.amount == record.credits and not entry.flagged
    assert account_summary(user_id=member.pk).available == before - record.credits
    assert_clean(member)


def test_error_before_any_text_charges_nothing(faulty, solaris, member, member_key):
    """An error event as the stream's first event: nothing was delivered, nothing is charged."""
    before = account_summary(user_id=member.pk).available
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(solaris, member_key).chat.completions.create(
            model="fault-error-first", messages=MESSAGES, stream=True
        )
    assert caught.value.status_code == 502
    record = record_of(member)
    assert (record.credits, record.completion_tokens) == (0, 0)
    assert Hold.objects.get(request_id=record.request_id).status == Hold.Status.RELEASED
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    assert account_summary(user_id=member.pk).available == before
    assert_clean(member)


def test_connection_refused_opens_then_recovers(faulty, solaris, member, member_key, settings):
    settings.SOLARIS_CIRCUIT_FAILURES = 2
    settings.SOLARIS_CIRCUIT_OPEN_SECONDS = 1
    closed_port = faulty.base_url.rsplit(":", 1)[0] + ":1"
    settings.LITELLM_BASE_URL = closed_port
    client = sdk(solaris, member_key)
    for _attempt in range(2):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="fault-ok", messages=MESSAGES)
        assert caught.value.status_code == 503
        assert caught.value.response.headers["Retry-After"]
    faulty.requests.clear()
    settings.LITELLM_BASE_URL = faulty.base_url
    # Open: refused at once, upstream not called even though it is back.
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fault-ok", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable"
    assert faulty.requests == []
    metrics = httpx.get(f"{solaris.url}/metrics").text
    assert "solaris_upstream_circuit_state 2.0" in metrics
    # After the open period one probe goes through and closes the circuit.
    wait_until(lambda: httpx.get(f"{solaris.url}/metrics").text.count("circuit_state 1.0"), 3)
    answer = client.chat.completions.create(model="fault-ok", messages=MESSAGES, max_tokens=3)
    assert answer.choices[0].message.content == "palavra " * 3
    solaris.settled()  # the probe's success is recorded by its settlement, after the answer
    assert "solaris_upstream_circuit_state 0.0" in httpx.get(f"{solaris.url}/metrics").text
    refused = CallRecord.objects.filter(user=member, error_code="upstream_unavailable")
    assert refused.count() == 3
    assert_clean(member)


def test_stream_without_usage_is_charged_conservatively(faulty, solaris, member, member_key):
    stream = sdk(solaris, member_key).chat.completions.create(
        model="fault-no-usage", messages=MESSAGES, stream=True, max_tokens=4
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "palavra " * 4
    record = record_of(member)
    hold = Hold.objects.get(request_id=record.request_id)
    # Upper bounds: the prompt estimate and the bytes of text relayed, capped at max_tokens.
    assert record.prompt_tokens >= PROMPT_TOKENS
    assert record.completion_tokens == 4  # 32 bytes of text, capped at the 4 tokens allowed
    assert record.credits == record.prompt_tokens + 2 * 4 == hold.amount
    assert_clean(member)


def test_very_large_chunks_pass_intact(faulty, solaris, member, member_key):
    stream = sdk(solaris, member_key).chat.completions.create(
        model="fault-big", messages=MESSAGES, stream=True
    )
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
    pieces = [piece for piece in pieces if piece]
    assert [len(piece) for piece in pieces] == [300_000] * 3
    record = record_of(member)
    assert record.completion_tokens == 3 and record.end_reason == "completed"
    assert_clean(member)


def test_client_disconnect_charges_partial(faulty, solaris, member, member_key):
    client = sdk(solaris, member_key)
    stream = client.chat.completions.create(
        model="fault-slow-stream", messages=MESSAGES, stream=True, max_tokens=40
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received == 3:
            break
    stream.close()
    record = record_of(member, end_reason=CallRecord.EndReason.CLIENT_DISCONNECTED)
    hold = Hold.objects.get(request_id=record.request_id)
    assert hold.status == Hold.Status.SETTLED
    assert 0 < record.credits < hold.amount
    # One byte per piece: what was relayed before the cut, at least what the client read.
    assert 3 <= record.completion_tokens < 40
    entry = LedgerEntry.objects.get(hold=hold)
    assert -entry.amount == record.credits
    wait_until(lambda: faulty.closed_early >= 1 or faulty.open_streams == 0)
    assert_clean(member)


@pytest.mark.parametrize(
    ("model", "stream", "status", "code", "end_reason"),
    [
        ("fault-bad-json", False, 502, "upstream_error", "upstream_error"),
        ("fault-stall-body", False, 504, "upstream_timeout", "timeout"),
        ("fault-error-first", True, 502, "upstream_error", "upstream_error"),
    ],
)
def test_broken_answers_before_anything_was_sent(
    faulty, solaris, member, member_key, settings, model, stream, status, code, end_reason
):
    """Failures found before the first byte reached the client are proper HTTP errors."""
    settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT = 0.5
    settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = 0.5
    before = account_summary(user_id=member.pk).available
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(solaris, member_key).chat.completions.create(
            model=model, messages=MESSAGES, stream=stream
        )
    assert (caught.value.status_code, caught.value.body["code"]) == (status, code)
    record = record_of(member)
    assert record.end_reason == end_reason and record.credits == 0
    assert account_summary(user_id=member.pk).available == before
    assert_clean(member)


def _price_fallback(input_weight="5", output_weight="10"):
    return ModelPriceFactory(
        model=FALLBACK_MODEL, input_weight=input_weight, output_weight=output_weight, active=True
    )


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_headers_bill_the_answering_model(faulty, solaris, member, member_key, stream):
    """LiteLLM's headers say another model group answered: that model is recorded and, when it
    costs more, its price is charged."""
    _price_fallback()
    response = sdk(solaris, member_key).chat.completions.create(
        model="fault-fallback-header", messages=MESSAGES, stream=stream, max_tokens=4
    )
    if stream:
        list(response)
    record = record_of(member)
    assert (record.model, record.answered_model) == ("fault-fallback-header", FALLBACK_MODEL)
    assert (record.prompt_tokens, record.completion_tokens) == (PROMPT_TOKENS, 4)
    assert record.credits == PROMPT_TOKENS * 5 + 4 * 10  # not 10 × 1 + 4 × 2
    assert LedgerEntry.objects.get(hold__request_id=record.request_id).flagged
    assert_clean(member)


def test_an_unpriced_fallback_is_recorded_and_billed_at_the_admitted_price(
    faulty, solaris, member, member_key
):
    sdk(solaris, member_key).chat.completions.create(
        model="fault-fallback-header", messages=MESSAGES, max_tokens=4
    )
    record = record_of(member)
    assert record.answered_model == FALLBACK_MODEL
    assert record.credits == PROMPT_TOKENS * 1 + 4 * 2
    assert_clean(member)


def test_a_stream_that_names_another_priced_model_midway_is_billed_at_its_price(
    faulty, solaris, member, member_key
):
    """LiteLLM continues a failing stream on a fallback deployment and names it in the chunks
    from then on; no header can say so, the chunks do."""
    _price_fallback(input_weight="1", output_weight="20")
    chunks = list(
        sdk(solaris, member_key).chat.completions.create(
            model="fault-switch", messages=MESSAGES, stream=True, max_tokens=5
        )
    )
    assert {chunk.model for chunk in chunks} == {"fault-switch", FALLBACK_MODEL}
    record = record_of(member)
    assert record.answered_model == FALLBACK_MODEL
    assert record.credits == PROMPT_TOKENS * 1 + 5 * 20
    assert_clean(member)


def test_a_provider_model_name_that_is_not_priced_is_no_fallback(
    faulty, solaris, member, member_key
):
    """The chunks name a model nobody priced (as a provider's dated model name would be): billed
    at the admitted price, nothing recorded as a fallback."""
    list(
        sdk(solaris, member_key).chat.completions.create(
            model="fault-switch", messages=MESSAGES, stream=True, max_tokens=5
        )
    )
    record = record_of(member)
    assert (record.answered_model, record.credits) == ("", PROMPT_TOKENS * 1 + 5 * 2)
    assert_clean(member)
