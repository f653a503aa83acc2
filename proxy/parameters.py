"""What Solaris forwards to LiteLLM: the chat-completion parameters OpenAI documents, each with the
type and range OpenAI documents for it (docs/proxy.md, "What reaches LiteLLM").

One table, `PARAMETERS`: name → check. `metadata` and `store` are dropped without a word (LiteLLM
reads `metadata` for its own tags and routing). Everything else is refused with 400
`unsupported_parameter`, unless the operator names it in SOLARIS_EXTRA_PARAMS; LiteLLM's own
routing, retry, credential, cost and mock fields are refused even then, since any of them lets a
caller choose what answers, or what it costs.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from kernel.errors import SolarisError

# n above this would hold n answers' worth of credits for one call; OpenAI allows 128.
MAX_CHOICES = 16
# No model writes more; bounds the hold (a bigint in SQL) whatever the weights.
MAX_OUTPUT_TOKENS = 1_000_000
MODEL_MAX_LENGTH = 200  # ModelPrice.model
USER_MAX_LENGTH = 256
MAX_STOP_SEQUENCES = 4
MAX_TOOLS = 128
TOOL_NAME_MAX_LENGTH = 128
MAX_TOP_LOGPROBS = 20
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
INT64 = 2**63

DROPPED = frozenset({"metadata", "store"})
# LiteLLM reads these per request: never forwarded, not even when listed in SOLARIS_EXTRA_PARAMS.
LITELLM_OWN = frozenset(
    {
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "num_retries",
        "max_retries",
        "retry_policy",
        "timeout",
        "stream_timeout",
        "request_timeout",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "api_type",
        "organization",
        "custom_llm_provider",
        "model_list",
        "tags",
        "cache",
        "caching",
        "no-log",
        "no_log",
        "guardrails",
        "user_config",
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_second",
        "output_cost_per_second",
        "include_fallback_errors",
        "proxy_server_request",
        "secret_fields",
        "extra_headers",
        "extra_body",
    }
)
LITELLM_OWN_PREFIXES = ("mock_", "litellm_", "aws_", "vertex_", "azure_")

Check = Callable[[str, Any], None]


def invalid(message: str, param: str | None = None) -> SolarisError:
    return SolarisError(message, status=400, code="invalid_request_error", param=param)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise invalid(_("'%(name)s' must be true or false.") % {"name": name}, name)


def integer(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid(
                _("'%(name)s' must be an integer from %(low)s to %(high)s.")
                % {"name": name, "low": low, "high": high},
                name,
            )

    return check


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> None:
        # Integers of any size compare exactly; floats are finite (payload refuses the others).
        if not _is_number(value) or not low <= value <= high:
            raise invalid(
                _("'%(name)s' must be a number from %(low)s to %(high)s.")
                % {"name": name, "low": low, "high": high},
                name,
            )

    return check


def text_check(name: str, value: Any, *, max_length: int, empty: bool = True) -> None:
    """A string of at most `max_length` characters, encodable as UTF-8, without NUL."""
    if not isinstance(value, str) or len(value) > max_length or (not empty and not value.strip()):
        raise invalid(
            _("'%(name)s' must be a text of at most %(max)d characters.")
            % {"name": name, "max": max_length},
            name,
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(_("'%(name)s' is not valid text.") % {"name": name}, name) from None
    if "\x00" in value:
        raise invalid(_("'%(name)s' must not contain NUL characters.") % {"name": name}, name)


def text(max_length: int, *, empty: bool = True) -> Check:
    def check(name: str, value: Any) -> None:
        text_check(name, value, max_length=max_length, empty=empty)

    return check


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in choices or not isinstance(value, str):
            raise invalid(
                _("'%(name)s' must be one of: %(choices)s.")
                % {"name": name, "choices": ", ".join(choices)},
                name,
            )

    return check


def _object(name: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise invalid(_("'%(name)s' must be an object.") % {"name": name}, name)
    return value


def _list(name: str, value: Any, *, max_items: int | None = None) -> list:
    if not isinstance(value, list) or (max_items is not None and len(value) > max_items):
        message = _("'%(name)s' must be a list.") % {"name": name}
        if max_items is not None:
            message = _("'%(name)s' must be a list of at most %(max)d items.") % {
                "name": name,
                "max": max_items,
            }
        raise invalid(message, name)
    return value


def _typed_object(name: str, value: Any, types: tuple[str, ...] | None = None) -> dict:
    """An object whose `type` is a string (one of `types` when given)."""
    found = _object(name, value)
    if types is not None:
        one_of(*types)(f"{name}.type", found.get("type"))
    elif not isinstance(found.get("type"), str):
        text_check(f"{name}.type", found.get("type"), max_length=64)
    return found


def messages(name: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise invalid(_("'messages' must be a non-empty list."), name)
    for index, message in enumerate(value):
        where = f"{name}.[{index}]"
        if not isinstance(message, dict):
            raise invalid(_("Every message must be an object."), where)
        one_of(*ROLES)(f"{where}.role", message.get("role"))
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise invalid(
                _("A message's 'content' must be a text, a list of parts or null."),
                f"{where}.content",
            )
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise invalid(_("Every part of a message's content must be an object."), where)
        if "tool_calls" in message and message["tool_calls"] is not None:
            _list(f"{where}.tool_calls", message["tool_calls"])


def stream_options(name: str, value: Any) -> None:
    options = _object(name, value)
    for key, option in options.items():
        if key not in ("include_usage", "include_obfuscation"):
            raise unsupported(f"{name}.{key}")
        boolean(f"{name}.{key}", option)


def stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    sequences = _list(name, value, max_items=MAX_STOP_SEQUENCES)
    for sequence in sequences:
        if not isinstance(sequence, str):
            raise invalid(_("'%(name)s' must be a text or a list of texts.") % {"name": name}, name)


def logit_bias(name: str, value: Any) -> None:
    for token, bias in _object(name, value).items():
        if not token.isascii() or not token.isdigit():
            raise invalid(_("'logit_bias' keys must be token ids."), name)
        number(-100, 100)(name, bias)


def tools(name: str, value: Any) -> None:
    for index, tool in enumerate(_list(name, value, max_items=MAX_TOOLS)):
        where = f"{name}.[{index}]"
        found = _typed_object(where, tool)
        if found["type"] == "function":
            function = _object(f"{where}.function", found.get("function"))
            text_check(
                f"{where}.function.name",
                function.get("name"),
                max_length=TOOL_NAME_MAX_LENGTH,
                empty=False,
            )


def tool_choice(name: str, value: Any) -> None:
    if isinstance(value, str):
        one_of("none", "auto", "required")(name, value)
    else:
        _typed_object(name, value)


def response_format(name: str, value: Any) -> None:
    found = _typed_object(name, value, ("text", "json_object", "json_schema"))
    if found["type"] == "json_schema":
        _object(f"{name}.json_schema", found.get("json_schema"))


def modalities(name: str, value: Any) -> None:
    for item in _list(name, value, max_items=2):
        one_of("text", "audio")(name, item)


def prediction(name: str, value: Any) -> None:
    found = _typed_object(name, value, ("content",))
    if not isinstance(found.get("content"), str | list):
        raise invalid(_("'prediction.content' must be a text or a list of parts."), name)


PARAMETERS: dict[str, Check] = {
    "model": text(MODEL_MAX_LENGTH, empty=False),
    "messages": messages,
    "stream": boolean,
    "stream_options": stream_options,
    "max_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "max_completion_tokens": integer(1, MAX_OUTPUT_TOKENS),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, MAX_CHOICES),
    "stop": stop,
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "logit_bias": logit_bias,
    "logprobs": boolean,
    "top_logprobs": integer(0, MAX_TOP_LOGPROBS),
    "user": text(USER_MAX_LENGTH),
    "tools": tools,
    "tool_choice": tool_choice,
    "parallel_tool_calls": boolean,
    "response_format": response_format,
    "seed": integer(-INT64, INT64 - 1),
    "reasoning_effort": one_of("none", "minimal", "low", "medium", "high", "xhigh"),
    "modalities": modalities,
    "prediction": prediction,
    "service_tier": one_of("auto", "default", "flex", "scale", "priority"),
}
REQUIRED = ("model", "messages")


def unsupported(name: str) -> SolarisError:
    return SolarisError(
        _("The parameter '%(name)s' is not supported.") % {"name": name},
        status=400,
        code="unsupported_parameter",
        type="invalid_request_error",
        param=name,
    )


def litellm_own(name: str) -> bool:
    return name in LITELLM_OWN or name.startswith(LITELLM_OWN_PREFIXES)


def extra_allowed(name: str) -> bool:
    """Named by the operator in SOLARIS_EXTRA_PARAMS, and not one of LiteLLM's own fields."""
    return name in settings.SOLARIS_EXTRA_PARAMS and not litellm_own(name)


def parameters_check(body: dict[str, Any]) -> dict[str, Any]:
    """The body to forward: every field checked, `metadata` and `store` dropped, nulls of optional
    parameters left out. Raises a 400 SolarisError naming the offending `param`."""
    for name in REQUIRED:
        if body.get(name) is None:
            raise invalid(_("'%(name)s' is required.") % {"name": name}, name)
    checked: dict[str, Any] = {}
    for name, value in body.items():
        check = PARAMETERS.get(name)
        if check is None:
            if name in DROPPED:
                continue
            if not extra_allowed(name):
                raise unsupported(name)
        elif value is None:
            continue
        else:
            check(name, value)
        checked[name] = value
    return checked
