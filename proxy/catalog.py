"""LiteLLM's model list as /v1/models uses it: kept in the shared cache, refreshed in the background.

LibreChat asks /v1/models before every chat call (5 s timeout, a failure counted against the
user), so that answer never waits for LiteLLM: it is Solaris's priced models the caller's plan
allows, narrowed to LiteLLM's list when a recent one is known. A request that finds the list
missing or older than REFRESH_SECONDS starts one refresh in the background (one at a time in the
whole installation: a lock in the shared cache). While LiteLLM is down the last list is kept for
FORGET_SECONDS, then the answer is the priced models alone.
"""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.core.cache import cache

from proxy import upstream

logger = logging.getLogger(__name__)

KEY = "proxy:upstream_models"
REFRESH_LOCK_KEY = "proxy:upstream_models:refresh"
REFRESH_SECONDS = 30
FORGET_SECONDS = 3600

# Refreshes running in this process, referenced until done.
_refreshes: set[asyncio.Task] = set()


def upstream_models_read(now: float | None = None) -> tuple[list[str] | None, bool]:
    """(LiteLLM's model names as last read, None when unknown; whether this caller should start a
    refresh). Synchronous: the view runs it in the same thread hop as its database reads."""
    now = time.time() if now is None else now
    found = cache.get(KEY)
    names = found.get("names") if isinstance(found, dict) else None
    fresh = names is not None and now - found.get("at", 0) < REFRESH_SECONDS
    if fresh:
        return names, False
    return names, bool(cache.add(REFRESH_LOCK_KEY, 1, timeout=REFRESH_SECONDS))


async def upstream_models_refresh() -> None:
    """Read LiteLLM's model list into the shared cache; on failure keep the last one."""
    try:
        names = await upstream.models_list()
    except (upstream.UpstreamUnavailable, upstream.UpstreamTimeout, upstream.UpstreamBroken) as exc:
        logger.warning("LiteLLM's model list could not be read: %s", exc)
        return
    await sync_to_async(cache.set, thread_sensitive=False)(
        KEY, {"names": names, "at": time.time()}, FORGET_SECONDS
    )


def upstream_models_refresh_start() -> None:
    task = asyncio.ensure_future(upstream_models_refresh())
    _refreshes.add(task)
    task.add_done_callback(_refreshes.discard)
