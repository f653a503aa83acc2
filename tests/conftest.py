import os
from pathlib import Path

import pytest
from django.db import connection

from accounts.services import api_key_create
from tests.chromium import CHROMIUM
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and os.environ.get("REDIS_URL"):
        raise pytest.UsageError(
            "The Redis tests share one Redis database (a cache clear empties it for every "
            "process): run them without -n, or unset REDIS_URL."
        )


def pytest_collection_modifyitems(config, items):
    """Tests that need a real service are skipped (with the reason) where it is not configured."""
    skips = {
        "postgres": (
            not os.environ.get("DATABASE_URL", "").startswith("postgres"),
            "needs PostgreSQL: set DATABASE_URL (the CI's second run does)",
        ),
        "redis": (not os.environ.get("REDIS_URL"), "needs Redis: set REDIS_URL"),
        "litellm": (
            not (ROOT / ".litellm-venv" / "bin" / "litellm").exists(),
            "needs the LiteLLM venv: bash scripts/litellm.sh",
        ),
        "browser": (not CHROMIUM.exists(), "needs Chromium: apt-get install chromium"),
    }
    for item in items:
        for marker, (skip, reason) in skips.items():
            if skip and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """The proxy tests serve Solaris from a server thread: on SQLite the test database must be a
    file all threads open, not a per-connection :memory: one."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(path)


@pytest.fixture(autouse=True, scope="session")
def _fast_passwords():
    """Every factory user has a password: production's deliberately slow hash would dominate the
    suite's time, and no test is about the hash itself."""
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _lookup_caches_empty():
    """Rows vanish between tests without signals (flush, rollback): no cached key or plan survives."""
    from kernel.local_cache import lookups_changed

    lookups_changed()
    yield
    lookups_changed()


@pytest.fixture(autouse=True)
def _metrics_readable_from_loopback(settings):
    """Tests read /metrics from this host as a Prometheus on the loopback would: through the
    allow-list production can configure (tests/monitoring/test_access.py tests the rule itself)."""
    settings.SOLARIS_METRICS_ALLOWED_IPS = ["127.0.0.1"]


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def plan(db):
    return PlanFactory(slug="basico", monthly_allowance=100_000, is_default=True)


@pytest.fixture
def price(db):
    return ModelPriceFactory(model="gpt-test", input_weight="1.5", output_weight="3")


@pytest.fixture
def user(plan):
    return UserFactory(email="ana@example.com", name="Ana")


@pytest.fixture
def user_key(user):
    _key, raw = api_key_create(user=user, name="test")
    return raw
