"""DRF authentication by Solaris API key. It sits in credits, above accounts, because an integration
key may create its end user, and a new user is opened an account on a plan (credits.services)."""

from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication

from accounts.authentication import bearer_token
from accounts.models import Integration
from accounts.selectors import key_find
from accounts.services import (
    IDENTITY_EMAIL_HEADER,
    IDENTITY_ID_HEADER,
    key_touch,
    user_ensure_active,
)
from credits.services.members import identity_resolve
from kernel.errors import InvalidApiKey


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
