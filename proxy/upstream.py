"""The only module that talks to LiteLLM.

One pooled `aiohttp.ClientSession` per event loop (one per process under uvicorn), the timeouts of
SOLARIS_UPSTREAM_* (connect, first byte, idle between chunks), and one retry for a connection that
failed before any byte of the request was sent. Failures come out as the three exceptions below,
so the caller never sees aiohttp.

aiohttp rather than httpx on the hot path: measured several times cheaper per call and per stream
(docs/performance.md). httpx stays for the synchronous readiness check.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncIterator

import aiohttp
import httpx
from django.conf import settings


class UpstreamUnavailable(Exception):
    """LiteLLM could not be reached (connection refused, reset before an answer)."""


class UpstreamTimeout(Exception):
    """No answer within the first-byte timeout, or a stream idle longer than the idle timeout."""


class UpstreamBroken(Exception):
    """The connection failed after the answer started."""


_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]" = (
    weakref.WeakKeyDictionary()
)


def _headers() -> dict[str, str]:
    return (
        {"Authorization": f"Bearer {settings.LITELLM_API_KEY}"} if settings.LITELLM_API_KEY else {}
    )


def _session_new() -> aiohttp.ClientSession:
    connect = settings.SOLARIS_UPSTREAM_CONNECT_TIMEOUT
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=settings.SOLARIS_UPSTREAM_MAX_CONNECTIONS, keepalive_timeout=30
        ),
        # Reads are bounded by first-byte and idle timeouts below, not by aiohttp.
        timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect),
        # Raw bytes are relayed as they come: never decompressed, never compressed.
        auto_decompress=False,
        trust_env=False,
    )


def client() -> aiohttp.ClientSession:
    """The shared session of the running event loop (a session cannot cross loops)."""
    loop = asyncio.get_running_loop()
    found = _sessions.get(loop)
    if found is None or found.closed:
        found = _sessions[loop] = _session_new()
    return found


async def sessions_close() -> None:
    """Close the running loop's session (at shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


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

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self.content_type = response.headers.get("content-type", "application/json")
        self._ended = False

    async def next_chunk(self, timeout: float) -> bytes:
        """The next bytes of the body, b"" at its end."""
        try:
            async with asyncio.timeout(timeout):
                chunk = await self.response.content.readany()
        except TimeoutError:
            raise UpstreamTimeout from None
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc
        if not chunk:
            self._ended = True
        return chunk

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
        """Done with the answer: a whole one frees its connection for the next call; closing the
        connection of an unfinished one makes LiteLLM abandon the generation."""
        if self._ended:
            self.response.release()
        else:
            self.response.close()


async def _send(
    method: str,
    path: str,
    *,
    content: bytes | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Reply:
    if not settings.LITELLM_BASE_URL:
        raise UpstreamUnavailable("LITELLM_BASE_URL is not set")
    session = session or client()
    # Raw bytes are relayed as they come: they must not be compressed.
    headers = {**_headers(), "Accept-Encoding": "identity"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    url = f"{settings.LITELLM_BASE_URL}{path}"
    for attempt in (1, 2):
        try:
            async with asyncio.timeout(settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT):
                response = await session.request(method, url, data=content, headers=headers)
            return Reply(response)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Nothing of the request reached LiteLLM: one retry is safe, it cannot double a call.
            if attempt == 2:
                raise UpstreamUnavailable(type(exc).__name__) from exc
        except TimeoutError:
            raise UpstreamTimeout from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def chat_open(*, payload: bytes) -> Reply:
    """POST /v1/chat/completions; returns once the answer's headers arrived."""
    return await _send("POST", "/v1/chat/completions", content=payload)


async def models_list() -> list[str]:
    """The model names LiteLLM serves, each once, in its order.

    On a session of its own: it is rare (cached by the caller) and also runs from admin through
    async_to_sync, whose short-lived event loop must not keep a pooled session behind."""
    async with _session_new() as session:
        reply = await _send("GET", "/v1/models", session=session)
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
