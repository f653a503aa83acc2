"""Fuzzing the request parser (proxy.payload, proxy.parameters) with hypothesis: whatever the
bytes, it either returns a request whose forwarded body is valid JSON of allowed fields only, or
raises a 400 naming what it refused. Never another exception (the view would answer 500)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import SolarisError
from proxy.parameters import DROPPED, PARAMETERS
from proxy.payload import chat_request_parse, forward_body, prompt_estimate

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = sorted(PARAMETERS) + sorted(DROPPED) + ["fallbacks", "timeout", "mock_response", "x"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["user", "assistant", "function", "auto", "json_schema", "content", "text"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["role", "content", "type", "name", "x"]), children, max_size=4
        )
    ),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool", "x"])},
        optional={"content": json_values, "name": json_values, "tool_calls": json_values},
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["gpt", "", "g\x00", 5]) | st.text(max_size=5), "messages": messages},
    optional={name: json_values for name in NAMES if name not in ("model", "messages")},
)


def parsed_or_refused(raw: bytes):
    try:
        return chat_request_parse(raw)
    except SolarisError as error:
        assert error.status_code == 400
        assert error.code in ("invalid_request_error", "unsupported_parameter")
        return error


def _forwarded_is_sound(request) -> None:
    sent = json.loads(forward_body(request, max_tokens=7, user_id=1))
    assert set(sent) <= set(PARAMETERS)
    assert sent["user"] == "1" and sent[request.max_tokens_field] == 7
    for name, value in sent.items():
        PARAMETERS[name](name, value)  # what is forwarded passes its own check
    assert prompt_estimate(request.body) > 0


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes(raw):
    parsed_or_refused(raw)


@FUZZ
@given(body=bodies)
def test_any_request_shaped_body(body):
    outcome = parsed_or_refused(json.dumps(body).encode())
    if isinstance(outcome, SolarisError):
        assert (
            outcome.param is None
            or outcome.param.split(".")[0] in body
            or (outcome.param in ("model", "messages"))
        )
    else:
        _forwarded_is_sound(outcome)


@FUZZ
@given(name=st.sampled_from(sorted(PARAMETERS)), value=json_values)
def test_any_value_for_any_parameter(name, value):
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], name: value}
    outcome = parsed_or_refused(json.dumps(body).encode())
    if isinstance(outcome, SolarisError):
        assert outcome.param == name or outcome.param.startswith(f"{name}.")
    else:
        _forwarded_is_sound(outcome)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=3_000), wrap=st.sampled_from(["[]", "{}"]))
def test_any_depth(depth, wrap):
    opening, closing = (
        ('{"x":' * depth, "}" * depth) if wrap == "{}" else ("[" * depth, "]" * depth)
    )
    raw = (
        '{"model": "gpt", "messages": [{"role": "user", "content": "hi", "deep": '
        + opening
        + "1"
        + closing
        + "}]}"
    ).encode()
    outcome = parsed_or_refused(raw)
    assert isinstance(outcome, SolarisError) == (depth + 3 > 64)
