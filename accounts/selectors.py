from accounts import keys
from accounts.models import ApiKey, Integration, User


def key_find(*, raw_key: str) -> ApiKey | Integration | None:
    """The active key (personal or integration) whose hash matches, with its user loaded."""
    if not raw_key.startswith(keys.PERSONAL_PREFIX):
        return None
    digest = keys.hash_key(raw_key)
    if keys.is_integration_key(raw_key):
        return Integration.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
    return (
        ApiKey.objects.select_related("user")
        .filter(key_hash=digest, revoked_at__isnull=True)
        .first()
    )


def user_find(*, email: str = "", librechat_id: str = "") -> User | None:
    if email:
        return User.objects.filter(email__iexact=email).first()
    if librechat_id:
        return User.objects.filter(librechat_id=librechat_id).first()
    return None
