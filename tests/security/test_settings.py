"""Hardening settings, each read by a fresh interpreter as a server starts: a weak SECRET_KEY
refuses to start, X-Forwarded-Proto is believed only when said so, HSTS follows the public URL."""

import json

import pytest

from tests.solaris.test_settings import load_settings

pytestmark = pytest.mark.slow  # each case starts an interpreter

PRODUCTION = {"DATABASE_URL": "postgres://u:p@db.internal:5432/solaris"}
STRONG_KEY = "k7Qz-" + "x2Rv9LmW4tYp8NsJ3hBc6FdG1aKe5" * 2
PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "debug": settings.DEBUG,
}))
"""


def hardening(**env: str) -> dict:
    result = load_settings(**env, probe=PROBE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "key",
    [
        "a-real-random-secret",  # short
        "ab" * 30,  # long, but two characters
        "django-insecure-" + "q8Zr3Lm5Tx9Vc2Bn7Kp4Wd6Hs1Jf0Gy",  # Django's own placeholder
    ],
)
def test_a_weak_secret_key_refuses_to_start_without_debug(key):
    result = load_settings(**PRODUCTION, SECRET_KEY=key)
    assert result.returncode != 0
    assert (
        "SECRET_KEY is too weak for DEBUG off: use at least 50 random characters" in result.stderr
    )


def test_a_strong_secret_key_starts_and_debug_accepts_any():
    assert hardening(**PRODUCTION, SECRET_KEY=STRONG_KEY)["debug"] is False
    assert hardening(**PRODUCTION, SECRET_KEY="short", DEBUG="true")["debug"] is True


def test_x_forwarded_proto_is_believed_only_when_configured():
    assert hardening(**PRODUCTION, SECRET_KEY=STRONG_KEY)["proxy_ssl_header"] is None
    configured = hardening(**PRODUCTION, SECRET_KEY=STRONG_KEY, SOLARIS_PROXY_SSL_HEADER="true")
    assert configured["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_hsts_is_on_by_default_for_an_https_public_url():
    base = {**PRODUCTION, "SECRET_KEY": STRONG_KEY}
    assert hardening(**base)["hsts"] == 0
    assert hardening(**base, SOLARIS_PUBLIC_URL="https://solaris.example.com")["hsts"] == 31_536_000
    chosen = hardening(**base, SOLARIS_PUBLIC_URL="https://s.example", SECURE_HSTS_SECONDS="300")
    assert chosen["hsts"] == 300


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SOLARIS_TRUSTED_PROXIES", "10.0.0.0/8,nginx"),
        ("SOLARIS_METRICS_ALLOWED_IPS", "10.0.0.300"),
        ("SOLARIS_THROTTLE_SIGN_IN", "ten per minute"),
        ("SOLARIS_THROTTLE_EMAIL", "0/h"),
    ],
)
def test_a_bad_value_refuses_to_start_naming_its_setting(name, value):
    result = load_settings(**{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}: " in result.stderr
