"""proxy.django_shim does what Django does: each imitation is run next to Django's own request
object (ASGIRequest, as Django's ASGI handler builds it) and middleware on the same input."""

import io

import pytest
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

from kernel.middleware import RequestIdMiddleware
from proxy import django_shim

PATH = "/v1/chat/completions"


def both(headers: list[tuple[bytes, bytes]]) -> tuple[django_shim.EdgeRequest, ASGIRequest]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    return django_shim.EdgeRequest(scope, b"{}"), ASGIRequest(scope, io.BytesIO(b"{}"))


RAW_HEADERS = [
    (b"Authorization", b"Bearer sol-abc"),
    (b"X-LibreChat-User-Email", b"Ana@Example.com"),
    (b"x-librechat-user-email", b"second@example.com"),
    (b"X-Request-ID", b"req-1"),
    (b"content-length", b"2"),
    (b"content-type", b"application/json"),
    (b"x_librechat_user_id", b"spoofed"),  # underscores: Django drops it, the lane never reads it
    (b"Accept-Language", b"en-US,en;q=0.9"),
]


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Authorization",
        "X-LibreChat-User-Email",
        "x-librechat-user-email",
        "X-LibreChat-User-Id",
        "X-Request-ID",
        "Content-Length",
        "content-type",
        "accept-language",
        "X-Missing",
    ],
)
def test_headers_read_as_django_reads_them(name):
    edge, django = both(RAW_HEADERS)
    assert edge.headers.get(name) == django.headers.get(name)


HOSTS = [
    "testserver",
    "solaris.example",
    "solaris.example:443",
    "SOLARIS.example",
    "api.solaris.example",
    "evil.example",
    "solaris.example.evil.example",
    "localhost",
    "app.localhost:8000",
    "127.0.0.1:8000",
    "[::1]:8000",
    "bad host",
    "solaris.example@evil.example",
    "solaris.example:port",
]


@pytest.mark.parametrize(
    ("debug", "allowed_hosts"),
    [
        (False, ["solaris.example"]),
        (False, [".solaris.example", "testserver"]),
        (False, ["*"]),
        (False, []),
        (True, []),
    ],
)
def test_host_checked_as_get_host_checks_it(settings, debug, allowed_hosts):
    settings.DEBUG, settings.ALLOWED_HOSTS = debug, allowed_hosts
    for host in HOSTS:
        edge, django = both([(b"host", host.encode())])
        try:
            django.get_host()
            django_allows = True
        except DisallowedHost:
            django_allows = False
        assert django_shim.host_allowed(edge) is django_allows, host


@pytest.mark.parametrize(
    "accept_language",
    [
        "",
        "en",
        "EN",
        "en-US,en;q=0.9",
        "pt-BR",
        "pt",
        "pt-PT,en;q=0.5",
        "fr",
        "fr;q=0.9, en;q=0.5",
        "de-DE,pt;q=0.1",
        "*",
        "en;q=0, pt-br;q=0.1",
        "garbage;;;q=x",
    ],
)
def test_language_is_the_one_locale_middleware_activates(accept_language):
    edge, django = both([(b"accept-language", accept_language.encode())])
    middleware = LocaleMiddleware(lambda request: HttpResponse(translation.get_language()))
    with translation.override(None):
        activated = middleware(django).content.decode()
    assert django_shim.language_of(edge) == activated


@pytest.mark.parametrize(
    "incoming",
    ["abc-1", "call:42.retry_2", "a" * 128, "a" * 129, "has space", "", "ação", "x\ty"],
)
def test_request_id_kept_or_replaced_as_the_middleware_does(incoming):
    edge, django = both([(b"x-request-id", incoming.encode("latin-1", "replace"))])
    answered = RequestIdMiddleware(lambda request: HttpResponse())(django)["X-Request-ID"]
    assert (edge.request_id == incoming) is (answered == incoming)
    if answered != incoming:
        assert len(edge.request_id) == len(answered) == 32  # a fresh uuid4 hex, as Django's
