"""The stream relay on raw bytes (proxy/relay.py): events split anywhere, passed on unchanged."""

import json

from django.utils import translation

from proxy.payload import NOTICE_MARK, notices_strip, prompt_estimate
from proxy.relay import StreamState, generated_bytes, upstream_error_answer


def chunk(content=None, **extra):
    delta = {"content": content} if content is not None else {}
    document = {"id": "c1", "created": 7, "model": "m", "choices": [{"index": 0, "delta": delta}]}
    document.update(extra)
    return b"data: " + json.dumps(document).encode() + b"\n\n"


USAGE_LITELLM = chunk(usage={"prompt_tokens": 3, "completion_tokens": 2})
USAGE_OPENAI = (
    b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
)


def relay_all(state, raw: bytes, step: int) -> bytes:
    out = b"".join(state.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    return out + state.finish()


def test_events_split_across_reads_pass_unchanged():
    body = chunk("Olá") + chunk(" mundo") + USAGE_LITELLM + b"data: [DONE]\n\n"
    for step in (1, 7, 64, len(body)):
        state = StreamState(include_usage=True)
        assert relay_all(state, body, step) == body
        assert state.usage == (3, 2) and state.done
        # Escaped JSON length (Ol\u00e1 = 8) bounds the 4 UTF-8 bytes of "Olá".
        assert state.produced == 8 + len(" mundo")


def test_usage_chunk_dropped_unless_asked_both_shapes():
    for usage in (USAGE_LITELLM, USAGE_OPENAI):
        state = StreamState(include_usage=False)
        body = chunk("a") + usage + b"data: [DONE]\n\n"
        assert relay_all(state, body, 5) == chunk("a") + b"data: [DONE]\n\n"
        assert state.usage == (3, 2)


def test_crlf_and_missing_final_blank_line():
    state = StreamState(include_usage=False)
    raw = chunk("x").replace(b"\n", b"\r\n") + b"data: [DONE]"
    out = relay_all(state, raw, 3)
    assert out == chunk("x") + b"data: [DONE]\n\n" and state.done


def test_notice_goes_before_the_end_of_a_text_answer_only():
    state = StreamState(include_usage=False, notice="\n\n⁣_aviso_⁣")
    out = relay_all(state, chunk("oi") + USAGE_OPENAI + b"data: [DONE]\n\n", 1000)
    events = out.strip().split(b"\n\n")
    notice = json.loads(events[1][6:])
    assert notice["id"] == "c1" and notice["created"] == 7 and notice["model"] == "m"
    assert notice["choices"][0]["delta"]["content"] == "\n\n⁣_aviso_⁣"
    assert events[-1] == b"data: [DONE]"
    tools = StreamState(include_usage=False, notice="x")
    body = b'data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{}"}}]}}]}\n\n'
    assert relay_all(tools, body + b"data: [DONE]\n\n", 1000) == body + b"data: [DONE]\n\n"


def test_error_event_replaced_and_stream_stops():
    state = StreamState(include_usage=False)
    out = relay_all(
        state, chunk("a") + b'data: {"error": {"message": "{raw}"}}\n\n' + chunk("b"), 1000
    )
    assert out.startswith(chunk("a"))
    assert b"raw" not in out and b"upstream_error" in out and chunk("b") not in out
    assert state.upstream_error == {"message": "{raw}"}


def test_generated_bytes_is_an_upper_bound_of_utf8_text():
    raw = chunk('é\n😀 "q"') + chunk(None)
    assert generated_bytes(raw) >= len('é\n😀 "q"'.encode())


def test_estimate_counts_images_tools_and_strips_notices():
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": f"ok\n\n{NOTICE_MARK}_n_{NOTICE_MARK}"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert prompt_estimate(body) > 2_000
    notices_strip(body)
    assert body["messages"][1]["content"] == "ok"


def test_upstream_error_mapping_edge_cases():
    with translation.override("en"):
        assert upstream_error_answer(500, b"not json").status_code == 502
        assert upstream_error_answer(403, b"{}").code == "upstream_auth_failed"
        assert upstream_error_answer(408, b"{}").code == "upstream_timeout"
        answer = upstream_error_answer(422, b'{"error": {"message": "{only json}"}}')
        assert answer.status_code == 422 and answer.code == "upstream_error"
        assert answer.message == "The AI service refused the request."
