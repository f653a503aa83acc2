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
        protection.circuit_record(ticket=ticket, verdict=protection.FAILURE, user_id=1, now=now)
    assert protection.circuit_admit(now).state == protection.CLOSED
    protection.circuit_record(ticket=ticket, verdict=protection.FAILURE, user_id=1, now=now)
    opened = protection.circuit_admit(now + 1)
    assert (opened.state, opened.retry_after) == (protection.OPEN, 9)
    assert protection.circuit_state(now + 1) == protection.OPEN
    probe = protection.circuit_admit(now + 11)
    assert probe.state == protection.HALF_OPEN
    # Only one probe at a time; the others are still refused.
    assert protection.circuit_admit(now + 11).state == protection.OPEN
    protection.circuit_record(
        ticket=probe, verdict=protection.FAILURE, user_id=1, now=now + 11
    )  # failed probe reopens
    assert protection.circuit_admit(now + 12).state == protection.OPEN
    probe = protection.circuit_admit(now + 22)
    assert probe.state == protection.HALF_OPEN
    protection.circuit_record(ticket=probe, verdict=protection.SUCCESS, user_id=1, now=now + 22)
    closed = protection.circuit_admit(now + 22)
    assert closed.state == protection.CLOSED and not closed.dirty


@pytest.mark.redis
def test_circuit_state_is_shared_between_processes(settings):
    """A second cache client (as another web process has) sees the open circuit."""
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    now = 2_000_000.0
    protection.circuit_record(
        ticket=protection.circuit_admit(now), verdict=protection.FAILURE, user_id=1, now=now
    )
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
    protection.circuit_record(
        ticket=protection.CircuitTicket(protection.CLOSED), verdict=protection.FAILURE, user_id=1
    )
    assert protection.circuit_admit().state == protection.OPEN
    assert len(reads) == 2
    cache.delete_many([protection.OPEN_UNTIL_KEY, protection.FAILURES_KEY])
    settings.SOLARIS_CIRCUIT_CLEAR_SECONDS = 0
    protection.circuit_forget()
    protection.circuit_admit()
    protection.circuit_admit()
    assert len(reads) == 4  # 0: every call reads the shared state


def test_server_errors_count_only_from_several_end_users(settings):
    """One caller's 5xx (its own malformed requests) never opens the circuit; the same from
    SERVER_ERROR_MIN_USERS distinct end users in the window does. 4xx never count."""
    settings.SOLARIS_CIRCUIT_FAILURES = 2
    settings.SOLARIS_CIRCUIT_WINDOW_SECONDS = 30
    now = 3_000_000.0
    ticket = protection.circuit_admit(now)
    for _ in range(20):
        protection.circuit_record(
            ticket=ticket, verdict=protection.SERVER_ERROR, user_id=1, now=now
        )
        protection.circuit_record(ticket=ticket, verdict=protection.IGNORED, user_id=1, now=now)
    protection.circuit_record(ticket=ticket, verdict=protection.SERVER_ERROR, user_id=2, now=now)
    assert protection.circuit_admit(now).state == protection.CLOSED
    assert not cache.get(protection.FAILURES_KEY)
    # A third user: from now on 5xx are failures, whoever gets them.
    protection.circuit_record(ticket=ticket, verdict=protection.SERVER_ERROR, user_id=3, now=now)
    assert cache.get(protection.FAILURES_KEY) == 1
    protection.circuit_record(ticket=ticket, verdict=protection.SERVER_ERROR, user_id=1, now=now)
    assert protection.circuit_admit(now + 1).state == protection.OPEN
    # The window ends (its key expires): one user's 5xx count for nothing again.
    cache.delete_many(
        [protection.OPEN_UNTIL_KEY, protection.FAILURES_KEY, protection.SERVER_ERROR_WINDOW_KEY]
    )
    later = now + 31
    for _ in range(5):
        protection.circuit_record(
            ticket=ticket, verdict=protection.SERVER_ERROR, user_id=1, now=later
        )
    assert protection.circuit_admit(later).state == protection.CLOSED


def test_an_ignored_probe_lets_the_next_call_probe(settings):
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    settings.SOLARIS_CIRCUIT_OPEN_SECONDS = 10
    now = 4_000_000.0
    protection.circuit_record(
        ticket=protection.circuit_admit(now), verdict=protection.FAILURE, user_id=1, now=now
    )
    probe = protection.circuit_admit(now + 11)
    assert probe.state == protection.HALF_OPEN
    assert protection.circuit_admit(now + 11).state == protection.OPEN
    # The probe's request was refused upstream with a 4xx: it says nothing about the upstream.
    protection.circuit_record(ticket=probe, verdict=protection.IGNORED, user_id=1, now=now + 11)
    assert protection.circuit_admit(now + 11).state == protection.HALF_OPEN


@pytest.mark.redis
def test_server_error_users_are_counted_in_redis_for_every_process(settings):
    settings.SOLARIS_CIRCUIT_FAILURES = 1
    now = 5_000_000.0
    ticket = protection.CircuitTicket(protection.CLOSED)
    for user_id in (1, 2):
        protection.circuit_record(
            ticket=ticket, verdict=protection.SERVER_ERROR, user_id=user_id, now=now
        )
    other = caches.create_connection("default")  # what another web process reads
    window = other.get(protection.SERVER_ERROR_WINDOW_KEY)
    assert window == int(now * 1000)
    assert other.get(protection.SERVER_ERROR_USERS_KEY.format(window=window)) == 2
    assert other.get(protection.OPEN_UNTIL_KEY) is None
    protection.circuit_record(ticket=ticket, verdict=protection.SERVER_ERROR, user_id=3, now=now)
    assert other.get(protection.OPEN_UNTIL_KEY) == now + settings.SOLARIS_CIRCUIT_OPEN_SECONDS
