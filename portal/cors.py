"""CORS for the widget's two endpoints only, and only for SOLARIS_WIDGET_ALLOWED_ORIGINS."""

from django.conf import settings
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers

ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"


def allowed_origin(request) -> str:
    origin = request.headers.get("Origin", "")
    return origin if origin and origin in settings.SOLARIS_WIDGET_ALLOWED_ORIGINS else ""


class WidgetCorsMixin:
    """Answers preflights itself (before authentication) and marks allowed origins' responses.

    Cookies are never allowed cross-origin: other sites identify the user by bearer token only.
    """

    cors_methods = "GET, OPTIONS"

    def dispatch(self, request, *args, **kwargs):
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            origin = allowed_origin(request)
            if origin:
                response["Access-Control-Allow-Methods"] = self.cors_methods
                response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        else:
            response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        origin = allowed_origin(request)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
        patch_vary_headers(response, ["Origin"])
        return response
