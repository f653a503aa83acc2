"""LibreChat's own access token (docs/widget.md): an HS256 JWT signed with its JWT_SECRET.

Its payload carries the LibreChat user `id` and `email`; Solaris accepts it on the balance API and
the widget's sign-in link so a LibreChat user never signs in twice. Users are never created here.
"""

import jwt
from django.conf import settings
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.selectors import user_find
from accounts.services import (
    EMAIL_MAX_LENGTH,
    LIBRECHAT_ID_MAX_LENGTH,
    usable_identity,
    user_ensure_active,
    user_librechat_link,
)
from kernel.errors import InvalidApiKey


def librechat_user_from_token(*, token: str) -> User:
    """The Solaris user of a valid LibreChat token: by librechat_id, then by e-mail; else 401.

    A token whose id names another LibreChat user than the one its e-mail's Solaris user is linked
    to is refused (401): the e-mail alone never opens an account linked to someone else."""
    secret = settings.LIBRECHAT_JWT_SECRET
    if not secret:
        raise InvalidApiKey(_("LibreChat sign-in is not configured on this server."))
    try:
        payload = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp"]}, leeway=5
        )
    except jwt.ExpiredSignatureError:
        raise InvalidApiKey(_("Your LibreChat session has expired. Reload LibreChat.")) from None
    except jwt.InvalidTokenError:
        raise InvalidApiKey(_("Invalid LibreChat session token.")) from None
    librechat_id = usable_identity(str(payload.get("id") or ""))
    email = usable_identity(str(payload.get("email") or "")).lower()
    # Signed, but still input: what no user row can hold names no user.
    if (
        len(librechat_id) > LIBRECHAT_ID_MAX_LENGTH
        or len(email) > EMAIL_MAX_LENGTH
        or "\x00" in librechat_id + email
    ):
        raise InvalidApiKey(_("Invalid LibreChat session token."))
    user = user_find(librechat_id=librechat_id) if librechat_id else None
    if user is None and email:
        user = user_find(email=email)
        # The e-mail's user is another LibreChat user than the token's: not the bearer's account.
        if user is not None and librechat_id and user.librechat_id not in (None, "", librechat_id):
            raise InvalidApiKey(
                _("This LibreChat token's user id and e-mail belong to different accounts.")
            )
        if user is not None:
            user_librechat_link(user=user, librechat_id=librechat_id)
    if user is None:
        raise InvalidApiKey(_("This LibreChat user is not known to Solaris yet."))
    user_ensure_active(user=user)
    return user
