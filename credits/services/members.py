"""Members: a user is created together with their credit account on a plan, whether by staff, the
command line or an integration whose unknown end user calls (auto-provisioning). Accounts knows
who someone is; opening their account on a plan is credits' part, so both meet here.

Auto-provisioning follows the integration's policy (docs/librechat.md): only when it provisions at
all, only addresses of the e-mail domains it lists (when it lists any), never an address with a
quoted local part, and on the plan it names (else the default plan), so an open LibreChat
registration cannot mint a paid plan's allowance for any address.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Integration, User
from accounts.selectors import user_find
from accounts.services import identity_parse, user_add, user_librechat_link
from credits.models import Plan
from credits.services.plans import new_member_plan, subscription_start
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


def provisioning_plan(*, integration: Integration) -> Plan | None:
    """The plan an integration's new users get: the one it names, else the default plan.

    A named plan that no longer exists (its slug changed in admin) provisions nobody: the
    administrators meant a given plan, not whichever is the default."""
    try:
        return new_member_plan(plan_slug=integration.provision_plan or None)
    except ValidationError:
        logger.error(
            "integration names an unknown plan: nobody is provisioned",
            extra={"integration_id": integration.pk, "plan": integration.provision_plan},
        )
        raise UserIdentityMissing(_("Unknown user: this integration cannot create it.")) from None


def _provisioning_check(*, integration: Integration, email: str) -> None:
    """Refuse (UserIdentityMissing) an unknown user the integration's policy does not create."""
    if not integration.auto_provision or not email:
        raise UserIdentityMissing(_("Unknown user: this integration cannot create it."))
    local, _at, domain = email.rpartition("@")
    # Django's validator accepts "quoted@local"@host parts: a second "@" has no business here.
    if '"' in local:
        raise UserIdentityMissing(
            _("Unknown user: an address with a quoted local part is not created.")
        )
    if integration.provision_domains and domain not in integration.provision_domains:
        raise UserIdentityMissing(
            _("Unknown user: this integration only creates users of its own e-mail domains.")
        )


def identity_preview(
    *, integration: Integration, email: str | None, librechat_id: str | None
) -> tuple[User | None, Plan | None]:
    """Who an integration call is for, creating nobody: (the user, None) when they exist, else
    (None, the plan they would be created on). Refuses as identity_resolve would."""
    email, librechat_id = identity_parse(email=email, librechat_id=librechat_id, body_user=None)
    user = user_find(email=email) if email else user_find(librechat_id=librechat_id)
    if user is not None:
        return user, None
    _provisioning_check(integration=integration, email=email)
    return None, provisioning_plan(integration=integration)


def identity_resolve(
    *, integration: Integration, email: str | None, librechat_id: str | None, body_user: str | None
) -> User:
    """The end user an integration call is made for (accounts.services.identity_parse reads who);
    an unknown one is created when the integration's policy allows it. Whether the user may call
    (suspension) is the caller's to check: a refusal then knows whom it refused."""
    email, librechat_id = identity_parse(
        email=email, librechat_id=librechat_id, body_user=body_user
    )
    user = user_find(email=email) if email else user_find(librechat_id=librechat_id)
    if user is None:
        _provisioning_check(integration=integration, email=email)
        plan = provisioning_plan(integration=integration)
        user = _provision(email=email, librechat_id=librechat_id, plan=plan)
    else:
        user_librechat_link(user=user, librechat_id=librechat_id)
    return user


def _provision(*, email: str, librechat_id: str, plan: Plan | None) -> User:
    # LibreChat often sends the title call and the first message at once: both may get here.
    try:
        user = user_create(
            email=email, librechat_id=librechat_id or None, plan_slug=plan.slug if plan else None
        )
    except (IntegrityError, ValidationError):
        found = user_find(email=email)
        if found is None:
            raise
        return found
    logger.info(
        "user auto-provisioned",
        extra={"user_id": user.pk, "plan": plan.slug if plan else None},
    )
    return user
