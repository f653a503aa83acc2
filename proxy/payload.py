"""The chat request as Solaris reads and rewrites it: parsing (bounded depth, finite numbers), the
allow-list check (proxy.parameters), the conservative prompt estimate, the alert notice (added to
answers, stripped from incoming messages) and the forwarded body.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import override

from proxy.parameters import invalid, parameters_check

# Upper bounds used by the prompt estimate (see prompt_estimate).
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 16
IMAGE_TOKENS = 2_000
# Deeper than any chat request (tool schemas included); the walks below stay far from Python's
# recursion limit.
MAX_JSON_DEPTH = 64

# The notice is wrapped in invisible separators (U+2063) so it can be found and stripped.
NOTICE_MARK = "\u2063"
NOTICE_PATTERN = re.compile(r"\s*\u2063[^\u2063]*\u2063")


@dataclass
class ChatRequest:
    body: dict[str, Any]  # what is forwarded: checked, dropped fields left out
    model: str
    stream: bool
    n: int
    max_tokens_asked: int | None
    max_tokens_field: str  # which field the client used (max_completion_tokens or max_tokens)
    include_usage: bool  # the client asked for the usage chunk
    body_user: str | None
    conversation_id: str


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


# Built once: json.loads with these options would build a decoder per call.
_decoder = json.JSONDecoder(parse_float=_finite, parse_constant=_not_a_number)
_TOO_DEEP = object()  # what a body deeper than Python can parse becomes


def json_object_parse(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object of at most MAX_JSON_DEPTH levels, with finite numbers only."""
    try:
        body = _decoder.decode(raw.decode(json.detect_encoding(raw)))
    except (UnicodeDecodeError, ValueError):
        raise invalid(_("The request body is not valid JSON.")) from None
    except RecursionError:
        body = _TOO_DEEP
    if body is _TOO_DEEP or (isinstance(body, dict) and _too_deep(body)):
        raise invalid(
            _("The request body is nested more than %(depth)d levels deep.")
            % {"depth": MAX_JSON_DEPTH}
        )
    if not isinstance(body, dict):
        raise invalid(_("The request body must be a JSON object."))
    return body


def _too_deep(value: Any) -> bool:
    """Whether `value` nests more than MAX_JSON_DEPTH levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def chat_request_parse(raw: bytes) -> ChatRequest:
    """Parse and check the body; raises a 400 SolarisError naming the param."""
    body = parameters_check(json_object_parse(raw))
    stream = body.get("stream", False)
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    options = body.get("stream_options") or {}
    user = body.get("user")
    return ChatRequest(
        body=body,
        model=body["model"].strip(),
        stream=stream,
        n=body.get("n", 1),
        max_tokens_asked=asked,
        max_tokens_field=field,
        include_usage=bool(stream and options.get("include_usage") is True),
        body_user=user,
        conversation_id="",
    )


def _text_bytes(value: Any) -> tuple[int, int]:
    """(UTF-8 bytes of every string inside `value`, number of images inside it)."""
    if isinstance(value, str):
        # surrogatepass: a lone surrogate (valid JSON, not valid UTF-8) still counts its bytes.
        return len(value.encode("utf-8", "surrogatepass")), 0
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


def _message_strip(message: dict[str, Any]) -> bool:
    """Remove the notices from one message; whether it held nothing else."""
    content = message.get("content")
    if isinstance(content, str):
        if NOTICE_MARK not in content:
            return False
        message["content"] = _strip_text(content)
        return not message["content"].strip()
    if not isinstance(content, list):
        return False
    marked = rest = False
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            if NOTICE_MARK in part["text"]:
                marked, part["text"] = True, _strip_text(part["text"])
            rest = rest or bool(part["text"].strip())
        else:
            rest = True  # an image or any other part
    return marked and not rest


def notices_strip(body: dict[str, Any]) -> None:
    """Remove Solaris's own notices from the messages (LibreChat sends the history back). An
    assistant message that was only a notice (a refusal answered in band) is left out, so the
    model never sees that turn."""
    kept = [
        message
        for message in body["messages"]
        if not (
            _message_strip(message)
            and message.get("role") == "assistant"
            and not message.get("tool_calls")
        )
    ]
    if kept:
        body["messages"] = kept


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
    body = dict(request.body)
    body.pop("max_tokens", None)
    body.pop("max_completion_tokens", None)
    body[request.max_tokens_field] = max_tokens
    body["user"] = str(user_id)
    if request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid in JSON text, not in UTF-8): escaped as the client sent it.
        return json.dumps(body, separators=(",", ":")).encode("ascii")
