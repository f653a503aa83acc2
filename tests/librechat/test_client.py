"""LibreChat's own model client against Solaris in front of the real LiteLLM: everything it sends
passes the allow-list and is answered (README.md)."""

import pytest

from accounts.models import User
from proxy.models import CallRecord
from proxy.parameters import PARAMETERS
from tests.proxy.fault_upstream import wait_until

pytestmark = [pytest.mark.litellm, pytest.mark.django_db(transaction=True)]

ANSWER = "Hello from the Solaris mock model."
LIBRECHAT_ID = "6650f0c2a1b2c3d4e5f60718"  # LibreChat user ids are MongoDB ObjectIds
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]


@pytest.fixture
def as_librechat(via_litellm, solaris, integration_key, plan_live):
    """A spec for client.mjs as LibreChat's custom endpoint builds it (docs/librechat.md)."""

    def spec(**overrides) -> dict:
        return {
            "baseURL": f"{solaris.url}/v1",
            "apiKey": integration_key,
            "model": "mock-gpt",
            "user": LIBRECHAT_ID,
            "headers": {
                "X-LibreChat-User-Email": "lia@example.com",
                "X-LibreChat-User-Id": LIBRECHAT_ID,
                "X-LibreChat-Conversation-Id": "conv-1",
            },
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Olá!"},
            ],
            **overrides,
        }

    return spec


def only_forwarded_fields(received: list[dict]) -> None:
    # LiteLLM adds a metadata of its own and an id; everything else came from Solaris.
    for body in received:
        assert set(body) - {"metadata", "litellm_call_id"} <= set(PARAMETERS)


def test_a_streamed_chat_is_accepted_and_answered(as_librechat, librechat_client, litellm_received):
    answer = librechat_client(as_librechat(maxTokens=200, temperature=0.3))
    assert answer["ok"], answer
    assert answer["content"] == ANSWER and answer["chunks"] > 1
    user = User.objects.get(email="lia@example.com")
    assert user.librechat_id == LIBRECHAT_ID
    record = wait_until(lambda: CallRecord.objects.filter(user=user).first())
    assert (record.end_reason, record.stream, record.conversation_id) == (
        "completed",
        True,
        "conv-1",
    )
    assert record.credits > 0
    [received] = litellm_received.bodies()
    only_forwarded_fields([received])
    assert received["stream"] is True and received["max_tokens"] == 200
    assert received["temperature"] == 0.3
    assert received["user"] == str(user.pk)


def test_a_title_call_is_accepted_and_answered(as_librechat, librechat_client, litellm_received):
    """LibreChat's title generation: a separate, non-streamed call without max_tokens."""
    answer = librechat_client(as_librechat(stream=False))
    assert answer["ok"], answer
    assert answer["content"] == ANSWER
    only_forwarded_fields(litellm_received.bodies())


def test_requests_with_tools_are_accepted_and_answered(
    as_librechat, librechat_client, litellm_received
):
    """An agent turn binds tools; the next turn sends the tool call and its result back."""
    answer = librechat_client(as_librechat(tools=TOOLS))
    assert answer["ok"], answer
    assert answer["content"] == ANSWER
    history = [
        {"role": "user", "content": "Busque o clima em Recife."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_1", "name": "web_search", "args": {"query": "Recife"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "28 °C, sol"},
    ]
    follow_up = librechat_client(as_librechat(tools=TOOLS, messages=history))
    assert follow_up["ok"], follow_up
    assert follow_up["content"] == ANSWER
    first, second = litellm_received.bodies()
    only_forwarded_fields([first, second])
    assert first["tools"][0]["function"]["name"] == "web_search"
    assert [message["role"] for message in second["messages"]] == ["user", "assistant", "tool"]
    assert second["messages"][1]["tool_calls"][0]["function"]["name"] == "web_search"


def test_a_refused_parameter_reaches_the_client_as_a_plain_error(
    as_librechat, librechat_client, litellm_received
):
    """A parameter out of range (an operator's addParams, say) is refused before anything is
    held or sent: the client gets a 400 naming it."""
    answer = librechat_client(as_librechat(temperature=5))
    assert not answer["ok"] and answer["status"] == 400
    assert answer["error"]["param"] == "temperature"
    assert litellm_received.bodies() == []
