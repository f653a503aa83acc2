"""How uvicorn serves Solaris: `uvicorn solaris.asgi:application --http solaris.serving:HTTPProtocol`.

uvicorn's own HTTP protocol (httptools when installed, else h11) that turns Nagle's algorithm off
on every TCP connection it accepts. With `--workers N` (and under gunicorn) the listening socket is
bound by the supervisor with protocol number 0; the accepted connections inherit that 0, and
asyncio's standard event loop enables TCP_NODELAY only on sockets that say IPPROTO_TCP. An answer
is written in pieces (the headers, then the body or each stream chunk), so every piece after the
first waited for the client's delayed ACK: about 48 ms per call (docs/performance.md). uvloop sets
TCP_NODELAY on every connection; this does the same on any loop.
"""

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def nodelay_set(transport: asyncio.BaseTransport) -> None:
    """Send every write at once on a TCP connection (no wait for the peer's ACK of the last one)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        # A client gone before this runs leaves a socket that refuses options: nothing to speed up.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# uvicorn types its choice as a variable; it is a class (H11Protocol or HttpToolsProtocol).
class HTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        nodelay_set(transport)
        super().connection_made(transport)
