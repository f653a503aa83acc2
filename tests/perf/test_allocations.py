"""What the proxy's pure-Python per-call work allocates (issue 8), counted with tracemalloc, not
timed: parsing the request, the forwarded body, the credit headers, relaying a stream chunk by chunk
and a whole answer, driven as proxy.views drives them. A change that copies the whole stream per
chunk, keeps what it relayed, or builds more objects per call fails here on any machine.

Each figure is taken after a warm-up and a gc.collect(): `blocks` are the memory blocks allocated
while the work ran and still alive when it returned (its result kept, as the view keeps it), `peak`
is the high-water mark of traced bytes above the start while it ran (transient copies included).
"""

import gc
import json
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from multidict import CIMultiDict

from credits.models import Account
from credits.selectors import AccountSummary
from proxy import payload, relay
from proxy.views import credit_headers

# The bounds: measured on CPython 3.11 by running this module with -s (it prints every figure),
# SQLite and PostgreSQL settings alike, with and without coverage; each is the measurement plus a
# small margin, far below what a copy of the stream per chunk or a kept chunk adds.
# Parse + notices strip + forward body of REQUEST: measured 55 blocks, 8,097 bytes peak.
PARSE_BLOCKS = 60
PARSE_PEAK_BYTES = 9_000
# The three credit headers set on a streaming response: measured 11 blocks.
HEADERS_BLOCKS = 13
# One token event (~230 bytes) fed to the stream state: measured 1,391 bytes peak, most of it the
# regular expression engine's backtracking stack while relay.GENERATED measures the text.
CHUNK_PEAK_BYTES = 1_500
# What the stream state holds after a whole stream (meta, models, usage): measured 32 blocks.
STREAM_STATE_BLOCKS = 36
# A whole answer of 50 tokens read, billed and wrapped in a response with its headers: measured
# 41 blocks, 37,662 bytes peak (relay.GENERATED over 200 characters of text, as above).
ANSWER_BLOCKS = 46
ANSWER_PEAK_BYTES = 40_000
# From 50 to 500 chunks the per-chunk peak may move this much (measured 1,390.6 -> 1,373.0 alone
# and inside the whole suite), and the state's blocks this much: measured +2 alone, up to +9 inside
# the whole suite (what earlier tests left in CPython's free lists shifts net block counts; 500
# tokens and 2,000 bytes are ints CPython does not cache, 50 and 200 are). A chunk kept per chunk
# adds 450.
CHUNK_GROWTH_BYTES = 16
STATE_GROWTH_BLOCKS = 32

MODEL = "bench-model"
REQUEST = json.dumps(
    {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Você é um assistente útil. Responda em português."},
            {"role": "user", "content": "Quanto custa uma chamada? " * 8},
            {"role": "assistant", "content": "Depende do modelo e do tamanho da resposta."},
            {"role": "user", "content": "E em créditos?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 256,
        "temperature": 0.7,
        "user": "librechat-user",
    }
).encode()
HEAD = (
    b'{"id":"chatcmpl-alloc-1","object":"chat.completion.chunk","created":1764547200,"model":"'
    + MODEL.encode()
    + b'","choices":[{"index":0,'
)


@dataclass
class Cost:
    blocks: int
    peak: int


@pytest.fixture
def traced() -> Iterator[None]:
    """tracemalloc on, and no line tracer: coverage's allocates as it records lines."""
    tracer = sys.gettrace()
    sys.settrace(None)
    tracemalloc.start(32)
    try:
        yield
    finally:
        tracemalloc.stop()
        sys.settrace(tracer)


def _ours(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    # What the work allocated passes through this module (measure() calls it); what other threads
    # allocate meanwhile (pytest-xdist's) does not, and the snapshots' own objects are left out.
    return snapshot.filter_traces(
        [
            tracemalloc.Filter(True, __file__, all_frames=True),
            tracemalloc.Filter(False, tracemalloc.__file__, all_frames=True),
        ]
    )


def measure(work: Callable[[], Any]) -> tuple[Cost, Any]:
    """The cost of one run of `work` (warmed up first) and its result, kept alive for the count."""
    work()
    work()
    gc.collect()
    before = _ours(tracemalloc.take_snapshot())
    # No collection in the middle of the work: it would free (and uncount) unrelated blocks.
    gc.disable()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = work()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        gc.enable()
    after = _ours(tracemalloc.take_snapshot())
    blocks = sum(stat.count_diff for stat in after.compare_to(before, "filename"))
    return Cost(blocks=blocks, peak=peak), result


def summary() -> AccountSummary:
    return AccountSummary(
        available=98_765,
        balance=100_000,
        held=1_235,
        debt=0,
        granted=100_000,
        used=12_345,
        used_percent=Decimal("12.35"),
        state=Account.State.NORMAL,
        plan=None,
        renews_at=None,
        alert_threshold=80,
    )


def request_read() -> tuple[payload.ChatRequest, bytes]:
    """views.chat_completions: parse, strip the notices, then the body forwarded once admitted."""
    chat = payload.chat_request_parse(REQUEST)
    payload.notices_strip(chat.body)
    return chat, payload.forward_body(chat, max_tokens=256, user_id=42)


def stream_events(chunks: int) -> list[bytes]:
    """The upstream body as the bench's mock (and LiteLLM) sends it: one event per token, then the
    finish, usage and [DONE] events together."""
    events = [b"data: " + HEAD + b'"delta":{"role":"assistant","content":"tok "}}]}\n\n']
    events += [b"data: " + HEAD + b'"delta":{"content":"tok "}}]}\n\n'] * (chunks - 1)
    usage = b'"usage":{"prompt_tokens":40,"completion_tokens":%d,"total_tokens":%d}' % (
        chunks,
        chunks + 40,
    )
    tail = b"data: " + HEAD + b'"delta":{},"finish_reason":"stop"}]}\n\n'
    tail += b"data: " + HEAD + b'"delta":{}}],' + usage + b"}\n\n"
    return [*events, tail + b"data: [DONE]\n\n"]


def stream_relay(events: list[bytes]) -> tuple[relay.StreamState, int, int]:
    """views._stream and views._relay: each upstream piece fed to the state, its output sent on
    (and dropped); the sum of the per-token pieces' peaks above their start, and the bytes relayed.
    The last piece carries three events and is split: the per-token pieces are the lane."""
    state = relay.StreamState(include_usage=True)
    peaks = sent = 0
    for index, event in enumerate(events):
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = state.feed(event)
        if index < len(events) - 1:
            peaks += tracemalloc.get_traced_memory()[1] - start
        sent += len(out)
        del out
    sent += len(state.finish())
    return state, peaks, sent


def answer_relay(answer: bytes, headers: CIMultiDict) -> tuple[tuple, HttpResponse]:
    """views._complete: the answer read for its bill, then sent as it came."""
    document = json.loads(answer)
    billed = (
        relay.usage_of(document),
        relay.generated_bytes(answer),
        relay.fallback_of(headers),
        relay.models_of(document),
    )
    response = credit_headers(HttpResponse(answer, content_type="application/json"), summary())
    return billed, response


def test_request_parse_allocations(traced):
    cost, (chat, body) = measure(request_read)
    print(f"parse {cost}")
    assert chat.model == MODEL and b'"user":"42"' in body
    assert cost.blocks <= PARSE_BLOCKS
    assert cost.peak <= PARSE_PEAK_BYTES


def test_credit_headers_allocations(traced):
    state = summary()
    # The response itself is Django's: each run adds the headers to a fresh one made beforehand.
    responses = [StreamingHttpResponse(iter(())) for _run in range(3)]
    cost, response = measure(lambda: credit_headers(responses.pop(), state))
    print(f"headers {cost}")
    assert response["X-Solaris-Credits-Remaining"] == "98765"
    assert cost.blocks <= HEADERS_BLOCKS


def _stream_cost(chunks: int) -> tuple[Cost, float, relay.StreamState]:
    events = stream_events(chunks)
    stream_relay(events)  # warm-up: compiled patterns, interned names
    cost, (state, peaks, sent) = measure(lambda: stream_relay(events))
    assert sent == sum(map(len, events)), "the relay sends on exactly what it read"
    assert state.done and state.usage == (40, chunks) and state.models == {MODEL}
    return cost, peaks / (len(events) - 1), state


def test_stream_relay_allocations_per_chunk(traced):
    cost, per_chunk, _state = _stream_cost(50)
    print(f"stream 50: state {cost.blocks} blocks, {per_chunk:.0f} bytes peak per chunk")
    assert per_chunk <= CHUNK_PEAK_BYTES
    assert cost.blocks <= STREAM_STATE_BLOCKS


def test_stream_relay_cost_per_chunk_does_not_grow_with_the_stream(traced):
    short, short_chunk, _state = _stream_cost(50)
    long, long_chunk, _state = _stream_cost(500)
    print(f"per chunk: {short_chunk:.1f} bytes at 50 chunks, {long_chunk:.1f} at 500")
    assert long_chunk <= short_chunk + CHUNK_GROWTH_BYTES
    # Ten times the chunks, the same state: nothing relayed is kept.
    assert long.blocks <= short.blocks + STATE_GROWTH_BLOCKS


def test_whole_answer_allocations(traced):
    answer = json.dumps(
        {
            "id": "chatcmpl-alloc-2",
            "object": "chat.completion",
            "created": 1764547200,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "tok " * 50},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 50, "total_tokens": 90},
        }
    ).encode()
    headers = CIMultiDict({"x-litellm-model-group": MODEL, "x-litellm-attempted-fallbacks": "0"})
    cost, (billed, response) = measure(lambda: answer_relay(answer, headers))
    print(f"answer {cost}")
    assert billed == ((40, 50), len("tok " * 50), "", {MODEL})
    assert response.content == answer
    assert cost.blocks <= ANSWER_BLOCKS
    assert cost.peak <= ANSWER_PEAK_BYTES
