"""Rate limit and circuit breaker bookkeeping (proxy/protection.py) in the shared cache."""

import time

import pytest
from django.core.cache import cache, caches

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


def test_an_all_clear_circuit_is_reused_for_a_moment(settings, monkeypatch):
    """The common case costs no cache round trip; a local failure, or the moment passing, reads
    the shared state again (so a circuit another process opened is seen within the setting)."""
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 60
    protection.circuit_forget()
    reads = []
    real_get_many = cache.get_many
    monkeypatch.setattr(cache, "get_many", lambda keys: reads.append(keys) or real_get_many(keys))
    assert protection.circuit_admit().state == protection.CLOSED
    assert protection.circuit_admit().state == protection.CLOSED
    assert len(reads) == 1
    # Another process opens the circuit: not seen while the all-clear is trusted...
    cache.set(protection.OPEN_UNTIL_KEY, time.time() + 30, timeout=60)
    assert protection.circuit_admit().state == protection.CLOSED
    # ...seen at once after a failure here, which also forgets the all-clear.
    protection.circuit_record(ticket=protection.CircuitTicket(protection.CLOSED), success=False)
    assert protection.circuit_admit().state == protection.OPEN
    assert len(reads) == 2
    cache.delete_many([protection.OPEN_UNTIL_KEY, protection.FAILURES_KEY])
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 0
    protection.circuit_forget()
    protection.circuit_admit()
    protection.circuit_admit()
    assert len(reads) == 4  # 0: every call reads the shared state
