import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counts and locks live in the cache: each test starts from none."""
    cache.clear()
    yield
    cache.clear()
