"""Spending never exceeds what was granted, with many streams at once (real PostgreSQL)."""

import asyncio
import threading

import openai
import pytest
from django.db import connection

from accounts.services import api_key_create
from credits.models import Account, Hold
from credits.selectors import account_summary, ledger_violations
from credits.services import credits_grant
from proxy.models import CallRecord
from tests.factories import PlanFactory, UserFactory
from tests.proxy.fault_upstream import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_hundred_concurrent_streams_on_a_balance_for_twenty(faulty, solaris):
    PlanFactory(slug="vazio", monthly_allowance=0, requests_per_minute=0)
    user = UserFactory(email="concorrente@example.com", plan_slug="vazio")
    # One call costs 10 × 1 + 20 × 2 = 50 credits: 1,000 pays for 20 of them.
    credits_grant(user=user, amount=1_000, idempotency_key="concurrency")
    key = api_key_create(user=user)[1]
    lowest = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            account = Account.objects.get(pk=user.pk)
            lowest.append(account.balance - account.held)
        connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()

    async def one(client):
        try:
            stream = await client.chat.completions.create(
                model="fault-ok",
                messages=[{"role": "user", "content": "Olá"}],
                stream=True,
                max_tokens=20,
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        except openai.RateLimitError as refused:
            assert refused.body["code"] == "insufficient_quota"
            return None

    async def all_calls():
        client = openai.AsyncOpenAI(
            base_url=f"{solaris.url}/v1", api_key=key, max_retries=0, timeout=60
        )
        return await asyncio.gather(*(one(client) for _ in range(100)))

    try:
        answers = asyncio.run(all_calls())
    finally:
        stop.set()
        watcher.join()
    served = [answer for answer in answers if answer is not None]
    assert all(answer == "palavra " * 20 for answer in served)
    assert 10 <= len(served) <= 20
    wait_until(lambda: CallRecord.objects.filter(user=user).count() == 100, 30)
    charged = sum(CallRecord.objects.filter(user=user).values_list("credits", flat=True))
    assert charged == 50 * len(served) <= 1_000
    summary = account_summary(user_id=user.pk)
    assert summary.available == 1_000 - charged >= 0
    assert summary.debt == 0 and summary.held == 0
    assert min(lowest) >= 0
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    assert ledger_violations() == []
