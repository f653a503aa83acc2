"""Throttles for sign-in, the e-mail senders and purchase requests (docs/security.md).

django-ratelimit counts in Django's cache (Redis in production: one atomic count every web process
shares). Each throttle counts per who (an e-mail, a user) *and* client address together, so a
stranger cannot lock someone out from elsewhere and one busy address does not lock everyone behind
it. A throttle's rate is "N/period" (`10/15m`): reaching N within a period locks that pair for one
whole period from then; the lock is a deadline in the cache, so it ends when the clock says so.
"""

import hashlib
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django_ratelimit.core import get_usage

from kernel.client_ip import client_key

LOCK_KEY = "throttle:lock:{digest}"
# django-ratelimit's rate grammar: a count, "/", then an optional multiplier and s, m, h or d.
RATE = re.compile(r"([1-9][0-9]*)/([0-9]*)([smhd])")
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """(limit, period in seconds) of a rate such as `10/15m`; ValueError for anything else."""
    match = RATE.fullmatch(rate.strip())
    period = int(match.group(2) or 1) * PERIOD_SECONDS[match.group(3)] if match else 0
    if match is None or period == 0:
        raise ValueError(f"{rate!r} is not a rate such as 10/15m (a count per s, m, h or d).")
    return int(match.group(1)), period


@dataclass(frozen=True)
class Throttle:
    name: str
    setting: str  # the setting that holds its rate

    @property
    def rate(self) -> str:
        return getattr(settings, self.setting).strip()


# Failed password sign-ins (/entrar/, /admin/login/), per e-mail typed and client.
SIGN_IN = Throttle("sign-in", "SOLARIS_THROTTLE_SIGN_IN")
# Sign-in link and password reset e-mails, per address asked for and client.
EMAIL = Throttle("email", "SOLARIS_THROTTLE_EMAIL")
# The widget's sign-in links and purchase requests, per user and client.
SIGN_IN_LINK = Throttle("sign-in-link", "SOLARIS_THROTTLE_REQUESTS")
PURCHASE = Throttle("purchase", "SOLARIS_THROTTLE_REQUESTS")


@dataclass(frozen=True)
class Lockout:
    until: float  # a time.time() deadline

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (at least 1)."""
        return max(1, math.ceil(self.until - time.time()))

    @property
    def minutes(self) -> int:
        return math.ceil(self.retry_after / 60)

    @property
    def until_at(self) -> datetime:
        return datetime.fromtimestamp(self.until, UTC)


def _who(request, who: str) -> str:
    return f"{who}\n{client_key(request)}"


def _lock_key(throttle: Throttle, value: str) -> str:
    digest = hashlib.sha256(f"{throttle.name}\n{value}".encode()).hexdigest()
    return LOCK_KEY.format(digest=digest)


def throttle_locked(*, request, throttle: Throttle, who: str) -> Lockout | None:
    """The lockout of (who, this client) under `throttle`, if one is running."""
    until = cache.get(_lock_key(throttle, _who(request, who)))
    if until is None or until <= time.time():
        return None
    return Lockout(until=until)


def throttle_count(*, request, throttle: Throttle, who: str) -> Lockout | None:
    """Count one event for (who, this client); the lockout it starts when it reaches the limit."""
    value = _who(request, who)
    usage = get_usage(
        request,
        group=f"solaris:{throttle.name}",
        key=lambda _group, _request: value,
        rate=throttle.rate,
        increment=True,
    )
    if usage is None or usage["count"] < usage["limit"]:
        return None
    _limit, period = rate_parse(throttle.rate)
    until = time.time() + period
    cache.set(_lock_key(throttle, value), until, timeout=period + 5)
    return Lockout(until=until)


def throttle_take(*, request, throttle: Throttle, who: str) -> Lockout | None:
    """Let one event through unless (who, this client) is locked out: the lockout refusing it, or
    None, the event counted (the one that reaches the limit still passes; the next do not)."""
    locked = throttle_locked(request=request, throttle=throttle, who=who)
    if locked is not None:
        return locked
    throttle_count(request=request, throttle=throttle, who=who)
    return None
