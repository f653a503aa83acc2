"""Per-plan request rate limit and the upstream circuit breaker, both kept in the shared cache
(Redis in production) so every web process sees the same counters and the same circuit state.

Functions here are synchronous: the proxy calls them inside its one thread hop per request.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

RPM_KEY = "proxy:rpm:{user_id}:{window}"
FAILURES_KEY = "proxy:circuit:failures"
OPEN_UNTIL_KEY = "proxy:circuit:open_until"
PROBE_KEY = "proxy:circuit:probe"
# The window of upstream 5xx (opened by the first, like the failure count's) and, in it, one
# marker per end user who got one and how many they are.
SERVER_ERROR_WINDOW_KEY = "proxy:circuit:5xx:window"
SERVER_ERROR_USER_KEY = "proxy:circuit:5xx:{window}:{user_id}"
SERVER_ERROR_USERS_KEY = "proxy:circuit:5xx:{window}:users"
# Fewer distinct end users than this getting 5xx is taken as their requests' doing, not an outage.
SERVER_ERROR_MIN_USERS = 3

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"

# What the end of a call tells the circuit breaker about the upstream.
SUCCESS = "success"  # it answered
FAILURE = "failure"  # unreachable, no answer in time, connection broken: always counts
SERVER_ERROR = "server_error"  # it answered 5xx: counts once SERVER_ERROR_MIN_USERS users got one
IGNORED = "ignored"  # a 4xx (the request's fault) or a client that left: never counts

# Until when (time.monotonic) this process trusts the last all-clear it read from the shared cache
# (circuit closed, no failure counted): the common case then costs no Redis round trip. A failure
# recorded here forgets it at once; a circuit opened by another process is seen here within
# SOLARIS_CIRCUIT_CLEAR_SECONDS.
_clear_until = 0.0


def rate_limit_hit(*, user_id: int, limit: int, now: float | None = None) -> int | None:
    """Count one request in the user's current minute; the seconds to wait when over `limit`.

    0 means no limit. A fixed one-minute window; INCR is atomic on Redis and locked on locmem.
    """
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // 60)
    key = RPM_KEY.format(user_id=user_id, window=window)
    try:
        count = cache.incr(key)
    except ValueError:
        # First request of the window (add() loses to a concurrent first request: incr then).
        count = 1 if cache.add(key, 1, timeout=120) else cache.incr(key)
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * 60 - now))


@dataclass(frozen=True)
class CircuitTicket:
    """What circuit_admit saw, so circuit_record only writes when there is something to change."""

    state: str
    retry_after: int = 0
    dirty: bool = False  # failures counted or circuit not closed: a success must clear them


def circuit_state(now: float | None = None) -> str:
    now = time.time() if now is None else now
    open_until = cache.get(OPEN_UNTIL_KEY)
    if open_until is None:
        return CLOSED
    return OPEN if now < open_until else HALF_OPEN


def circuit_forget() -> None:
    """Read the shared state on the next admission (after a failure, or when tests reset it)."""
    global _clear_until
    _clear_until = 0.0


def circuit_admit(now: float | None = None) -> CircuitTicket:
    """May a call go upstream? Open: no (retry_after set). Half-open: one probe at a time."""
    global _clear_until
    live = now is None
    if live and time.monotonic() < _clear_until:
        return CircuitTicket(CLOSED)
    now = time.time() if now is None else now
    found = cache.get_many([OPEN_UNTIL_KEY, FAILURES_KEY])
    open_until = found.get(OPEN_UNTIL_KEY)
    if open_until is None:
        failures = bool(found.get(FAILURES_KEY))
        if live and not failures:
            _clear_until = time.monotonic() + settings.SOLARIS_CIRCUIT_CLEAR_SECONDS
        return CircuitTicket(CLOSED, dirty=failures)
    if now < open_until:
        return CircuitTicket(OPEN, max(1, math.ceil(open_until - now)))
    if cache.add(PROBE_KEY, 1, timeout=settings.SOLARIS_CIRCUIT_OPEN_SECONDS):
        return CircuitTicket(HALF_OPEN, dirty=True)
    return CircuitTicket(OPEN, 1)


def _server_error_counts(*, user_id: int, now: float) -> bool:
    """Note that `user_id` got a 5xx in this window; whether enough distinct users did for a 5xx
    to count as a failure (so one caller's malformed requests cannot open the circuit)."""
    seconds = settings.SOLARIS_CIRCUIT_WINDOW_SECONDS
    cache.add(SERVER_ERROR_WINDOW_KEY, int(now * 1000), timeout=seconds)
    window = cache.get(SERVER_ERROR_WINDOW_KEY) or int(now * 1000)
    users_key = SERVER_ERROR_USERS_KEY.format(window=window)
    if cache.add(SERVER_ERROR_USER_KEY.format(window=window, user_id=user_id), 1, timeout=seconds):
        try:
            users = cache.incr(users_key)
        except ValueError:
            users = 1 if cache.add(users_key, 1, timeout=seconds) else cache.incr(users_key)
    else:
        users = cache.get(users_key) or 1
    return users >= SERVER_ERROR_MIN_USERS


def circuit_record(
    *, ticket: CircuitTicket, verdict: str, user_id: int, now: float | None = None
) -> None:
    """An upstream success closes the circuit; enough failures in the window (or a failed probe)
    open it for SOLARIS_CIRCUIT_OPEN_SECONDS. A 5xx is a failure only once several end users got
    one in the window; an ignored end frees the half-open probe for the next call."""
    if verdict == SUCCESS:
        if ticket.dirty:
            cache.delete_many([FAILURES_KEY, OPEN_UNTIL_KEY, PROBE_KEY])
        return
    now = time.time() if now is None else now
    if verdict == SERVER_ERROR and not _server_error_counts(user_id=user_id, now=now):
        verdict = IGNORED
    if verdict == IGNORED:
        if ticket.state == HALF_OPEN:
            cache.delete(PROBE_KEY)
        return
    circuit_forget()
    window = settings.SOLARIS_CIRCUIT_WINDOW_SECONDS
    try:
        failures = cache.incr(FAILURES_KEY)
    except ValueError:
        failures = 1 if cache.add(FAILURES_KEY, 1, timeout=window) else cache.incr(FAILURES_KEY)
    probe_failed = cache.get(OPEN_UNTIL_KEY) is not None
    if failures >= settings.SOLARIS_CIRCUIT_FAILURES or probe_failed:
        opened = settings.SOLARIS_CIRCUIT_OPEN_SECONDS
        # Kept after it passes (that is the half-open state) until a success clears it.
        cache.set(OPEN_UNTIL_KEY, now + opened, timeout=opened + window + 3600)
        cache.delete(PROBE_KEY)
