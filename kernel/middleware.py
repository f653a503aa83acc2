import re
import uuid

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin

from kernel.request_context import request_id_var

HEADER = "X-Request-ID"
# A caller's id is kept only if it is short and plain, so it is safe in logs and headers.
VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(request) -> str:
    incoming = request.headers.get(HEADER, "")
    return incoming if VALID_ID.match(incoming) else uuid.uuid4().hex


@sync_and_async_middleware
def RequestIdMiddleware(get_response):
    """Give every request an id (the caller's X-Request-ID if usable), log it, echo it back."""

    if iscoroutinefunction(get_response):

        async def middleware(request):
            request.request_id = request_id_for(request)
            token = request_id_var.set(request.request_id)
            try:
                response = await get_response(request)
            finally:
                request_id_var.reset(token)
            response[HEADER] = request.request_id
            return response

    else:

        def middleware(request):  # type: ignore[misc]
            request.request_id = request_id_for(request)
            token = request_id_var.set(request.request_id)
            try:
                response = get_response(request)
            finally:
                request_id_var.reset(token)
            response[HEADER] = request.request_id
            return response

    return middleware


# The end-user pages load only their own scripts, styles and images (and data: images, the PIX QR
# code), are never framed, and post only to Solaris.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
# Django's admin and the Swagger UI bring inline code of their own.
CSP_EXEMPT_PREFIXES = ("/admin/", "/api/schema/")


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Content-Security-Policy on every HTML page but the admin's and the API docs'."""

    def process_response(self, request, response):
        # DEBUG's technical 404 and 500 pages style themselves inline.
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if (
            response.get("Content-Type", "").startswith("text/html")
            and not request.path.startswith(CSP_EXEMPT_PREFIXES)
            and not debug_page
            and "Content-Security-Policy" not in response
        ):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
