"""A hostile caller against /v1/chat/completions and /v1/models, Solaris served for real by uvicorn
in front of the fault upstream (which records every request it gets): fields meant for LiteLLM,
wrong types for every allowed parameter, deep and huge JSON, huge integers, NUL bytes, over-long
headers. Every answer is a 4xx with a documented code, nothing reaches the upstream, nothing is
held, and the books stay right (conftest)."""

import json
import socket

import httpx
import pytest

from accounts.models import User
from credits.models import Hold
from proxy.models import CallRecord
from proxy.parameters import MAX_CHOICES, MAX_OUTPUT_TOKENS, PARAMETERS
from tests.proxy.fault_upstream import wait_until

MESSAGES = [{"role": "user", "content": "Olá"}]
# The error table of docs/proxy.md.
DOCUMENTED = {
    400: {"invalid_request_error", "unsupported_parameter", "invalid_host"},
    401: {"invalid_api_key", "user_identity_missing"},
    403: {"account_suspended", "model_not_allowed"},
    404: {"model_not_found"},
    405: {"method_not_allowed"},
    413: {"request_too_large"},
    429: {"insufficient_quota", "request_exceeds_credits", "rate_limit_exceeded"},
}

# Fields LiteLLM reads per request (routing, retries, credentials, mocks, cost, logging) and
# provider-specific ones: refused, whatever the caller meant by them.
NOT_FORWARDED = [
    ("fallbacks", ["fault-big"]),
    ("context_window_fallbacks", [{"fault-ok": ["fault-big"]}]),
    ("content_policy_fallbacks", [{"fault-ok": ["fault-big"]}]),
    ("num_retries", 50),
    ("max_retries", 50),
    ("timeout", "abc"),
    ("stream_timeout", 0.001),
    ("request_timeout", 1),
    ("mock_response", "a free answer"),
    ("mock_tool_calls", [{"id": "x"}]),
    ("mock_timeout", True),
    ("mock_testing_fallbacks", True),
    ("api_base", "http://127.0.0.1:1"),
    ("api_key", "sk-stolen"),
    ("base_url", "http://127.0.0.1:1"),
    ("api_version", "2024-01-01"),
    ("custom_llm_provider", "openai"),
    ("tags", ["free"]),
    ("litellm_metadata", {"tags": ["free"]}),
    ("guardrails", []),
    ("caching", False),
    ("no-log", True),
    ("user_config", {"model_list": []}),
    ("input_cost_per_token", 0),
    ("output_cost_per_token", 0),
    ("num_predict", 100_000),
    ("max_new_tokens", 100_000),
    ("top_k", 5),
    ("functions", [{"name": "f"}]),
    ("extra_body", {"mock_response": "x"}),
    ("", 1),
]

# For every allowed parameter, values of the wrong type or out of OpenAI's documented range.
WRONG = {
    "model": [5, "", "   ", "m" * 201, "gpt\x00x", ["fault-ok"], {"a": 1}, "\ud800"],
    "messages": [
        [],
        "hi",
        [1],
        [{"content": "no role"}],
        [{"role": "hacker", "content": "x"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": [1]}],
        [{"role": "assistant", "tool_calls": "x"}],
        {"role": "user", "content": "x"},
    ],
    "stream": ["yes", 1, [], {}],
    "stream_options": [1, "x", [], {"include_usage": "yes"}, {"evil": True}],
    "max_tokens": [0, -1, 10**30, MAX_OUTPUT_TOKENS + 1, 1.5, "9", True, []],
    "max_completion_tokens": [0, -5, 10**30, 2.0, "9", False],
    "temperature": [-0.1, 2.1, "1", True, [], {}, 10**400],
    "top_p": [-1, 1.5, "0.5", False, 10**400],
    "n": [0, MAX_CHOICES + 1, 10**30, 1.5, "2", True],
    "stop": [5, ["a", "b", "c", "d", "e"], [1], {"a": 1}, True],
    "presence_penalty": [-3, 3, "0", True],
    "frequency_penalty": [-2.5, 2.5, [], "0"],
    "logit_bias": [[], "x", 5, {"abc": 1}, {"50256": 101}, {"50256": "1"}, {"١٢": 1}],
    "logprobs": ["true", 1, []],
    "top_logprobs": [-1, 21, 1.5, "3", True],
    "user": [5, "u" * 257, "a\x00b", ["u"], {"id": 1}, "\udc80"],
    "tools": [
        "x",
        {},
        [1],
        [{"type": 5}],
        [{"type": "function"}],
        [{"type": "function", "function": {"name": ""}}],
        [{"type": "function", "function": {"name": "f" * 129}}],
        [{"type": "function", "function": {"name": "f\x00"}}],
        [{"type": "function", "function": {"name": "f"}}] * 129,
    ],
    "tool_choice": ["sometimes", 5, [], {"function": {"name": "f"}}, True],
    "parallel_tool_calls": ["no", 0, 1.0, []],
    "response_format": ["json", 5, {}, {"type": "xml"}, {"type": "json_schema"}, []],
    "seed": [2**63, -(2**63) - 1, 1.5, "1", True],
    "reasoning_effort": ["extreme", "", 5, ["low"], "HIGH"],
    "modalities": ["text", ["video"], [1], ["text", "audio", "text"], {}],
    "prediction": [
        "x",
        {"type": "other"},
        {"type": "content"},
        {"type": "content", "content": 5},
        [],
    ],
    "service_tier": ["ultra", 5, "", ["auto"]],
}

# A value every allowed parameter accepts (all sent at once: the table refuses nothing right).
RIGHT = {
    "model": "fault-ok",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Olá"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    "stream": False,
    "stream_options": None,
    "max_tokens": 4,
    "max_completion_tokens": 4,
    "temperature": 0.7,
    "top_p": 1,
    "n": 1,
    "stop": ["\n\n"],
    "presence_penalty": -0.5,
    "frequency_penalty": 0.5,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "top_logprobs": 2,
    "user": "someone",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
    "seed": -(2**63),
    "reasoning_effort": "low",
    "modalities": ["text"],
    "prediction": {"type": "content", "content": "Olá"},
    "service_tier": "auto",
}


def post(solaris, key, body=None, *, raw: bytes | None = None, headers=None, timeout=20):
    return httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={
            **({"Authorization": f"Bearer {key}"} if key else {}),
            "Content-Type": "application/json",
            **(headers or {}),
        },
        content=raw if raw is not None else json.dumps(body).encode(),
        timeout=timeout,
    )


def refused(response, status: int, code: str | None = None, param: str | None = None):
    """A documented 4xx in the OpenAI error shape; returns the error."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] in DOCUMENTED[status]
    assert "{" not in error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def nothing_forwarded(faulty):
    assert not [r for r in faulty.requests if r["path"] == "/v1/chat/completions"]
    assert not Hold.objects.exists()


def test_every_allowed_parameter_has_wrong_values_here():
    assert set(WRONG) == set(PARAMETERS) == set(RIGHT)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_wrong_type_or_range_for_every_allowed_parameter(faulty, solaris, member_key, name):
    for value in WRONG[name]:
        body = {"model": "fault-ok", "messages": MESSAGES, name: value}
        error = refused(post(solaris, member_key, body), 400)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == name or error["param"].startswith(f"{name}."), (value, error)
    nothing_forwarded(faulty)


def test_every_allowed_parameter_passes_with_a_right_value(faulty, solaris, member_key):
    body = {name: value for name, value in RIGHT.items() if value is not None}
    response = post(solaris, member_key, {**RIGHT, "metadata": {"tags": ["x"]}, "store": True})
    assert response.status_code == 200, response.text
    sent = faulty.last_body()
    # stream_options: null left out; metadata, store dropped; the client's max tokens field kept.
    assert set(sent) == set(body) - {"max_tokens"}
    for name in ("temperature", "tools", "tool_choice", "response_format", "seed", "prediction"):
        assert sent[name] == body[name]
    assert sent["user"] != "someone"  # always the Solaris user id


@pytest.mark.parametrize(("name", "value"), NOT_FORWARDED)
def test_fields_meant_for_litellm_are_refused(faulty, solaris, member, member_key, name, value):
    body = {"model": "fault-ok", "messages": MESSAGES, name: value}
    refused(post(solaris, member_key, body), 400, "unsupported_parameter", name)
    nothing_forwarded(faulty)
    record = CallRecord.objects.get(user=member)
    assert (record.end_reason, record.credits, record.error_code) == (
        "refused",
        0,
        "unsupported_parameter",
    )


def test_litellm_fields_stay_refused_when_the_operator_lists_them(
    faulty, solaris, member_key, settings
):
    settings.SOLARIS_EXTRA_PARAMS = ["fallbacks", "mock_response", "litellm_x", "num_predict"]
    for name, value in (("fallbacks", ["fault-big"]), ("mock_response", "x"), ("litellm_x", 1)):
        body = {"model": "fault-ok", "messages": MESSAGES, name: value}
        error = refused(post(solaris, member_key, body), 400, "unsupported_parameter", name)
        assert error["message"] == f"O parâmetro '{name}' não é aceito."  # Bia reads pt-BR
    nothing_forwarded(faulty)
    body = {"model": "fault-ok", "messages": MESSAGES, "num_predict": 5, "max_tokens": 3}
    assert post(solaris, member_key, body).status_code == 200
    assert faulty.last_body()["num_predict"] == 5  # an extra the operator named: forwarded


def test_metadata_and_store_are_dropped_without_a_word(faulty, solaris, member_key):
    body = {
        "model": "fault-ok",
        "messages": MESSAGES,
        "max_tokens": 2,
        "metadata": {"tags": ["free"], "model_group": "fault-big"},
        "store": True,
    }
    assert post(solaris, member_key, body).status_code == 200
    sent = faulty.last_body()
    assert "metadata" not in sent and "store" not in sent


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("key", ["member", None])
@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_deep_json(faulty, solaris, member_key, key, depth):
    """Nested beyond what any chat request needs, where no parameter check looks (a message's
    own field): 400 with a key, 401 without, never the RecursionError's 500."""
    raw = b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x", "deep": '
    raw += _nested(depth) + b"}]}"
    response = post(solaris, member_key if key else None, raw=raw)
    refused(response, 400 if key else 401)
    nothing_forwarded(faulty)


def test_a_deep_but_reasonable_tool_schema_passes(faulty, solaris, member_key):
    schema: dict = {"type": "string"}
    for _ in range(25):
        schema = {"type": "object", "properties": {"x": schema}}
    tools = [{"type": "function", "function": {"name": "deep", "parameters": schema}}]
    body = {"model": "fault-ok", "messages": MESSAGES, "tools": tools, "max_tokens": 2}
    assert post(solaris, member_key, body).status_code == 200
    assert faulty.last_body()["tools"] == tools


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "fault-ok", "messages": [], "max_tokens": 1' + b"0" * 5_000 + b"}",
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}',
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x"}], "top_p": Infinity}',
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x"}], "top_p": 1e400}',
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x"}], "seed": -1e999}',
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "x"}]',
        b"\xff\xfe{}",
        b"",
        b"null",
        b'"just a string"',
        b"[1, 2]",
        b'{"model": "fault-ok", "messages": [{"role": "user", "content": "\\ud800"}], "n": 1e3}',
    ],
)
def test_malformed_json_and_numbers(faulty, solaris, member_key, raw):
    refused(post(solaris, member_key, raw=raw), 400, "invalid_request_error")
    nothing_forwarded(faulty)


def test_huge_integers_never_reach_sql(faulty, solaris, member, member_key):
    for name in ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs"):
        for value in (10**30, 2**63, 2**64 + 1, -(2**70)):
            body = {"model": "fault-ok", "messages": MESSAGES, name: value}
            refused(post(solaris, member_key, body), 400, "invalid_request_error", name)
    # The largest accepted output bound still fits every column on the way (hold, record).
    body = {"model": "fault-ok", "messages": MESSAGES, "max_tokens": MAX_OUTPUT_TOKENS, "n": 16}
    response = post(solaris, member_key, body)
    assert response.status_code == 200, response.text  # lowered to what the balance covers
    record = wait_until(
        lambda: CallRecord.objects.filter(user=member, end_reason="completed").first()
    )
    assert 0 < record.credits <= record.held < 100_000


def test_huge_bodies(faulty, solaris, member_key, settings):
    settings.SOLARIS_MAX_BODY_BYTES = 50_000
    big = {"model": "fault-ok", "messages": [{"role": "user", "content": "x" * 60_000}]}
    refused(post(solaris, member_key, big), 413, "request_too_large")
    many_keys = {"model": "fault-ok", "messages": MESSAGES, **{f"k{i}": i for i in range(3_000)}}
    refused(post(solaris, member_key, many_keys), 400, "unsupported_parameter", "k0")
    nothing_forwarded(faulty)


def test_nul_bytes_and_over_long_values_in_the_body(faulty, solaris, member_key):
    cases = [
        ({"model": "fault\x00ok"}, "model"),
        ({"model": "x" * 10_000}, "model"),
        ({"user": "ana\x00"}, "user"),
        ({"user": "u" * 10_000}, "user"),
    ]
    for fields, param in cases:
        body = {"model": "fault-ok", "messages": MESSAGES, **fields}
        refused(post(solaris, member_key, body), 400, "invalid_request_error", param)
    nothing_forwarded(faulty)
    # NUL inside a message is text like any other: forwarded, answered.
    body = {"model": "fault-ok", "messages": [{"role": "user", "content": "a\x00b"}], "n": 1}
    assert post(solaris, member_key, {**body, "max_tokens": 2}).status_code == 200


def test_a_lone_surrogate_in_a_message_is_forwarded_escaped(faulty, solaris, member_key):
    raw = (
        b'{"model": "fault-ok", "max_tokens": 2, '
        b'"messages": [{"role": "user", "content": "broken \\udc80 text"}]}'
    )
    assert post(solaris, member_key, raw=raw).status_code == 200
    assert faulty.last_body()["messages"][0]["content"] == "broken \udc80 text"


@pytest.mark.parametrize(
    ("headers", "body_user", "param"),
    [
        ({"X-LibreChat-User-Id": "i" * 65}, None, "X-LibreChat-User-Id"),
        ({"X-LibreChat-User-Email": "a" * 250 + "@x.com"}, None, "X-LibreChat-User-Email"),
        (
            {"X-LibreChat-User-Email": "ana@example.com", "X-LibreChat-User-Id": "i" * 65},
            None,
            "X-LibreChat-User-Id",
        ),
        ({}, "u" * 65, "user"),
        ({}, "lc\x00id", "user"),
    ],
)
def test_over_long_or_nul_identities(faulty, solaris, integration_key, headers, body_user, param):
    """Refused with 400 naming where the value came from; no user is created or changed."""
    users = User.objects.count()
    body = {"model": "fault-ok", "messages": MESSAGES}
    if body_user is not None:
        body["user"] = body_user
    refused(
        post(solaris, integration_key, body, headers=headers), 400, "invalid_request_error", param
    )
    models = httpx.get(
        f"{solaris.url}/v1/models",
        headers={"Authorization": f"Bearer {integration_key}", **headers},
        timeout=10,
    )
    if headers:
        refused(models, 400, "invalid_request_error", param)
    assert User.objects.count() == users
    assert not CallRecord.objects.exists()
    nothing_forwarded(faulty)


def test_nul_in_a_header_is_refused_by_the_server(solaris, integration_key):
    """httpx will not even send it: a raw socket does. uvicorn refuses the request itself."""
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {integration_key}\r\nX-LibreChat-User-Id: a\x00b\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    ).encode("latin-1")
    with socket.create_connection(("127.0.0.1", solaris.port), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(4096)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500


def test_over_long_headers_that_are_not_identities(faulty, solaris, member, member_key):
    response = post(
        solaris,
        member_key,
        {"model": "fault-ok", "messages": MESSAGES, "max_tokens": 2},
        headers={
            "X-Request-ID": "r" * 5_000,
            "X-LibreChat-Conversation-Id": "c" * 5_000,
            "Accept-Language": "xx-" + "y" * 3_000,
        },
    )
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32  # replaced: not a usable id
    record = wait_until(lambda: CallRecord.objects.filter(user=member).first())
    assert record.conversation_id == "c" * 128
    refused(post(solaris, "sol-" + "k" * 8_000, {}), 401, "invalid_api_key")


def test_garbage_around_the_request(faulty, solaris, member_key):
    url = f"{solaris.url}/v1/chat/completions"
    auth = {"Authorization": f"Bearer {member_key}"}
    refused(httpx.get(url, headers=auth, timeout=10), 405, "method_not_allowed")
    refused(httpx.post(url, headers={"Authorization": "Basic x"}, timeout=10), 401)
    refused(httpx.post(url, headers={**auth, "Host": "evil.example"}, timeout=10), 400)
    form = httpx.post(url, headers=auth, data={"model": "fault-ok"}, timeout=10)
    refused(form, 400, "invalid_request_error")
    refused(httpx.post(f"{solaris.url}/v1/models", headers=auth, timeout=10), 405)
    nothing_forwarded(faulty)
