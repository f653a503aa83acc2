from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.librechat import librechat_user_from_token


def bearer_token(request) -> str:
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return ""
    return parts[1].decode("latin-1")


class LibreChatJWTAuthentication(BaseAuthentication):
    """`Authorization: Bearer <LibreChat access token>` (HS256 JWT signed with its JWT_SECRET).

    Solaris keys are left to credits.authentication.ApiKeyAuthentication; a bearer token that is
    neither is refused (401).
    """

    def authenticate(self, request):
        raw = bearer_token(request)
        if not raw or raw.startswith("sol-"):
            return None
        return librechat_user_from_token(token=raw), None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="solaris"'
