"""OpenAI-shaped errors: `{"error": {"message", "type", "code", "param"}}`, message in plain text.

Every error Solaris answers (proxy, APIs, authentication) goes through here, so LibreChat and the
OpenAI SDKs always get a shape they understand (docs/proxy.md, the error table).
"""

from typing import Any

from django.http import JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response


def error_body(message: str, *, code: str, type: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


class SolarisError(exceptions.APIException):
    """An error with an OpenAI-shaped body; raise it from DRF views or render it directly."""

    status_code = 400
    code = "invalid_request_error"
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status or self.status_code
        self.code = code or self.code
        self.type = type or self.type
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.message, code=self.code, type=self.type, param=self.param)

    def as_response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status_code)
        for name, value in self.headers.items():
            response[name] = value
        return response


class InvalidApiKey(SolarisError):
    status_code = 401
    code = "invalid_api_key"
    type = "invalid_request_error"


class UserIdentityMissing(SolarisError):
    status_code = 401
    code = "user_identity_missing"
    type = "invalid_request_error"


class AccountSuspended(SolarisError):
    status_code = 403
    code = "account_suspended"
    type = "permission_error"


def _flatten(detail: Any, prefix: str | None = None) -> list[tuple[str | None, str]]:
    if isinstance(detail, dict):
        pairs = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else key)
            pairs.extend(_flatten(value, name))
        return pairs
    if isinstance(detail, list):
        return [pair for item in detail for pair in _flatten(item, prefix)]
    return [(prefix, str(detail))]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler that answers every error in the OpenAI shape."""
    # Imported here: rest_framework.views loads the authentication classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, SolarisError):
        response.data = exc.body()
        for name, value in exc.headers.items():
            response[name] = value
        if exc.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="solaris"'
        return response
    if isinstance(exc, exceptions.ValidationError):
        pairs = _flatten(exc.detail)
        message = "; ".join(f"{name}: {text}" if name else text for name, text in pairs)
        param = next((name for name, _text in pairs if name), None)
        response.data = error_body(
            message, code="invalid_request_error", type="invalid_request_error", param=param
        )
        return response
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = 401
        response["WWW-Authenticate"] = 'Bearer realm="solaris"'
        response.data = error_body(
            _("Missing or invalid API key. Send it as 'Authorization: Bearer sol-…'."),
            code="invalid_api_key",
            type="invalid_request_error",
        )
        return response
    codes = {
        403: ("permission_denied", "permission_error"),
        404: ("not_found", "invalid_request_error"),
    }
    code, kind = codes.get(
        response.status_code, (getattr(exc, "default_code", "error"), "invalid_request_error")
    )
    detail = getattr(exc, "detail", str(exc))
    response.data = error_body(str(detail), code=str(code), type=kind)
    return response
