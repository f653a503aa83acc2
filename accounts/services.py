import re
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import DomainNameValidator, validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import keys
from accounts.models import ApiKey, Integration, LoginLink, User
from kernel.errors import AccountSuspended, SolarisError, UserIdentityMissing
from kernel.local_cache import lookups_changed

# last_used_at is written at most this often, so the hot path rarely writes for it.
LAST_USED_RESOLUTION = timedelta(hours=1)
PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
IDENTITY_EMAIL_HEADER = "X-LibreChat-User-Email"
IDENTITY_ID_HEADER = "X-LibreChat-User-Id"
# The columns they are stored in (User.email, User.librechat_id).
EMAIL_MAX_LENGTH = 254
LIBRECHAT_ID_MAX_LENGTH = 64


@transaction.atomic
def user_add(
    *,
    email: str,
    name: str = "",
    password: str | None = None,
    language: str = User.Language.PT_BR,
    is_staff: bool = False,
    is_superuser: bool = False,
    librechat_id: str | None = None,
) -> User:
    """The user row alone, e-mail checked and unique. A user needs a credit account and a plan too:
    create users with credits.services.user_create, which calls this."""
    email = email.strip().lower()
    validate_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(_("A user with this e-mail already exists."), code="duplicate")
    return User.objects.create_user(
        email,
        password,
        name=name,
        language=language,
        is_staff=is_staff,
        is_superuser=is_superuser,
        librechat_id=librechat_id,
    )


def api_key_create(*, user: User, name: str = "default") -> tuple[ApiKey, str]:
    """Create a personal key; the plaintext is returned once and never stored."""
    raw = keys.generate(keys.PERSONAL_PREFIX)
    key = ApiKey.objects.create(
        user=user, name=name, prefix=keys.visible_prefix(raw), key_hash=keys.hash_key(raw)
    )
    return key, raw


def email_domains_clean(domains: list[str]) -> list[str]:
    """Domains as provisioning matches them: lower case, without a leading "@", each a valid
    domain name, each once. Raises ValidationError naming the first that is not."""
    cleaned: list[str] = []
    for raw in domains:
        domain = raw.strip().lower().removeprefix("@")
        if not domain:
            continue
        try:
            DomainNameValidator()(domain)
        except ValidationError:
            raise ValidationError(
                _("'%(domain)s' is not a domain name."), code="domain", params={"domain": raw}
            ) from None
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def integration_create(
    *,
    name: str,
    auto_provision: bool = True,
    provision_domains: list[str] | None = None,
    provision_plan: str = "",
    notices_in_band: bool = True,
) -> tuple[Integration, str]:
    """The integration row and its key (plaintext returned once). `provision_plan` is a plan slug
    the caller has checked (credits' create_integration command does)."""
    raw = keys.generate(keys.INTEGRATION_PREFIX)
    integration = Integration.objects.create(
        name=name,
        auto_provision=auto_provision,
        provision_domains=email_domains_clean(provision_domains or []),
        provision_plan=provision_plan,
        notices_in_band=notices_in_band,
        prefix=keys.visible_prefix(raw),
        key_hash=keys.hash_key(raw),
    )
    return integration, raw


def key_revoke(*, key: ApiKey | Integration) -> None:
    type(key).objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    lookups_changed()
    key.refresh_from_db(fields=["revoked_at"])


def key_touch(*, key: ApiKey | Integration) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION (one conditional UPDATE, no lock)."""
    now = timezone.now()
    if key.last_used_at and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    type(key).objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


def usable_identity(value: str | None) -> str:
    """The value, stripped, or "" when it is empty or still holds an unresolved {{…}} placeholder."""
    value = (value or "").strip()
    return "" if PLACEHOLDER.search(value) else value


def identity_bounded(value: str, *, param: str) -> str:
    """`value`, if it fits the column it is looked up in and holds no NUL; else a 400 naming it."""
    limit = EMAIL_MAX_LENGTH if param == IDENTITY_EMAIL_HEADER else LIBRECHAT_ID_MAX_LENGTH
    if len(value) > limit or "\x00" in value:
        raise SolarisError(
            _("'%(param)s' must be at most %(max)d characters, without NUL characters.")
            % {"param": param, "max": limit},
            status=400,
            code="invalid_request_error",
            param=param,
        )
    return value


def identity_parse(
    *, email: str | None, librechat_id: str | None, body_user: str | None
) -> tuple[str, str]:
    """The end user's (e-mail, LibreChat id) an integration call names, either possibly "".

    E-mail header first, then the LibreChat id header, then the body `user` (LibreChat's user id).
    Unusable values are ignored; if none is left the call is refused, never mapped to some user.
    """
    email = identity_bounded(usable_identity(email).lower(), param=IDENTITY_EMAIL_HEADER)
    librechat_id = identity_bounded(usable_identity(librechat_id), param=IDENTITY_ID_HEADER)
    if not librechat_id:
        librechat_id = identity_bounded(usable_identity(body_user), param="user")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise UserIdentityMissing(
                _("The user e-mail sent by the integration is not valid.")
            ) from None
    if not email and not librechat_id:
        raise UserIdentityMissing(
            _("This integration key needs the end user's identity (X-LibreChat-User-Email).")
        )
    return email, librechat_id


def user_librechat_link(*, user: User, librechat_id: str) -> None:
    """Remember the user's LibreChat id, unless they already have one."""
    if not librechat_id or user.librechat_id:
        return
    User.objects.filter(pk=user.pk, librechat_id__isnull=True).update(librechat_id=librechat_id)
    user.librechat_id = librechat_id


def user_ensure_active(*, user: User) -> None:
    if user.is_suspended or not user.is_active:
        raise AccountSuspended(_("This account is suspended. Contact your administrator."))


def user_suspend(*, user: User) -> bool:
    """Suspend the user (their calls are refused); returns False when they already were."""
    changed = User.objects.filter(pk=user.pk, is_suspended=False).update(is_suspended=True)
    lookups_changed()
    user.is_suspended = True
    return bool(changed)


def user_reactivate(*, user: User) -> bool:
    """Lift a suspension; returns False when the user was not suspended."""
    changed = User.objects.filter(pk=user.pk, is_suspended=True).update(is_suspended=False)
    lookups_changed()
    user.is_suspended = False
    return bool(changed)


def login_link_create(*, user: User, channel: str, ttl: timedelta) -> tuple[LoginLink, str]:
    """A single-use sign-in token; the plaintext is returned once and only its hash is stored."""
    raw = secrets.token_urlsafe(32)
    link = LoginLink.objects.create(
        user=user,
        channel=channel,
        token_hash=keys.hash_key(raw),
        expires_at=timezone.now() + ttl,
    )
    return link, raw


def login_link_consume(*, raw_token: str) -> User | None:
    """The link's user if the token is valid, unused and unexpired; it can never be used again.

    One conditional UPDATE marks it used, so two clicks racing each other sign in once.
    """
    now = timezone.now()
    link = (
        LoginLink.objects.select_related("user").filter(token_hash=keys.hash_key(raw_token)).first()
    )
    if link is None:
        return None
    claimed = LoginLink.objects.filter(pk=link.pk, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now
    )
    if not claimed or not link.user.is_active or link.user.is_suspended:
        return None
    return link.user
