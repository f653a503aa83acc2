import re
import uuid

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

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
