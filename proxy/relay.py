"""Reading LiteLLM's answers for billing without re-serialising them.

SSE bytes are split into events and passed on as they are; only the usage chunk and error chunks are
parsed as JSON. The text produced so far is measured from the raw bytes (the length of the escaped
JSON strings, never below their UTF-8 size) so a stream cut short is billed by an upper bound.
"""

import json
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from kernel.errors import SolarisError

DONE = b"data: [DONE]"
TOKENS_MAX = 2**31 - 1
# "content", "reasoning_content" and tool-call "arguments" strings inside a chunk.
GENERATED = re.compile(rb'"(?:content|reasoning_content|arguments)":\s*"((?:[^"\\]|\\.)*)"')
USAGE = re.compile(rb'"usage":\s*\{')
FIELDS = re.compile(rb'"(id|model)":\s*"([^"\\]*)"|"(created)":\s*(\d+)')
MODEL = re.compile(rb'"model":\s*"([^"\\]{1,200})"')
MODEL_KEY = b'"model":'
# A stream names its model in every chunk; more names than this is not an answer from LiteLLM.
MAX_MODELS = 8
# LiteLLM (1.106.2) on every answer: the model group that answered, and how many of its
# operator-configured fallbacks it tried first (0: the requested group answered).
MODEL_GROUP_HEADER = "x-litellm-model-group"
ATTEMPTED_FALLBACKS_HEADER = "x-litellm-attempted-fallbacks"


def sse_event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def error_event(error: SolarisError) -> bytes:
    return sse_event(error.body())


def generated_bytes(raw: bytes) -> int:
    return sum(len(match) for match in GENERATED.findall(raw))


def usage_of(document: dict) -> tuple[int, int] | None:
    usage = document.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    # The call record's token columns are 32-bit: no real usage comes near.
    return min(max(prompt, 0), TOKENS_MAX), min(max(completion, 0), TOKENS_MAX)


def fallback_of(headers) -> str:
    """The model group that answered when LiteLLM fell back from the one asked for, else ""."""
    try:
        attempted = int(headers.get(ATTEMPTED_FALLBACKS_HEADER) or 0)
    except ValueError:
        attempted = 0
    group = (headers.get(MODEL_GROUP_HEADER) or "").strip()
    return group[:200] if attempted > 0 else ""


def models_of(document: dict) -> set[str]:
    """The model a whole answer names (a set, as for streams)."""
    model = document.get("model")
    return (
        {model}
        if isinstance(model, str) and 0 < len(model) <= 200 and "\x00" not in model
        else set()
    )


def _is_usage_only(document: dict) -> bool:
    """The closing usage chunk: `choices` is [] (OpenAI) or [{"delta": {}}] (LiteLLM)."""
    choices = document.get("choices") or []
    return all(
        isinstance(choice, dict) and not choice.get("delta") and not choice.get("finish_reason")
        for choice in choices
    )


@dataclass
class StreamState:
    """What the relay learned from a stream so far."""

    include_usage: bool
    notice: str = ""  # appended to a text answer before its end when set
    usage: tuple[int, int] | None = None
    produced: int = 0
    text: bool = False
    done: bool = False
    error: SolarisError | None = None
    upstream_error: dict | None = None
    meta: dict = field(default_factory=dict)
    models: set[str] = field(default_factory=set)  # every model the chunks named
    _model_tag: bytes = b""  # `"model":"<first model>"`, as the chunks carry it
    _pending: bytes = b""

    def feed(self, raw: bytes) -> bytes:
        """Bytes to send on for this piece of the upstream body (events are never split)."""
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n")
        data = self._pending + raw
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        self._pending = data[end + 2 :]
        complete = data[: end + 2]
        if not self.meta:
            self._remember_meta(complete)
        self._note_models(complete)
        if USAGE.search(complete) is None and b'"error"' not in complete and DONE not in complete:
            self._count(complete)
            return complete
        return b"".join(self._event(event + b"\n\n") for event in complete[:-2].split(b"\n\n"))

    def finish(self) -> bytes:
        """Whatever is left when the upstream closed without a blank line after its last event."""
        rest, self._pending = self._pending.strip(), b""
        self._note_models(rest)
        return self._event(rest + b"\n\n") if rest else b""

    def _count(self, raw: bytes) -> None:
        size = generated_bytes(raw)
        if size:
            self.produced += size
            self.text = self.text or b'"content":' in raw

    def _note_models(self, raw: bytes) -> None:
        """Remember the models the chunks name: a stream LiteLLM continued on a fallback
        deployment midway names that one from then on."""
        # Two counts (no regex) when every chunk names the first model, as they do.
        if self._model_tag and raw.count(MODEL_KEY) == raw.count(self._model_tag):
            return
        for name in MODEL.findall(raw):
            if len(self.models) < MAX_MODELS:
                self.models.add(name.decode("utf-8", "replace"))
        if not self._model_tag and self.models:
            first = min(self.models)
            self._model_tag = MODEL_KEY + b'"' + first.encode("utf-8") + b'"'

    def _remember_meta(self, raw: bytes) -> None:
        for match in FIELDS.finditer(raw[:2048]):
            name, value = (match[1], match[2]) if match[1] else (match[3], match[4])
            self.meta.setdefault(name.decode(), value.decode("utf-8", "replace"))

    def _event(self, event: bytes) -> bytes:
        if self.done or self.error is not None:
            return b""
        stripped = event.strip()
        if stripped == DONE:
            self.done = True
            return self.notice_event() + event
        if not stripped.startswith(b"data:"):
            return event  # comments and other SSE fields pass as they are
        if USAGE.search(event) is None and b'"error"' not in event:
            self._count(event)
            return event
        try:
            document = json.loads(stripped[5:])
        except ValueError:
            self._count(event)
            return event
        if not isinstance(document, dict):
            return event
        if "error" in document and "choices" not in document:
            self.upstream_error = document["error"] if isinstance(document["error"], dict) else {}
            self.error = SolarisError(
                _("The AI service failed while answering. Try again."),
                status=502,
                code="upstream_error",
                type="server_error",
            )
            return error_event(self.error)
        usage = usage_of(document)
        if usage is not None:
            self.usage = usage
            if _is_usage_only(document):
                return self.notice_event() + (event if self.include_usage else b"")
        self._count(event)
        return event

    def notice_event(self) -> bytes:
        if not self.notice or not self.text:
            return b""
        notice, self.notice = self.notice, ""
        return sse_event(
            {
                "id": self.meta.get("id", "solaris-notice"),
                "object": "chat.completion.chunk",
                "created": int(self.meta.get("created", 0)),
                "model": self.meta.get("model", ""),
                "choices": [{"index": 0, "delta": {"content": notice}, "finish_reason": None}],
            }
        )


def upstream_error_answer(status: int, body: bytes) -> SolarisError:
    """Our answer to an upstream non-200 (docs/proxy.md). LiteLLM's authentication and budget errors
    are its own business: they never reach the user as theirs."""
    try:
        document = json.loads(body)
        error = document.get("error") if isinstance(document, dict) else None
    except ValueError:
        error = None
    error = error if isinstance(error, dict) else {}
    text = " ".join(str(error.get(name) or "") for name in ("message", "type", "code")).lower()
    # Without a database LiteLLM answers a key it does not know with 400 no_db_connection.
    key_rejected = any(word in text for word in ("authentication", "api key", "no_db_connection"))
    if status in (401, 403) or key_rejected:
        return SolarisError(
            _("Solaris could not authenticate with the AI service. The administrators were told."),
            status=502,
            code="upstream_auth_failed",
            type="server_error",
        )
    if "budget" in text:
        return SolarisError(
            _("The AI service refused the call for its own limits. Try again later."),
            status=502,
            code="upstream_error",
            type="server_error",
        )
    if status == 408:
        return upstream_timeout()
    if 400 <= status < 500:
        # Plain text only: LiteLLM appends provider payloads ("{'error': …}") to its messages.
        message = re.split(r"[{\[]", str(error.get("message") or ""), maxsplit=1)[0].strip()
        message = message[:1000] or _("The AI service refused the request.")
        code = error.get("code")
        return SolarisError(
            message,
            status=status,
            code=str(code) if code else "upstream_error",
            type=str(error.get("type") or "invalid_request_error"),
            param=str(error["param"]) if error.get("param") else None,
        )
    return SolarisError(
        _("The AI service failed. Try again."),
        status=502,
        code="upstream_error",
        type="server_error",
    )


def upstream_timeout() -> SolarisError:
    return SolarisError(
        _("The AI service took too long to answer. Try again."),
        status=504,
        code="upstream_timeout",
        type="server_error",
    )
