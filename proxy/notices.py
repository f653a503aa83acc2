"""Notices in band: a refusal about the user, decided before any output, answered as a normal chat
completion whose assistant text says what happened (docs/proxy.md, "Notices in band").

LibreChat's model client turns every 429 into its own generic "rate limit" text and retries 503s
for minutes, so an HTTP error never reaches the person; a chat answer does. For integration keys
that allow it, the codes below are answered 200 with the localized notice: streamed as SSE ending
in [DONE] when the request streams, plain JSON otherwise (one short line: LibreChat's title calls
are not streamed, so it becomes the conversation's title). The text is wrapped in the marks the
alert note uses, so it is stripped from the history LibreChat sends back (proxy.payload).
"""

import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, override

from credits.selectors import AccountSummary
from kernel.errors import SolarisError
from proxy.payload import NOTICE_MARK

HEADER = "X-Solaris-Notice"
# The refusals answered in band; any other stays an HTTP error (docs/proxy.md, the error table).
CODES = (
    "insufficient_quota",
    "request_exceeds_credits",
    "account_suspended",
    "model_not_allowed",
    "rate_limit_exceeded",
    "upstream_unavailable",
    "upstream_timeout",
)
# A renewal this close is worth telling someone who ran out of credits.
RENEWAL_NEAR = timedelta(days=7)


@dataclass(frozen=True)
class Notice:
    code: str
    title: str  # one short line: the whole answer of a non-streamed call
    text: str  # the streamed answer: the title, what happened and what to do


def in_band(*, enabled: bool, code: str) -> bool:
    """Whether a refusal with this code is answered as a chat completion."""
    return enabled and code in CODES


def _purchase() -> dict[str, str]:
    return {
        "url": f"{settings.SOLARIS_PUBLIC_URL}/conta/comprar/",
        "email": settings.SOLARIS_PURCHASE_EMAIL,
    }


def _renewal(summary: AccountSummary | None) -> str:
    """When the plan renews with new credits soon, say when and how many; else ""."""
    if summary is None or summary.plan is None or summary.renews_at is None:
        return ""
    allowance = summary.plan.monthly_allowance
    now = timezone.now()
    if allowance <= 0 or not now < summary.renews_at <= now + RENEWAL_NEAR:
        return ""
    return " " + _("Your plan renews on %(date)s with %(credits)s credits.") % {
        "date": formats.date_format(timezone.localtime(summary.renews_at), "SHORT_DATE_FORMAT"),
        "credits": formats.number_format(allowance, force_grouping=True),
    }


def _wait_text(error: SolarisError) -> str:
    """Wait N seconds and send it again, N from the refusal's Retry-After."""
    try:
        seconds = max(1, int(error.headers.get("Retry-After", "")))
    except ValueError:
        seconds = 60
    return ngettext(
        "Wait %(seconds)s second and send it again; nothing was charged.",
        "Wait %(seconds)s seconds and send it again; nothing was charged.",
        seconds,
    ) % {"seconds": seconds}


def _texts(error: SolarisError, summary: AccountSummary | None, model: str) -> tuple[str, str]:
    """(title, body) of the notice for `error`, in the active language."""
    code = error.code
    if code == "insufficient_quota":
        body = (
            _(
                "Your credits have run out, so this message was not sent to the AI and nothing was "
                "charged. To keep chatting, buy more credits at %(url)s or write to %(email)s."
            )
            % _purchase()
        )
        return _("Credits exhausted"), body + _renewal(summary)
    if code == "request_exceeds_credits":
        available = max(summary.available, 0) if summary is not None else 0
        body = _(
            "This message could cost more than the %(available)s credits you have left, so it "
            "was not sent and nothing was charged. Start a new conversation (a long history "
            "costs more) or choose a cheaper model; to buy more credits, open %(url)s or write "
            "to %(email)s."
        ) % {"available": formats.number_format(available, force_grouping=True), **_purchase()}
        return _("Message larger than your credits"), body + _renewal(summary)
    if code == "account_suspended":
        return _("Account suspended"), _(
            "Your account is suspended, so this message was not sent and nothing was charged. "
            "Please contact your administrator."
        )
    if code == "model_not_allowed":
        return _("Plan does not include this model"), _(
            "Your plan does not include the model %(model)s, so this message was not sent and "
            "nothing was charged. Choose another model in the model menu; to change plans, "
            "write to %(email)s."
        ) % {"model": model, "email": settings.SOLARIS_PURCHASE_EMAIL}
    if code == "rate_limit_exceeded":
        plan = summary.plan if summary is not None else None
        body = _wait_text(error)
        if plan is not None and plan.requests_per_minute:
            limit = plan.requests_per_minute
            body = (
                ngettext(
                    "Your plan allows %(limit)s message per minute.",
                    "Your plan allows %(limit)s messages per minute.",
                    limit,
                )
                % {"limit": limit}
                + " "
                + body
            )
        return _("Too many messages per minute"), body
    if code == "upstream_unavailable":
        body = _("The AI service is unavailable right now, so this message was not answered.")
        return _("AI service unavailable"), body + " " + _wait_text(error)
    if code == "upstream_timeout":
        return _("AI service did not answer in time"), _(
            "The AI service did not start answering in time, so nothing was charged. Try "
            "again; if it happens again, choose another model."
        )
    raise ValueError(f"no notice for {code}")


def notice_for(
    *, error: SolarisError, language: str, summary: AccountSummary | None, model: str
) -> Notice:
    """The notice that answers `error` for a user who reads `language`."""
    with override(language):
        title, body = _texts(error, summary, model)
    return Notice(
        code=error.code,
        title=f"{NOTICE_MARK}{title}{NOTICE_MARK}",
        text=f"{NOTICE_MARK}**{title}**\n\n{body}{NOTICE_MARK}",
    )


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def response(notice: Notice, *, model: str, stream: bool, include_usage: bool) -> HttpResponse:
    """The chat completion that carries the notice, charged nothing (zero usage)."""
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if stream:
        chunk = {**head, "object": "chat.completion.chunk"}
        events = [
            _event(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": notice.text},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            ),
            _event(
                {
                    **chunk,
                    "choices": [
                        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
                    ],
                }
            ),
        ]
        if include_usage:
            events.append(_event({**chunk, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        answer = HttpResponse(b"".join(events), content_type="text/event-stream")
        answer["Cache-Control"] = "no-cache"
    else:
        document = {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": notice.title, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        answer = HttpResponse(
            json.dumps(document, ensure_ascii=False), content_type="application/json"
        )
    answer[HEADER] = notice.code
    return answer
