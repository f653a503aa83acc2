"""The only module that talks to LiteLLM.

One pooled `httpx.AsyncClient` per event loop (one per process under uvicorn), the timeouts of
SOLARIS_UPSTREAM_* (connect, first byte, idle between chunks), and one retry for a connection that
failed before any byte of the request was sent. Failures come out as the three exceptions below,
so the caller never sees httpx.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncIterator

import httpx
from django.conf import settings


class UpstreamUnavailable(Exception):
    """LiteLLM could not be reached (connection refused, reset before an answer)."""


class UpstreamTimeout(Exception):
    """No answer within the first-byte timeout, or a stream idle longer than the idle timeout."""


class UpstreamBroken(Exception):
    """The connection failed after the answer started."""


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def _headers() -> dict[str, str]:
    return (
        {"Authorization": f"Bearer {settings.LITELLM_API_KEY}"} if settings.LITELLM_API_KEY else {}
    )


def client() -> httpx.AsyncClient:
    """The shared client of the running event loop (an AsyncClient cannot cross loops)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None or found.is_closed:
        connect = settings.SOLARIS_UPSTREAM_CONNECT_TIMEOUT
        found = httpx.AsyncClient(
            # Reads are bounded by first-byte and idle timeouts below, not by httpx.
            timeout=httpx.Timeout(connect=connect, read=None, write=connect, pool=connect),
            limits=httpx.Limits(
                max_connections=settings.SOLARIS_UPSTREAM_MAX_CONNECTIONS,
                max_keepalive_connections=100,
                keepalive_expiry=30,
            ),
            trust_env=False,
        )
        _clients[loop] = found
    return found


def check_ready() -> str:
    """Readiness of the upstream: "not configured" when LITELLM_BASE_URL is unset, else raises."""
    if not settings.LITELLM_BASE_URL:
        return "not configured"
    response = httpx.get(
        f"{settings.LITELLM_BASE_URL}/health/liveliness", headers=_headers(), timeout=2.0
    )
    response.raise_for_status()
    return "ok"


class Reply:
    """An upstream answer whose headers have arrived; the body is read with the idle timeout."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "application/json")
        self._chunks = response.aiter_raw()

    async def next_chunk(self, timeout: float) -> bytes:
        """The next bytes of the body, b"" at its end."""
        try:
            async with asyncio.timeout(timeout):
                return await anext(self._chunks, b"")
        except TimeoutError:
            raise UpstreamTimeout from None
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        idle = settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT
        while chunk := await self.next_chunk(idle):
            yield chunk

    async def read(self) -> bytes:
        """The whole body: the first bytes within the first-byte timeout, then idle gaps."""
        parts = [await self.next_chunk(settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT)]
        async for chunk in self.chunks():
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Stop the upstream: closing the connection makes LiteLLM abandon the generation."""
        await self.response.aclose()


async def _send(method: str, path: str, *, content: bytes | None = None) -> Reply:
    if not settings.LITELLM_BASE_URL:
        raise UpstreamUnavailable("LITELLM_BASE_URL is not set")
    http = client()
    # Raw bytes are relayed as they come: they must not be compressed.
    headers = {**_headers(), "Accept-Encoding": "identity"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    request = http.build_request(
        method, f"{settings.LITELLM_BASE_URL}{path}", content=content, headers=headers
    )
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT):
                response = await http.send(request, stream=True)
            return Reply(response)
        except TimeoutError:
            raise UpstreamTimeout from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing of the request reached LiteLLM: one retry is safe, it cannot double a call.
            if attempt == 2:
                raise UpstreamUnavailable(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def chat_open(*, payload: bytes) -> Reply:
    """POST /v1/chat/completions; returns once the answer's headers arrived."""
    return await _send("POST", "/v1/chat/completions", content=payload)


async def models_list() -> list[str]:
    """The model names LiteLLM serves, each once, in its order."""
    reply = await _send("GET", "/v1/models")
    try:
        body = await reply.read()
    finally:
        await reply.aclose()
    if reply.status != 200:
        raise UpstreamUnavailable(f"GET /v1/models answered {reply.status}")
    try:
        return list(
            dict.fromkeys(item["id"] for item in json.loads(body)["data"] if item.get("id"))
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamUnavailable("GET /v1/models answered an unexpected body") from exc
