"""The chat request as Solaris reads and rewrites it: validation, the conservative prompt estimate,
the alert notice (added to answers, stripped from incoming messages) and the forwarded body.

Unknown fields pass through untouched; only `model`, `messages`, `stream`, `n`, `max_tokens` /
`max_completion_tokens`, `stream_options` and `user` are read or set (docs/proxy.md).
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import override

from kernel.errors import SolarisError

# Upper bounds used by the prompt estimate (see prompt_estimate).
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
IMAGE_TOKENS = 2_000
MAX_CHOICES = 16
# Fields a client must not set upstream: LiteLLM's mock answers (a free answer from a real
# deployment) and per-request credentials or endpoints.
STRIPPED_FIELDS = ("api_key", "api_base", "base_url", "api_version")
STRIPPED_PREFIX = "mock_"

# The notice is wrapped in invisible separators (U+2063) so it can be found and stripped.
NOTICE_MARK = "\u2063"
NOTICE_PATTERN = re.compile(r"\s*\u2063[^\u2063]*\u2063")


def invalid(message: str, param: str | None = None) -> SolarisError:
    return SolarisError(message, status=400, code="invalid_request_error", param=param)


@dataclass
class ChatRequest:
    body: dict[str, Any]
    model: str
    stream: bool
    n: int
    max_tokens_asked: int | None
    max_tokens_field: str  # which field the client used (max_completion_tokens or max_tokens)
    include_usage: bool  # the client asked for the usage chunk
    body_user: str | None
    conversation_id: str


def _positive_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(_("'%(name)s' must be a positive integer.") % {"name": name}, name)
    return value


def chat_request_parse(raw: bytes) -> ChatRequest:
    """Validate what Solaris needs from the body; raises a 400 SolarisError naming the param."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise invalid(_("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise invalid(_("The request body must be a JSON object."))
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid(_("'model' is required."), "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid(_("'messages' must be a non-empty list."), "messages")
    if not all(isinstance(message, dict) for message in messages):
        raise invalid(_("Every message must be an object."), "messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid(_("'stream' must be true or false."), "stream")
    n = _positive_int(body, "n") or 1
    if n > MAX_CHOICES:
        raise invalid(_("'n' must be at most %(max)d.") % {"max": MAX_CHOICES}, "n")
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    asked = _positive_int(body, "max_completion_tokens")
    if asked is None:
        asked = _positive_int(body, "max_tokens")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid(_("'stream_options' must be an object."), "stream_options")
    user = body.get("user")
    return ChatRequest(
        body=body,
        model=model.strip(),
        stream=stream,
        n=n,
        max_tokens_asked=asked,
        max_tokens_field=field,
        include_usage=bool(stream and options and options.get("include_usage") is True),
        body_user=user if isinstance(user, str) else None,
        conversation_id="",
    )


def _text_bytes(value: Any) -> tuple[int, int]:
    """(UTF-8 bytes of every string inside `value`, number of images inside it)."""
    if isinstance(value, str):
        return len(value.encode("utf-8")), 0
    if isinstance(value, dict):
        if value.get("type") in ("image_url", "input_image", "image"):
            return 0, 1
        total, images = 0, 0
        for key, item in value.items():
            size, found = _text_bytes(item)
            total += size + len(str(key))
            images += found
        return total, images
    if isinstance(value, list):
        total, images = 0, 0
        for item in value:
            size, found = _text_bytes(item)
            total, images = total + size, images + found
        return total, images
    return (len(str(value)) if value is not None else 0), 0


def prompt_estimate(body: dict[str, Any]) -> int:
    """An upper bound of the prompt's token count, without a tokenizer.

    Byte-level BPE tokenizers (OpenAI, Llama 3, Mistral, Claude) never produce a token shorter than
    one byte, so UTF-8 bytes of the text bound its tokens. Keys, tool definitions and the
    per-message framing are counted too, plus IMAGE_TOKENS per image (above the largest image cost
    of the providers we serve).
    """
    tokens = REQUEST_OVERHEAD_TOKENS
    for message in body["messages"]:
        size, images = _text_bytes(message)
        tokens += size + images * IMAGE_TOKENS + MESSAGE_OVERHEAD_TOKENS
    for name in ("tools", "functions", "tool_choice", "response_format"):
        if name in body:
            tokens += _text_bytes(body[name])[0]
    return tokens


def _strip_text(text: str) -> str:
    return NOTICE_PATTERN.sub("", text) if NOTICE_MARK in text else text


def notices_strip(body: dict[str, Any]) -> None:
    """Remove Solaris's own notices from the messages (LibreChat sends the history back)."""
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = _strip_text(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = _strip_text(part["text"])


def notice_text(*, language: str, used_percent: Any) -> str:
    with override(language):
        text = _("You have used %(percent)s%% of your credits. Statement: %(url)s") % {
            "percent": int(used_percent),
            "url": f"{settings.SOLARIS_PUBLIC_URL}/conta/",
        }
    return f"\n\n{NOTICE_MARK}_{text}_{NOTICE_MARK}"


def forward_body(request: ChatRequest, *, max_tokens: int, user_id: int) -> bytes:
    """The body sent to LiteLLM: the client's, with the admitted max tokens (always set, so the
    answer cannot outgrow its hold), the Solaris user id and, on streams, the usage request."""
    body = {
        name: value
        for name, value in request.body.items()
        if name not in STRIPPED_FIELDS and not name.startswith(STRIPPED_PREFIX)
    }
    body.pop("max_tokens", None)
    body.pop("max_completion_tokens", None)
    body[request.max_tokens_field] = max_tokens
    body["user"] = str(user_id)
    if request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
