"""Counters kept in the shared cache (Redis in production) for events that happen where Prometheus
does not look: a Celery task, a web process on its way out. Every web process reads the same totals
when it is scraped (monitoring.collector), and they survive the restart of any process.
"""

from django.core.cache import cache

KEY = "counter:{name}"

HOLDS_REAPED = "holds_reaped"
SHUTDOWN_UNSETTLED = "shutdown_unsettled"
NAMES = (HOLDS_REAPED, SHUTDOWN_UNSETTLED)


def shared_counter_add(*, name: str, amount: int = 1) -> None:
    key = KEY.format(name=name)
    try:
        cache.incr(key, amount)
    except ValueError:
        # First event ever (add() loses to a concurrent first event: incr then).
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)


def shared_counters_get() -> dict[str, int]:
    found = cache.get_many([KEY.format(name=name) for name in NAMES])
    return {name: int(found.get(KEY.format(name=name), 0)) for name in NAMES}
