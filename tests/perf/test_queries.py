"""What one proxied call costs the database (issue 8): the statements of the two DB-thread hops,
counted with Django's CaptureQueriesContext, so a change that adds round trips fails here."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits.models import Hold, LedgerEntry
from credits.services import credits_grant
from proxy import services
from proxy.payload import chat_request_parse
from proxy.services import EndReason, Outcome

pytestmark = pytest.mark.django_db(transaction=True)

# Statements per call once the caches are warm (BEGIN/COMMIT are not captured).
ADMIT_MAX = 10
SETTLE_MAX = 11


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
    outcome = Outcome(EndReason.COMPLETED, 200, usage=(10, 20), upstream_ok=True)
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
    assert len(admit) <= ADMIT_MAX
    assert len(settle) <= SETTLE_MAX
    # The call was booked exactly: 10 × 1.5 + 20 × 3 = 75 credits.
    assert record.credits == 75
    assert LedgerEntry.objects.get(hold__request_id="measured").amount == -75
    assert Hold.objects.get(request_id="measured").status == Hold.Status.SETTLED
    if stream:
        assert admitted.summary is not None
    else:
        assert summary is not None
        assert summary.balance == 100_000 + 1_000_000 - 150
