"""The OpenAI-compatible endpoints LibreChat calls (docs/proxy.md), as async views on ASGI.

Per call: one thread hop to admit (proxy.services.call_admit), the upstream call on the shared
aiohttp session, bytes relayed as they arrive, one thread hop to settle. Settlement runs in its own
task: the answer does not wait for it (the hold covers the call until it lands), a client that
disconnects (CancelledError) is still billed and recorded, and shutdown waits for it (proxy.edge, proxy.runtime).
The credit headers are the account's at admission, with this call's worst case held.
"""

import asyncio
import json
import logging
import time
import uuid
from typing import TypeVar

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import translation

from accounts.services import IDENTITY_EMAIL_HEADER, IDENTITY_ID_HEADER
from credits.models import Account
from credits.selectors import AccountSummary
from kernel.errors import SolarisError
from proxy import catalog, metrics, notices, payload, protection, relay, runtime, services, upstream
from proxy.services import Admitted, EndReason, Outcome, Refusal

logger = logging.getLogger(__name__)
ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)

CONVERSATION_HEADER = "X-LibreChat-Conversation-Id"
# A streamed response Django never started to send (client gone first) is settled after this.
UNSENT_STREAM_SECONDS = 30


def credit_headers(response: ResponseT, summary: AccountSummary | None) -> ResponseT:
    if summary is not None:
        response["X-Solaris-Credits-Remaining"] = str(max(summary.available, 0))
        response["X-Solaris-Credits-Used-Percent"] = str(summary.used_percent)
        response["X-Solaris-Credit-State"] = summary.state
    return response


def error_response(error: SolarisError, summary: AccountSummary | None = None) -> HttpResponse:
    response = credit_headers(error.as_response(), summary)
    if error.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="solaris"'
    return response


def _bearer(request) -> str:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _read_body(request) -> bytes:
    limit = settings.SOLARIS_MAX_BODY_BYTES
    too_large = SolarisError(
        f"The request body is larger than {limit} bytes.",
        status=413,
        code="request_too_large",
    )
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    # read() instead of .body: the limit here is ours, not DATA_UPLOAD_MAX_MEMORY_SIZE.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    return raw


class Call:
    """One admitted call on its way: ends exactly once, whatever happens to the request."""

    def __init__(self, admitted: Admitted, chat: payload.ChatRequest, started: float):
        self.admitted = admitted
        self.chat = chat
        self.started = started
        self.reply: upstream.Reply | None = None
        self.relay_started = False
        self.ended: asyncio.Task | None = None
        self.added = 0.0  # seconds Solaris spent before forwarding

    def end(self, outcome: Outcome, *, with_summary: bool = False) -> asyncio.Task:
        """Close the upstream, settle and record, in a task of its own (idempotent)."""
        if self.ended is None:
            self.ended = asyncio.ensure_future(self._end(outcome, with_summary))
            runtime.settlement_track(self.ended)
        return self.ended

    async def settle(self, outcome: Outcome, *, with_summary: bool = False):
        # shield: if the request is cancelled meanwhile, the settlement still completes.
        return await asyncio.shield(self.end(outcome, with_summary=with_summary))

    async def _end(self, outcome: Outcome, with_summary: bool):
        if self.reply is not None:
            await self.reply.aclose()
        ended = time.perf_counter()
        admitted = self.admitted
        record, summary = await runtime.in_db_thread(services.call_settle)(
            admitted=admitted,
            outcome=outcome,
            duration_ms=int((ended - self.started) * 1000),
            with_summary=with_summary,
        )
        kind = "true" if admitted.stream else "false"
        metrics.DURATION.labels(stream=kind).observe(ended - self.started)
        metrics.ADDED.labels(stream=kind).observe(self.added + time.perf_counter() - ended)
        metrics.call_observe(
            model=admitted.model,
            status=record.status_code,
            end_reason=record.end_reason,
            error_code=record.error_code,
            prompt=record.prompt_tokens,
            completion=record.completion_tokens,
            credits=record.credits,
        )
        logger.info(
            "call ended",
            extra={
                "call_id": admitted.call_id,
                "user_id": admitted.caller.user.pk,
                "model": admitted.model,
                "end_reason": record.end_reason,
                "credits": record.credits,
                "duration_ms": record.duration_ms,
            },
        )
        return summary

    def settle_if_unsent(self) -> None:
        if not self.relay_started:
            self.end(Outcome(EndReason.CLIENT_DISCONNECTED, 200, circuit=protection.SUCCESS))


async def chat_completions(request):
    started = time.perf_counter()
    if request.method != "POST":
        return error_response(
            SolarisError("Use POST.", status=405, code="method_not_allowed"), None
        )
    request_id = getattr(request, "request_id", "") or uuid.uuid4().hex
    call_id = services.call_id_for(
        request_id, from_client=request.headers.get("X-Request-ID") == request_id
    )
    chat, parse_error = None, None
    try:
        chat = payload.chat_request_parse(await _read_body(request))
        payload.notices_strip(chat.body)
    except SolarisError as error:
        if error.status_code == 413:
            metrics.call_observe(model="", status=413, end_reason=EndReason.REFUSED)
            return error_response(error)
        parse_error = error
    try:
        admitted = await runtime.in_db_thread(services.call_admit)(
            call_id=call_id,
            raw_key=_bearer(request),
            email=request.headers.get(IDENTITY_EMAIL_HEADER),
            librechat_id=request.headers.get(IDENTITY_ID_HEADER),
            conversation_id=services.usable_conversation(request.headers.get(CONVERSATION_HEADER)),
            request=chat,
            parse_error=parse_error,
        )
    except Refusal as refusal:
        metrics.call_observe(
            model=chat.model if chat and refusal.code != "model_not_found" else "",
            status=200 if refusal.notice else refusal.status_code,
            end_reason=EndReason.REFUSED,
        )
        if refusal.notice is not None and chat is not None:
            return notice_response(refusal.notice, chat, refusal.summary)
        return error_response(refusal, refusal.summary)
    except SolarisError as error:
        metrics.call_observe(model="", status=error.status_code, end_reason=EndReason.REFUSED)
        return error_response(error)
    assert chat is not None
    call = Call(admitted, chat, started)
    body = payload.forward_body(
        chat, max_tokens=admitted.max_tokens, user_id=admitted.caller.user.pk
    )
    call.added = time.perf_counter() - started
    try:
        with translation.override(admitted.caller.user.language):
            return await _forward(call, chat, body)
    except asyncio.CancelledError:
        # The client left before the answer started: the prompt was sent, so it is charged.
        await call.settle(Outcome(EndReason.CLIENT_DISCONNECTED, 499))
        raise


def notice_response(
    notice: notices.Notice, chat: payload.ChatRequest, summary: AccountSummary | None
) -> HttpResponse:
    """A refusal answered in band: a chat completion carrying the notice, with the credit headers."""
    metrics.notice_observe(code=notice.code)
    response = notices.response(
        notice, model=chat.model, stream=chat.stream, include_usage=chat.include_usage
    )
    return credit_headers(response, summary)


async def _forward(call: Call, chat: payload.ChatRequest, body: bytes) -> HttpResponseBase:
    try:
        call.reply = await upstream.chat_open(payload=body)
    except upstream.UpstreamUnavailable:
        error = services.upstream_unavailable(retry_after=settings.SOLARIS_CIRCUIT_OPEN_SECONDS)
        return await _fail(call, error, EndReason.UPSTREAM_ERROR)
    except upstream.UpstreamTimeout:
        return await _fail(call, relay.upstream_timeout(), EndReason.TIMEOUT)
    reply = call.reply
    if reply.status != 200:
        try:
            answer = await reply.read()
        except (upstream.UpstreamTimeout, upstream.UpstreamBroken):
            answer = b""
        error = relay.upstream_error_answer(reply.status, answer)
        # A 4xx is the request's fault, never the upstream's health; a 5xx may be too.
        circuit = protection.SERVER_ERROR if reply.status >= 500 else protection.IGNORED
        return await _fail(call, error, EndReason.UPSTREAM_ERROR, circuit=circuit)
    if chat.stream:
        return await _stream(call, chat, reply)
    return await _complete(call, reply)


async def _fail(
    call: Call, error: SolarisError, end_reason: str, *, circuit: str = protection.FAILURE
) -> HttpResponse:
    """Nothing was sent to the client: the hold released, and an HTTP error (or, for LiteLLM
    unreachable or too slow, the notice in band when the caller's integration wants it)."""
    admitted = call.admitted
    in_band = notices.in_band(enabled=admitted.caller.notices, code=error.code)
    outcome = Outcome(
        EndReason.REFUSED if in_band else end_reason,
        200 if in_band else error.status_code,
        error.code,
        circuit=circuit,
    )
    summary = await call.settle(outcome, with_summary=True)
    if not in_band:
        return error_response(error, summary)
    notice = notices.notice_for(
        error=error, language=admitted.caller.user.language, summary=summary, model=admitted.model
    )
    return notice_response(notice, call.chat, summary)


async def _complete(call: Call, reply: upstream.Reply) -> HttpResponse:
    try:
        answer = await reply.read()
    except upstream.UpstreamTimeout:
        return await _fail(call, relay.upstream_timeout(), EndReason.TIMEOUT)
    except upstream.UpstreamBroken:
        error = relay.upstream_error_answer(502, b"")
        return await _fail(call, error, EndReason.UPSTREAM_ERROR)
    try:
        document = json.loads(answer)
    except (ValueError, RecursionError):
        error = relay.upstream_error_answer(502, b"")
        return await _fail(call, error, EndReason.UPSTREAM_ERROR, circuit=protection.SERVER_ERROR)
    document = document if isinstance(document, dict) else {}
    outcome = Outcome(
        EndReason.COMPLETED,
        200,
        usage=relay.usage_of(document),
        produced_bytes=relay.generated_bytes(answer),
        circuit=protection.SUCCESS,
        fallback=relay.fallback_of(reply.headers),
        models=relay.models_of(document),
    )
    # Settled in the background, like a stream: the hold keeps covering the call until then.
    call.end(outcome)
    response = HttpResponse(answer, content_type=reply.content_type)
    return credit_headers(response, call.admitted.summary)


async def _stream(call: Call, chat: payload.ChatRequest, reply: upstream.Reply) -> HttpResponseBase:
    admitted = call.admitted
    summary = admitted.summary
    notice = ""
    if settings.SOLARIS_ALERT_NOTICE and summary and summary.state == Account.State.ALERT:
        notice = payload.notice_text(
            language=admitted.caller.user.language, used_percent=summary.used_percent
        )
    state = relay.StreamState(include_usage=chat.include_usage, notice=notice)
    try:
        first = await reply.next_chunk(settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT)
    except upstream.UpstreamTimeout:
        return await _fail(call, relay.upstream_timeout(), EndReason.TIMEOUT)
    except upstream.UpstreamBroken:
        return await _fail(call, relay.upstream_error_answer(502, b""), EndReason.UPSTREAM_ERROR)
    head = state.feed(first) if first else state.finish()
    if state.error is not None and not state.produced:
        # Nothing was sent yet: the failure can still be a proper HTTP error.
        return await _fail(
            call, state.error, EndReason.UPSTREAM_ERROR, circuit=protection.SERVER_ERROR
        )
    response = StreamingHttpResponse(
        _relay(call, state, head, ended=not first), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    asyncio.get_running_loop().call_later(UNSENT_STREAM_SECONDS, call.settle_if_unsent)
    return credit_headers(response, summary)


async def _relay(call: Call, state: relay.StreamState, head: bytes, *, ended: bool):
    call.relay_started = True
    reply = call.reply
    assert reply is not None
    metrics.OPEN_STREAMS.inc()
    outcome = Outcome(EndReason.CLIENT_DISCONNECTED, 200)
    with translation.override(call.admitted.caller.user.language):
        try:
            if head:
                yield head
            while not (ended or state.done or state.error):
                chunk = await reply.next_chunk(settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT)
                out = state.feed(chunk) if chunk else state.finish()
                ended = not chunk
                if out:
                    yield out
            if state.error is not None:
                outcome = Outcome(
                    EndReason.UPSTREAM_ERROR, 200, state.error.code, circuit=protection.SERVER_ERROR
                )
            else:
                outcome = Outcome(EndReason.COMPLETED, 200, circuit=protection.SUCCESS)
        except upstream.UpstreamTimeout:
            error = relay.upstream_timeout()
            outcome = Outcome(EndReason.TIMEOUT, 200, error.code, circuit=protection.FAILURE)
            yield relay.error_event(error)
        except upstream.UpstreamBroken:
            error = relay.upstream_error_answer(502, b"")
            outcome = Outcome(EndReason.UPSTREAM_ERROR, 200, error.code, circuit=protection.FAILURE)
            yield relay.error_event(error)
        finally:
            # Whatever ended it, what was relayed is charged (nothing at all releases the hold).
            outcome.usage, outcome.produced_bytes = state.usage, state.produced
            outcome.fallback, outcome.models = relay.fallback_of(reply.headers), state.models
            # The answer ends now; the settlement finishes in its own task (started before the
            # stream stops counting as open, so one of the two is always visible).
            call.end(outcome)
            metrics.OPEN_STREAMS.dec()


def _models_read(
    *, raw_key: str, email: str | None, librechat_id: str | None
) -> tuple[list[str], list[str] | None, bool]:
    allowed = services.models_visible(raw_key=raw_key, email=email, librechat_id=librechat_id)
    return allowed, *catalog.upstream_models_read()


async def models(request):
    """The models this caller may use: from Solaris's own tables, narrowed to LiteLLM's list when
    it is known (proxy.catalog); never waits for LiteLLM."""
    if request.method != "GET":
        return error_response(SolarisError("Use GET.", status=405, code="method_not_allowed"))
    try:
        allowed, served, refresh = await runtime.in_db_thread(_models_read)(
            raw_key=_bearer(request),
            email=request.headers.get(IDENTITY_EMAIL_HEADER),
            librechat_id=request.headers.get(IDENTITY_ID_HEADER),
        )
    except SolarisError as error:
        return error_response(error)
    if refresh:
        catalog.upstream_models_refresh_start()
    if served is not None:
        known = set(served)
        allowed = [name for name in allowed if name in known]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "solaris"} for name in allowed
    ]
    return HttpResponse(
        json.dumps({"object": "list", "data": data}), content_type="application/json"
    )
