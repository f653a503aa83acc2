"""The proxy's own ASGI lane (proxy.edge): what it shares with Django's handler, what it skips, and
the shutdown that waits for settlements. Driven as raw ASGI, and over real HTTP where it matters."""

import asyncio
import json

import httpx
import pytest

from proxy import django_shim, edge, runtime
from solaris.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def asgi_call(scope_extra: dict, body: bytes = b"", *, chunk: int = 0) -> tuple[dict, bytes]:
    """One HTTP request through solaris.asgi.application; returns (start message, body)."""
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    inbox = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]
    sent: list[dict] = []

    async def receive():
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "query_string": b"", **scope_extra}
    if not any(name == b"host" for name, _value in scope.get("headers", [])):
        scope["headers"] = [(b"host", b"testserver"), *scope.get("headers", [])]
    asyncio.run(application(scope, receive, send))
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:])


def test_headers_are_case_insensitive_and_repeated_ones_joined():
    headers = django_shim.Headers(
        [(b"X-Thing", b"a"), (b"x-thing", b"b"), (b"Authorization", b"Bearer k")]
    )
    assert headers.get("x-THING") == "a,b"
    assert headers.get("authorization") == "Bearer k"
    assert headers.get("missing", "") == ""


def test_unknown_key_gets_openai_401_with_request_id():
    start, body = asgi_call(
        {
            "path": "/v1/chat/completions",
            "headers": [(b"authorization", b"Bearer sol-nope"), (b"x-request-id", b"edge-1")],
        },
        json.dumps({"model": "m", "messages": []}).encode(),
        chunk=7,  # the body arrives in several messages
    )
    headers = dict(start["headers"])
    assert start["status"] == 401
    assert headers[b"X-Request-ID"] == b"edge-1"
    assert int(headers[b"content-length"]) == len(body)
    assert json.loads(body)["error"]["code"] == "invalid_api_key"


def test_errors_before_the_caller_is_known_follow_accept_language():
    scope = {"path": "/v1/chat/completions", "headers": [(b"authorization", b"Bearer sol-nope")]}
    _start, default = asgi_call(scope, b"{}")
    english = {**scope, "headers": [*scope["headers"], (b"accept-language", b"en-US,en;q=0.9")]}
    _start, translated = asgi_call(english, b"{}")
    assert json.loads(default)["error"]["message"].startswith("Chave de API ausente")
    assert json.loads(translated)["error"]["message"].startswith("Missing or invalid API key")


def test_host_outside_allowed_hosts_is_refused(settings):
    settings.ALLOWED_HOSTS = ["solaris.example"]
    path = {"path": "/v1/models", "method": "GET"}
    start, body = asgi_call({**path, "headers": [(b"host", b"evil.example")]})
    assert start["status"] == 400
    assert json.loads(body)["error"]["code"] == "invalid_host"
    start, _body = asgi_call({**path, "headers": [(b"host", b"solaris.example:443")]})
    assert start["status"] == 401  # past the host check: no key


def test_body_over_the_limit_is_413(settings):
    settings.SOLARIS_MAX_BODY_BYTES = 100
    start, body = asgi_call({"path": "/v1/chat/completions"}, b"x" * 10_000, chunk=64)
    assert start["status"] == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_unexpected_error_is_a_500_in_the_openai_shape(monkeypatch):
    async def broken(request):
        raise RuntimeError("boom")

    monkeypatch.setitem(edge.ROUTES, "/v1/models", broken)
    start, body = asgi_call({"path": "/v1/models", "method": "GET"})
    assert start["status"] == 500
    assert json.loads(body)["error"] == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "code": "internal_error",
        "param": None,
    }


def test_other_paths_are_django(solaris):
    # Django's middleware still runs for them: the security headers are its.
    response = httpx.get(f"{solaris.url}/healthz", headers={"X-Request-ID": "edge-2"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "edge-2"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    proxied = httpx.get(f"{solaris.url}/v1/models")
    assert proxied.status_code == 401
    assert "X-Content-Type-Options" not in proxied.headers


def test_shutdown_waits_for_running_settlements(settings):
    settings.SOLARIS_SHUTDOWN_SETTLE_SECONDS = 5
    finished = []

    async def settlement():
        await asyncio.sleep(0.2)
        finished.append(True)

    async def scenario():
        task = asyncio.ensure_future(settlement())
        runtime.settlement_track(task)
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message["type"])

        await application({"type": "lifespan"}, receive, send)
        return sent

    sent = asyncio.run(scenario())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert finished == [True]


def test_shutdown_gives_up_after_its_timeout():
    async def scenario():
        task = asyncio.ensure_future(asyncio.sleep(10))
        runtime.settlements.add(task)
        try:
            return await runtime.settlements_finish(0.05)
        finally:
            task.cancel()
            runtime.settlements.discard(task)

    assert asyncio.run(scenario()) == 1
