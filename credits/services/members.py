"""Members: a user is created together with their credit account on a plan, whether by staff, the
command line or an integration whose unknown end user calls (auto-provisioning). Accounts knows
who someone is; opening their account on a plan is credits' part, so both meet here."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Integration, User
from accounts.selectors import user_find
from accounts.services import identity_parse, user_add, user_ensure_active, user_librechat_link
from credits.services.plans import subscription_start
from kernel.errors import UserIdentityMissing

logger = logging.getLogger(__name__)


@transaction.atomic
def user_create(
    *,
    email: str,
    name: str = "",
    password: str | None = None,
    language: str = User.Language.PT_BR,
    plan_slug: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    librechat_id: str | None = None,
) -> User:
    """Create a user and subscribe them to a plan (the default plan unless one is named)."""
    user = user_add(
        email=email,
        name=name,
        password=password,
        language=language,
        is_staff=is_staff,
        is_superuser=is_superuser,
        librechat_id=librechat_id,
    )
    subscription_start(user=user, plan_slug=plan_slug)
    return user


def identity_resolve(
    *, integration: Integration, email: str | None, librechat_id: str | None, body_user: str | None
) -> User:
    """The end user an integration call is made for (accounts.services.identity_parse reads who);
    an unknown one is created on the default plan when the integration may provision users."""
    email, librechat_id = identity_parse(
        email=email, librechat_id=librechat_id, body_user=body_user
    )
    user = user_find(email=email) if email else user_find(librechat_id=librechat_id)
    if user is None:
        if not integration.auto_provision or not email:
            raise UserIdentityMissing(_("Unknown user: this integration cannot create it."))
        user = _provision(email=email, librechat_id=librechat_id)
    else:
        user_librechat_link(user=user, librechat_id=librechat_id)
    user_ensure_active(user=user)
    return user


def _provision(*, email: str, librechat_id: str) -> User:
    # LibreChat often sends the title call and the first message at once: both may get here.
    try:
        user = user_create(email=email, librechat_id=librechat_id or None)
    except (IntegrityError, ValidationError):
        found = user_find(email=email)
        if found is None:
            raise
        return found
    logger.info("user auto-provisioned", extra={"user_id": user.pk})
    return user
