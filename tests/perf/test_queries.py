"""What one proxied call costs the database (issue 8): the statements of the two DB-thread hops,
counted with Django's CaptureQueriesContext, so a change that adds round trips fails here."""

import json
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import api_key_create
from credits.models import Hold, LedgerEntry
from credits.services import credits_grant
from proxy import protection, services
from proxy.payload import chat_request_parse
from proxy.services import EndReason, Outcome

pytestmark = pytest.mark.django_db(transaction=True)

# Statements per call once the caches are warm (BEGIN/COMMIT are not captured).
ADMIT_MAX = 7
SETTLE_MAX = 11
# PostgreSQL's fast path: the hold in one function call; the settlement in one, plus the CallRecord.
FAST_ADMIT_MAX = 1
FAST_SETTLE_MAX = 2


def _admit(raw_key: str, *, stream: bool, call_id: str):
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "Olá"}], "stream": stream}
    return services.call_admit(
        call_id=call_id,
        raw_key=raw_key,
        email=None,
        librechat_id=None,
        conversation_id="",
        request=chat_request_parse(json.dumps(body).encode()),
    )


def _settle(admitted):
    outcome = Outcome(EndReason.COMPLETED, 200, usage=(10, 20), circuit=protection.SUCCESS)
    return services.call_settle(
        admitted=admitted, outcome=outcome, duration_ms=5, with_summary=not admitted.stream
    )


@pytest.mark.parametrize("stream", [False, True])
def test_statements_per_call(user, user_key, price, stream):
    credits_grant(user=user, amount=1_000_000, idempotency_key="perf")
    _settle(_admit(user_key, stream=stream, call_id="warm-up"))
    with CaptureQueriesContext(connection) as admit:
        admitted = _admit(user_key, stream=stream, call_id="measured")
    with CaptureQueriesContext(connection) as settle:
        record, summary = _settle(admitted)
    print(f"admit {len(admit)} settle {len(settle)}")
    for query in [*admit.captured_queries, *settle.captured_queries]:
        print(query["sql"][:160])
    fast = connection.vendor == "postgresql"
    assert len(admit) <= (FAST_ADMIT_MAX if fast else ADMIT_MAX)
    assert len(settle) <= (FAST_SETTLE_MAX if fast else SETTLE_MAX)
    # The call was booked exactly: 10 × 1.5 + 20 × 3 = 75 credits.
    assert record.credits == 75
    assert LedgerEntry.objects.get(hold__request_id="measured").amount == -75
    assert Hold.objects.get(request_id="measured").status == Hold.Status.SETTLED
    if stream:
        assert admitted.summary is not None
    else:
        assert summary is not None
        assert summary.balance == 100_000 + 1_000_000 - 150


def test_lookups_cached_and_revocation_prompt(user, user_key, price, settings):
    """Key, plan and price come from the per-process cache; a revocation through the service
    empties it at once, a change it does not see (another process) lands within the TTL."""
    from accounts.keys import hash_key
    from accounts.models import ApiKey
    from accounts.services import key_revoke
    from kernel.errors import InvalidApiKey

    settings.SOLARIS_LOOKUP_CACHE_SECONDS = 0.5
    credits_grant(user=user, amount=1_000_000, idempotency_key="perf")
    _settle(_admit(user_key, stream=False, call_id="warm-up"))
    with CaptureQueriesContext(connection) as admit:
        admitted = _admit(user_key, stream=False, call_id="cached")
    tables = " ".join(query["sql"] for query in admit.captured_queries)
    assert "accounts_apikey" not in tables
    assert "credits_modelprice" not in tables
    assert "credits_subscription" not in tables
    _settle(admitted)

    # Revoked behind the cache's back (as another process would): honoured within the TTL.
    ApiKey.objects.filter(key_hash=hash_key(user_key)).update(revoked_at=timezone.now())
    _settle(_admit(user_key, stream=False, call_id="within-ttl"))
    time.sleep(0.6)
    with pytest.raises(InvalidApiKey):
        _admit(user_key, stream=False, call_id="after-ttl")

    # Revoked through the service: refused at once, whatever the TTL.
    settings.SOLARIS_LOOKUP_CACHE_SECONDS = 60
    _key, other = api_key_create(user=user, name="other")
    _settle(_admit(other, stream=False, call_id="other-warm"))
    key_revoke(key=ApiKey.objects.get(key_hash=hash_key(other)))
    with pytest.raises(InvalidApiKey):
        _admit(other, stream=False, call_id="other-revoked")


def test_price_edit_reaches_admission_at_once(user, user_key, price, settings):
    from credits.services import model_price_set

    settings.SOLARIS_LOOKUP_CACHE_SECONDS = 60
    credits_grant(user=user, amount=1_000_000, idempotency_key="perf")
    _settle(_admit(user_key, stream=False, call_id="warm-up"))
    model_price_set(model="gpt-test", input_weight=Decimal(2), output_weight=Decimal(5))
    admitted = _admit(user_key, stream=False, call_id="repriced")
    record, _summary = _settle(admitted)
    assert record.credits == 10 * 2 + 20 * 5


@pytest.mark.postgres
def test_db_thread_hops_skip_the_health_check_unless_idle(db, monkeypatch):
    """CONN_HEALTH_CHECKS pings before the first query of each hop; a connection used moments ago
    is not pinged again, one idle past HEALTH_CHECK_IDLE_SECONDS is."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import async_to_sync
    from django.db import connections

    from proxy import runtime

    pings = []

    def query(**_kwargs):
        connection = connections["default"]
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True
        connection.settings_dict["CONN_MAX_AGE"] = 60
        if not hasattr(connection, "real_is_usable"):
            connection.real_is_usable = connection.is_usable
            connection.is_usable = lambda: pings.append(1) or connection.real_is_usable()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 42")
            return cursor.fetchone()[0]

    # One thread, so every hop finds the connection the previous one left (the proxy's pool may
    # hold threads, with closed connections, from earlier tests).
    monkeypatch.setattr(runtime, "db_threads", ThreadPoolExecutor(max_workers=1))
    hop = async_to_sync(runtime.in_db_thread(query))
    assert hop() == 42
    pings.clear()
    assert hop() == 42
    assert pings == []  # used moments ago: no SELECT 1
    monkeypatch.setattr(runtime, "HEALTH_CHECK_IDLE_SECONDS", 0.0)
    time.sleep(0.01)
    assert hop() == 42
    assert pings == [1]  # idle past the limit: checked before use
    async_to_sync(runtime.in_db_thread(lambda: connections.close_all()))()
