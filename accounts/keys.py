"""API key material: generation, hashing and the visible prefix. Plaintext is never stored.

Keys carry about 238 bits of randomness, so one SHA-256 is enough (a slow password hash would only
cost time on every proxied call, as PostHog's and GitHub's token schemes also conclude).
"""

import hashlib
import secrets
import string

PERSONAL_PREFIX = "sol-"
INTEGRATION_PREFIX = "sol-int-"
ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
VISIBLE_LENGTH = 6  # characters of the secret kept visible after the key's kind


def generate(kind_prefix: str) -> str:
    return kind_prefix + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def visible_prefix(raw: str) -> str:
    kind = INTEGRATION_PREFIX if raw.startswith(INTEGRATION_PREFIX) else PERSONAL_PREFIX
    return raw[: len(kind) + VISIBLE_LENGTH]


def is_integration_key(raw: str) -> bool:
    return raw.startswith(INTEGRATION_PREFIX)
