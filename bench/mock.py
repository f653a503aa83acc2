"""A fast OpenAI-compatible upstream for the benchmark: no think time, raw asyncio, HTTP/1.1 keep-alive.

`python -m bench.mock --port P [--chunks 50] [--slow-gap 0.2]` serves:
- POST /v1/chat/completions: a JSON answer, or an SSE stream of `--chunks` content chunks, a finish
  chunk, a usage chunk (when `stream_options.include_usage`) and `[DONE]`. Model `bench-slow` waits
  `--slow-gap` seconds between chunks (the open-streams test).
- GET /v1/models, GET /health/liveliness, GET /health/readiness.
- GET /_bench/usage and POST /_bench/reset: the usage of every answer sent since the last reset,
  which is what the accounting check compares Solaris's ledger with.

Usage is deterministic and varies with the request, so rounding is exercised: prompt tokens are
3 + Σ(4 + words of each message), completion tokens are min(--chunks, max_tokens).
"""

import argparse
import asyncio
import json
import time

MODELS = ("bench-model", "bench-slow")
SLOW_MODEL = "bench-slow"


def prompt_tokens_of(messages) -> int:
    if not isinstance(messages, list):
        return 3
    total = 3
    for message in messages:
        content = message.get("content", "") if isinstance(message, dict) else ""
        total += 4 + (len(content.split()) if isinstance(content, str) else 0)
    return total


def completion_tokens_of(body: dict, chunks: int) -> int:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        return min(chunks, limit)
    return chunks


class Usage:
    """Every answer's usage since the last reset."""

    def __init__(self):
        self.calls: list[tuple[str, int, int, bool, bool]] = []

    def as_json(self) -> dict:
        return {
            "calls": [
                {"model": m, "prompt": p, "completion": c, "stream": s, "complete": done}
                for m, p, c, s, done in self.calls
            ]
        }


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class MockProtocol(asyncio.Protocol):
    def __init__(self, server: "MockServer"):
        self.server = server
        self.buffer = b""
        self.transport = None
        self.busy = False
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True

    def data_received(self, data: bytes):
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self):
        while not self.busy:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            self._handle(method, path.split("?", 1)[0], body)

    def _handle(self, method: str, path: str, body: bytes):
        server = self.server
        if method == "POST" and path == "/v1/chat/completions":
            try:
                request = json.loads(body)
            except ValueError:
                self.transport.write(
                    _response("400 Bad Request", b'{"error":{"message":"bad json"}}')
                )
                return
            if request.get("stream"):
                self.busy = True
                server.streams.add(asyncio.ensure_future(self._stream(request)))
                return
            self.transport.write(_response("200 OK", server.answer(request)))
        elif method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "bench"} for m in MODELS]
            self.transport.write(
                _response("200 OK", json.dumps({"object": "list", "data": data}).encode())
            )
        elif method == "GET" and path.startswith("/health"):
            self.transport.write(_response("200 OK", b'"I\'m alive!"'))
        elif method == "GET" and path == "/_bench/usage":
            self.transport.write(_response("200 OK", json.dumps(server.usage.as_json()).encode()))
        elif method == "POST" and path == "/_bench/reset":
            server.usage = Usage()
            self.transport.write(_response("200 OK", b"{}"))
        else:
            self.transport.write(_response("404 Not Found", b'{"error":{"message":"not found"}}'))

    async def _stream(self, request: dict):
        server = self.server
        model = str(request.get("model", ""))
        prompt = prompt_tokens_of(request.get("messages"))
        completion = completion_tokens_of(request, server.chunks)
        options = request.get("stream_options") or {}
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        gap = server.slow_gap if model == SLOW_MODEL else 0.0
        ident = f"chatcmpl-bench-{next(server.ids)}"
        created = int(time.time())
        head = (
            b'{"id":"'
            + ident.encode()
            + b'","object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":"'
            + model.encode()
            + b'","choices":[{"index":0,'
        )
        write = self.transport.write
        write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            for index in range(completion):
                if self.closed:
                    return
                role = b'"role":"assistant",' if index == 0 else b""
                write(_chunk(b"data: " + head + b'"delta":{' + role + b'"content":"tok "}}]}\n\n'))
                sent += 1
                # Yield so each event is its own write, as a real upstream's would be.
                await asyncio.sleep(gap)
            if self.closed:
                return
            tail = b"data: " + head + b'"delta":{},"finish_reason":"stop"}]}\n\n'
            if include_usage:
                tail += (
                    b"data: "
                    + head
                    + b'"delta":{}}],"usage":{"prompt_tokens":'
                    + str(prompt).encode()
                    + b',"completion_tokens":'
                    + str(completion).encode()
                    + b',"total_tokens":'
                    + str(prompt + completion).encode()
                    + b"}}\n\n"
                )
            tail += b"data: [DONE]\n\n"
            write(_chunk(tail) + b"0\r\n\r\n")
        finally:
            server.usage.calls.append((model, prompt, sent, True, sent == completion))
            self.busy = False
            server.streams.discard(asyncio.current_task())
            if not self.closed:
                self._next()


class MockServer:
    def __init__(self, chunks: int, slow_gap: float):
        self.chunks = chunks
        self.slow_gap = slow_gap
        self.usage = Usage()
        self.ids = iter(range(1, 1 << 62))
        self.streams: set[asyncio.Task] = set()  # referenced until done

    def answer(self, request: dict) -> bytes:
        model = str(request.get("model", ""))
        prompt = prompt_tokens_of(request.get("messages"))
        completion = completion_tokens_of(request, self.chunks)
        self.usage.calls.append((model, prompt, completion, False, True))
        return json.dumps(
            {
                "id": f"chatcmpl-bench-{next(self.ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "tok " * completion},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        ).encode()


async def serve(host: str, port: int, chunks: int, slow_gap: float) -> None:
    server = MockServer(chunks, slow_gap)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: MockProtocol(server), host, port, backlog=4096)
    print(f"mock listening on {host}:{port}", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--slow-gap", type=float, default=0.2)
    args = parser.parse_args()
    from bench.loop import install

    install()
    asyncio.run(serve(args.host, args.port, args.chunks, args.slow_gap))


if __name__ == "__main__":
    main()
