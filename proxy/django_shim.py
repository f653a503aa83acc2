"""The parts of Django's request handling the proxy lane (proxy.edge) imitates, in one place:
case-insensitive headers, the Host check of `HttpRequest.get_host()`, the language LocaleMiddleware
picks from Accept-Language, and the X-Request-ID of kernel.middleware. tests/proxy/test_shim.py
holds each one to what Django's own request objects do on the same input."""

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import translation

from kernel.middleware import request_id_for

Scope = dict


class Headers:
    """Case-insensitive request headers, as `request.headers.get(name)` reads them in Django
    (repeated headers joined with a comma, as Django's ASGI handler joins them)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]):
        self._values: dict[str, str] = {}
        for name, value in raw:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            self._values[key] = f"{self._values[key]},{text}" if key in self._values else text

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)


class EdgeRequest:
    """What the proxy views read from a request, and nothing else."""

    def __init__(self, scope: Scope, body: bytes):
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = Headers(scope["headers"])
        self._body = body
        self.request_id = request_id_for(self)
        # What translation.get_language_from_request reads, as LocaleMiddleware would.
        self.COOKIES: dict[str, str] = {}
        self.META = {"HTTP_ACCEPT_LANGUAGE": self.headers.get("accept-language", "")}

    def read(self, size: int = -1) -> bytes:
        return self._body if size < 0 else self._body[:size]


def host_allowed(request: EdgeRequest) -> bool:
    """settings.ALLOWED_HOSTS, checked as Django's request.get_host() checks it."""
    domain, _port = split_domain_port(request.headers.get("host") or "")
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def language_of(request: EdgeRequest) -> str:
    """The language LocaleMiddleware would activate for this request (no language in the path)."""
    return translation.get_language_from_request(request)  # type: ignore[arg-type]
