"""The lane's state for the life of a process: the threads that run the ORM for the proxy views
(each with its persistent database connection) and the settlements still running, which shutdown
waits for (proxy.edge's lifespan)."""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from proxy import metrics

logger = logging.getLogger(__name__)

# A DB-thread connection used this recently skips CONN_HEALTH_CHECKS' `SELECT 1` (a round trip per
# hop); one idle longer, which the server or the network may have dropped meanwhile, is checked.
HEALTH_CHECK_IDLE_SECONDS = 10.0

# Bounded threads for the ORM: few, reused, each with its persistent database connection.
db_threads = ThreadPoolExecutor(
    max_workers=settings.SOLARIS_PROXY_DB_THREADS, thread_name_prefix="proxy-db"
)
# Settlement tasks, referenced until done so they survive the request that started them.
settlements: set[asyncio.Task] = set()


def _settlement_done(task: asyncio.Task) -> None:
    settlements.discard(task)
    metrics.SETTLEMENTS.dec()
    if not task.cancelled() and task.exception() is not None:
        # The hold stays open; credits.tasks.reap_holds releases it later.
        logger.error("call settlement failed", exc_info=task.exception())


def settlement_track(task: asyncio.Task) -> None:
    """Keep a settlement until it is done; a failed one is logged (the reaper frees its hold)."""
    settlements.add(task)
    metrics.SETTLEMENTS.inc()
    task.add_done_callback(_settlement_done)


async def settlements_finish(timeout: float) -> int:
    """Wait up to `timeout` seconds for the settlements still running; returns how many are left."""
    if settlements:
        await asyncio.wait(set(settlements), timeout=timeout)
    return len(settlements)


def _connections_check_idle() -> None:
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        used_at = getattr(connection, "solaris_used_at", None)
        if used_at is None or now - used_at > HEALTH_CHECK_IDLE_SECONDS:
            # Django pings it before its first query.
            connection.health_check_done = False  # type: ignore[attr-defined]


def _connections_tidy() -> None:
    # Drops broken (after an error: pinged) or expired connections, as a request end does.
    close_old_connections()
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            # It just worked: no ping before the next hop.
            connection.health_check_done = True  # type: ignore[attr-defined]
            connection.solaris_used_at = now  # type: ignore[attr-defined]


def in_db_thread(function):
    """`function` as a coroutine run in one of the DB threads, its connection checked and tidied
    as Django's request start and end would."""

    def run(**kwargs):
        _connections_check_idle()
        try:
            return function(**kwargs)
        finally:
            _connections_tidy()

    return sync_to_async(run, thread_sensitive=False, executor=db_threads)
