"""Per-process caches of what rarely changes (key → user, plan, model price), with a short TTL.

Every cache is emptied at once in this process when one of the rows behind it is saved, deleted or
updated by a service (`lookups_changed`); other processes see the change within the TTL
(SOLARIS_LOOKUP_CACHE_SECONDS, 5 s by default), which bounds how long a revoked key, a suspension
or a price or plan edit can lag there.
"""

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

T = TypeVar("T")
MAX_ENTRIES = 10_000

_caches: list["TtlCache"] = []


class TtlCache(Generic[T]):
    def __init__(self, name: str):
        self.name = name
        self._items: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value, else `load()`; a None (not found) is never cached."""
        ttl = settings.SOLARIS_LOOKUP_CACHE_SECONDS
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None and ttl > 0:
            with self._lock:
                if len(self._items) >= MAX_ENTRIES:
                    self._items.clear()  # many distinct keys: start over rather than grow
                self._items[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def lookups_changed(**_kwargs) -> None:
    """Empty every cache of this process (also usable as a signal receiver)."""
    for cache in _caches:
        cache.clear()
