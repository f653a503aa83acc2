"""Rate limit and circuit breaker bookkeeping (proxy/protection.py) in the shared cache."""

import pytest
from django.core.cache import caches

from proxy import protection


def test_rate_limit_window(settings):
    now = 60 * 1_000 + 10.2
    assert protection.rate_limit_hit(user_id=1, limit=0, now=now) is None
    assert [protection.rate_limit_hit(user_id=1, limit=2, now=now) for _ in range(2)] == [
        None,
        None,
    ]
    assert protection.rate_limit_hit(user_id=1, limit=2, now=now) == 50
    assert protection.rate_limit_hit(user_id=2, limit=2, now=now) is None  # per user
    assert protection.rate_limit_hit(user_id=1, limit=2, now=now + 50) is None  # next minute


def test_circuit_opens_half_opens_and_closes(settings):
    settings.SOLARIS_CIRCUIT_FAILURES = 3
    settings.SOLARIS_CIRCUIT_OPEN_SECONDS = 10
    now = 1_000_000.0
    ticket = protection.circuit_admit(now)
    assert ticket.state == protection.CLOSED and not ticket.dirty
    for _ in range(2):
        protection.circuit_record(ticket=ticket, success=False, now=now)
    assert protection.circuit_admit(now).state == protection.CLOSED
    protection.circuit_record(ticket=ticket, success=False, now=now)
    opened = protection.circuit_admit(now + 1)
    assert (opened.state, opened.retry_after) == (protection.OPEN, 9)
    assert protection.circuit_state(now + 1) == protection.OPEN
    probe = protection.circuit_admit(now + 11)
    assert probe.state == protection.HALF_OPEN
    # Only one probe at a time; the others are still refused.
    assert protection.circuit_admit(now + 11).state == protection.OPEN
    protection.circuit_record(ticket=probe, success=False, now=now + 11)  # failed probe reopens
    assert protection.circuit_admit(now + 12).state == protection.OPEN
    probe = protection.circuit_admit(now + 22)
    assert probe.state == protection.HALF_OPEN
    protection.circuit_record(ticket=probe, success=True, now=now + 22)
    closed = protection.circuit_admit(now + 22)
    assert closed.state == protection.CLOSED and not closed.dirty


@pytest.mark.redis
def test_circuit_state_is_shared_between_processes(settings):
    """A second cache client (as another web process has) sees the open circuit."""
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    now = 2_000_000.0
    protection.circuit_record(ticket=protection.circuit_admit(now), success=False, now=now)
    other = caches.create_connection("default")
    assert other.get(protection.OPEN_UNTIL_KEY) == now + settings.SOLARIS_CIRCUIT_OPEN_SECONDS
    assert protection.rate_limit_hit(user_id=9, limit=1, now=now) is None
    assert other.get(protection.RPM_KEY.format(user_id=9, window=int(now // 60))) == 1
