"""The proxy's own ASGI lane: /v1/chat/completions and /v1/models without Django's request cycle.

Django's ASGI handler runs every middleware of settings.MIDDLEWARE and the request_started /
request_finished signals through `sync_to_async` (a thread hop each, in a thread created per
request), which cost more than all of Solaris's own work on a call (docs/performance.md). The two
proxy views need none of it: no session, no CSRF, no auth middleware. This lane hands them a minimal
request (method, headers, body, request id) and sends the Django response they return, with the
same behaviour Django's stack has where it matters: ALLOWED_HOSTS, the X-Request-ID, the language
of Accept-Language (those three imitated in proxy.django_shim), cancelling the view when the client
disconnects, closing the response, and a 500 in the OpenAI shape for an unexpected error. Every
other path goes to Django unchanged. The process-wide state (DB threads, running settlements) is
proxy.runtime's.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils import translation

from kernel.errors import SolarisError
from kernel.middleware import HEADER as REQUEST_ID_HEADER
from kernel.request_context import request_id_var
from proxy import django_shim, metrics, runtime, upstream, views

logger = logging.getLogger("django.request")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

ROUTES = {
    "/v1/chat/completions": views.chat_completions,
    "/v1/models": views.models,
}


async def body_read(receive: Receive, limit: int) -> bytes | None:
    """The body, cut soon after `limit` bytes (the view answers 413); None if the client left."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if size <= limit:
            parts.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _headers_of(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    if not response.streaming:
        headers.append((b"content-length", str(len(response.content)).encode()))  # type: ignore[attr-defined]
    return headers


async def response_send(response: HttpResponseBase, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": _headers_of(response),
        }
    )
    if response.streaming:
        async for chunk in response.streaming_content:  # type: ignore[attr-defined]
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": response.content})  # type: ignore[attr-defined]


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def internal_error() -> HttpResponse:
    return SolarisError(
        "The server had an error while processing your request.",
        status=500,
        code="internal_error",
        type="server_error",
    ).as_response()


async def _respond(view, request: django_shim.EdgeRequest, send: Send) -> None:
    # Errors before the caller is known speak the client's language; the view switches to the
    # user's own once it knows them.
    language = django_shim.language_of(request)
    try:
        with translation.override(language):
            response = await view(request) if django_shim.host_allowed(request) else bad_host()
    except Exception:
        logger.exception("Internal Server Error: %s", request.path, extra={"status_code": 500})
        response = internal_error()
    response[REQUEST_ID_HEADER] = request.request_id
    try:
        await response_send(response, send)
    finally:
        response.close()


def bad_host() -> HttpResponse:
    return SolarisError(
        "Invalid Host header.", status=400, code="invalid_host", type="invalid_request_error"
    ).as_response()


async def app(scope: Scope, receive: Receive, send: Send, view) -> None:
    body = await body_read(receive, settings.SOLARIS_MAX_BODY_BYTES)
    if body is None:
        return
    request = django_shim.EdgeRequest(scope, body)
    token = request_id_var.set(request.request_id)
    # As Django's handler: a client that disconnects cancels the view (which then settles).
    answering = asyncio.ensure_future(_respond(view, request, send))
    listening = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((answering, listening), return_when=asyncio.FIRST_COMPLETED)
    finally:
        listening.cancel()
        answering.cancel()  # a no-op when it is done
        # The client left: the view settled the call as disconnected.
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await answering
        request_id_var.reset(token)


async def lifespan(receive: Receive, send: Send) -> None:
    """Startup: forget the live gauges of workers that died. Shutdown (after the server finished the
    open requests): wait for the settlements still running, so a deploy or a scale-down books every
    call, then close the upstream connections."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            metrics.dead_processes_forget()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            left = await runtime.settlements_finish(settings.SOLARIS_SHUTDOWN_SETTLE_SECONDS)
            if left:
                logger.error("shutdown with %d settlements unfinished: the reaper frees them", left)
                metrics.shutdown_unsettled(count=left)
            metrics.process_forget()
            await upstream.sessions_close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def lane(django_app):
    """The ASGI application: the proxy's paths here, everything else to `django_app`."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        view = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if view is None:
            await django_app(scope, receive, send)
        else:
            await app(scope, receive, send, view)

    return application
