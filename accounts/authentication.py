from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.librechat import librechat_user_from_token
from accounts.models import Integration
from accounts.selectors import key_find
from accounts.services import (
    IDENTITY_EMAIL_HEADER,
    IDENTITY_ID_HEADER,
    identity_resolve,
    key_touch,
    user_ensure_active,
)
from solaris.errors import InvalidApiKey


def bearer_token(request) -> str:
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return ""
    return parts[1].decode("latin-1")


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer sol-…` (personal) or `sol-int-…` plus the LibreChat identity headers.

    Anything that is not a Solaris key is left to the next authentication class; a Solaris key that
    does not match an active key is refused with 401 `invalid_api_key`.
    """

    def authenticate(self, request):
        raw = bearer_token(request)
        if not raw.startswith("sol-"):
            return None
        key = key_find(raw_key=raw)
        if key is None:
            raise InvalidApiKey(_("Invalid or revoked API key."))
        if isinstance(key, Integration):
            user = identity_resolve(
                integration=key,
                email=request.headers.get(IDENTITY_EMAIL_HEADER),
                librechat_id=request.headers.get(IDENTITY_ID_HEADER),
                body_user=None,
            )
        else:
            user = key.user
            user_ensure_active(user=user)
        key_touch(key=key)
        return user, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="solaris"'


class LibreChatJWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <LibreChat access token>` (HS256 JWT signed with its JWT_SECRET).

    Solaris keys are left to ApiKeyAuthentication; a bearer token that is neither is refused (401).
    """

    def authenticate(self, request):
        raw = bearer_token(request)
        if not raw or raw.startswith("sol-"):
            return None
        return librechat_user_from_token(token=raw), None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="solaris"'
