"""Settings switch by environment: each case imports them in a fresh interpreter."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each case starts an interpreter

PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "atomic": settings.DATABASES["default"]["ATOMIC_REQUESTS"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "email": settings.EMAIL_BACKEND,
    "email_host": settings.EMAIL_HOST if hasattr(settings, "EMAIL_HOST") else None,
    "debug": settings.DEBUG,
}))
"""
SOLARIS_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "SECRET_KEY",
    "DEBUG",
    "CELERY_BROKER_URL",
}


def load_settings(*, probe: str = PROBE, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SOLARIS_VARS}
    clean.update(env, DJANGO_SETTINGS_MODULE="solaris.settings")
    code = "import django; django.setup()\n" + probe
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_for(**env: str) -> dict:
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_environment_is_the_embedded_default():
    values = settings_for()
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["eager"] is True
    assert values["broker"] == "memory://"
    assert values["email"] == "django.core.mail.backends.console.EmailBackend"
    assert values["atomic"] is False
    assert values["debug"] is True


def test_database_and_redis_urls_switch_to_production_services():
    values = settings_for(
        DATABASE_URL="postgres://solaris:pw@db.internal:5432/solaris",
        REDIS_URL="redis://cache.internal:6379/1",
        EMAIL_URL="smtp://mailer.internal:1025",
        SECRET_KEY="a-real-random-secret-" + "0123456789abcdefghijklmnopqrstuvwxyz",
    )
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["db_name"] == "solaris"
    assert values["atomic"] is False
    assert values["cache"] == "django_redis.cache.RedisCache"
    assert values["broker"] == "redis://cache.internal:6379/1"
    assert values["eager"] is False
    assert values["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert values["email_host"] == "mailer.internal"
    assert values["debug"] is False


def test_placeholder_secret_key_is_refused_without_debug():
    result = load_settings(DATABASE_URL="postgres://u:p@h:5432/d")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_placeholder_secret_key_is_accepted_with_debug():
    values = settings_for(DATABASE_URL="postgres://u:p@h:5432/d", DEBUG="true")
    assert values["debug"] is True
