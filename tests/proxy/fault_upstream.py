"""A small OpenAI-shaped upstream that misbehaves on purpose, chosen by the request's model name.

Raw asyncio streams (not a framework) so it can do what a real server would not: hang, close the
connection halfway through a chunked answer, wait before the headers. It honours `max_tokens` and
reports usage like OpenAI (final chunk with `choices: []`), so charges are predictable:
prompt_tokens = PROMPT_TOKENS, completion_tokens = number of words sent.
"""

import asyncio
import json
import threading
import time

PROMPT_TOKENS = 10
WORD = "palavra "
MODELS = [
    "fault-ok",
    "fault-error-before",
    "fault-error-event",
    "fault-cut",
    "fault-slow-first-byte",
    "fault-hang",
    "fault-no-usage",
    "fault-big",
    "fault-slow-stream",
    "fault-auth",
    "fault-budget",
    "fault-context",
    "fault-overrun",
    "fault-bad-json",
    "fault-error-first",
    "fault-stall-body",
    "fault-switch",
    "fault-fallback-header",
]
# fault-switch's chunks name this model from the third on (a stream LiteLLM continued elsewhere);
# fault-fallback-header's answer carries LiteLLM's fallback headers naming it.
FALLBACK_MODEL = "fault-elsewhere"


class FaultUpstream:
    def __init__(self):
        self.requests: list[dict] = []
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server = None
        self.open_streams = 0
        self.closed_early = 0  # streams whose client (Solaris) went away before the end

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultUpstream":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _sep, value in (line.partition(":") for line in lines[1:] if line)
            }
            length = int(headers.get("content-length", 0))
            body = json.loads(await reader.readexactly(length)) if length else {}
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
            if path == "/v1/models":
                await self._json(
                    writer, 200, {"object": "list", "data": [{"id": m} for m in MODELS]}
                )
            elif path == "/v1/chat/completions":
                await self._chat(writer, body)
            else:
                await self._json(writer, 404, {"error": {"message": "not found"}})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _json(self, writer, status: int, document: dict, extra_headers: str = "") -> None:
        raw = json.dumps(document).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra_headers}"
            f"content-length: {len(raw)}\r\nconnection: close\r\n\r\n".encode()
            + raw
        )
        await writer.drain()

    async def _chat(self, writer, body: dict) -> None:
        model = body.get("model")
        words = min(body.get("max_tokens") or body.get("max_completion_tokens") or 16, 40)
        if model == "fault-overrun":
            words = (body.get("max_tokens") or 16) + 5  # ignores max_tokens
        if model == "fault-error-before":
            return await self._json(
                writer,
                500,
                {"error": {"message": "boom", "type": "internal_server_error", "code": "500"}},
            )
        if model == "fault-auth":
            return await self._json(
                writer,
                400,
                {
                    "error": {
                        "message": "No connected db.",
                        "type": "no_db_connection",
                        "code": "400",
                    }
                },
            )
        if model == "fault-budget":
            return await self._json(
                writer,
                400,
                {
                    "error": {
                        "message": "Budget has been exceeded! Current cost: 5",
                        "type": "budget_exceeded",
                        "code": "400",
                    }
                },
            )
        if model == "fault-context":
            return await self._json(
                writer,
                400,
                {
                    "error": {
                        "message": "This model's maximum context length is 8 tokens. {'raw': 1}",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                        "param": "messages",
                    }
                },
            )
        if model == "fault-slow-first-byte":
            await asyncio.sleep(5)
        if model == "fault-bad-json":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!"
            )
            return await writer.drain()
        if model == "fault-stall-body":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{")
            await writer.drain()
            return await asyncio.sleep(3600)
        text = WORD * words
        fallback_headers = ""
        if model == "fault-fallback-header":
            # What LiteLLM 1.106.2 sends when one of its configured fallbacks answered.
            fallback_headers = (
                f"x-litellm-model-group: {FALLBACK_MODEL}\r\nx-litellm-attempted-fallbacks: 1\r\n"
            )
        if not body.get("stream"):
            return await self._json(
                writer,
                200,
                {
                    "id": "chatcmpl-fault",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": PROMPT_TOKENS,
                        "completion_tokens": words,
                        "total_tokens": PROMPT_TOKENS + words,
                    },
                },
                fallback_headers,
            )
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + fallback_headers.encode()
            + b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        self.open_streams += 1
        try:
            await self._stream(writer, model, body, words)
        except ConnectionError:
            self.closed_early += 1
        finally:
            self.open_streams -= 1

    async def _send(self, writer, raw: bytes) -> None:
        writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        await writer.drain()

    def _chunk(self, model: str, delta: dict, finish=None, **extra) -> bytes:
        document = {
            "id": "chatcmpl-fault",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + json.dumps(document).encode() + b"\n\n"

    async def _stream(self, writer, model: str, body: dict, words: int) -> None:
        size = len(WORD)
        if model == "fault-big":
            words = 3
            size = 300_000
        if model == "fault-error-first":
            await self._send(writer, b'data: {"error": {"message": "overloaded"}}\n\n')
            return await self._send(writer, b"")
        for index in range(words):
            # slow-stream sends 1-byte pieces so a cut-short stream's byte bound stays below the cap
            piece = {"fault-big": "x" * size, "fault-slow-stream": "x"}.get(model, WORD)
            named = FALLBACK_MODEL if model == "fault-switch" and index >= 2 else model
            await self._send(writer, self._chunk(named, {"content": piece}))
            if model == "fault-slow-stream":
                await asyncio.sleep(0.05)
            if index == 1 and model == "fault-cut":
                writer.transport.abort()  # connection dies mid-answer, no terminating chunk
                return
            if index == 1 and model == "fault-error-event":
                await self._send(
                    writer,
                    b'data: {"error": {"message": "provider exploded {json}", "code": "500"}}\n\n',
                )
                await self._send(writer, b"")
                return
            if index == 1 and model == "fault-hang":
                await asyncio.sleep(3600)
        await self._send(writer, self._chunk(model, {}, "stop"))
        if model != "fault-no-usage" and (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": words,
                "total_tokens": PROMPT_TOKENS + words,
            }
            document = {
                "id": "chatcmpl-fault",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await self._send(writer, b"data: " + json.dumps(document).encode() + b"\n\n")
        await self._send(writer, b"data: [DONE]\n\n")
        await self._send(writer, b"")

    def last_body(self) -> dict:
        return next(
            r["body"] for r in reversed(self.requests) if r["path"] == "/v1/chat/completions"
        )


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
