import pytest
from django.core.cache import cache

from tests.portal.test_browser import (  # noqa: F401  (Chromium fixtures, shared with the portal's)
    browser,
    context,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counts and locks live in the cache: each test starts from none."""
    cache.clear()
    yield
    cache.clear()
