"""Concurrency and the append-only trigger on real PostgreSQL: threads, each with its own
connection, race for the same account; the row lock decides, and the ledger stays consistent."""

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from credits.models import Account, Grant, Hold, LedgerEntry, Subscription
from credits.selectors import ledger_violations
from credits.services import (
    InsufficientCredits,
    credits_grant,
    cycles_renew,
    hold_create,
    hold_settle,
)
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.postgres

WORKERS = 50


def race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) in `count` threads released together; returns each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.fixture
def funded(transactional_db):
    PlanFactory(slug="vazio", monthly_allowance=0)
    user = UserFactory(plan_slug="vazio")
    credits_grant(user=user, amount=1_000, idempotency_key="fund")
    price = ModelPriceFactory(model="unit", input_weight="1", output_weight="1")
    return user, price


def test_fifty_concurrent_holds_admit_exactly_what_the_balance_covers(funded, settings):
    user, price = funded
    settings.SOLARIS_MIN_ANSWER_TOKENS = 90  # no clamped admission can slip in at the end
    available_seen = []

    def admit(index: int):
        admission = hold_create(
            user=user, request_id=f"req-{index}", price=price, prompt_tokens=10, max_tokens=90
        )
        available_seen.append(Account.objects.get(pk=user.pk).available)
        return admission

    results = race(WORKERS, admit)
    admitted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(admitted), len(refused)) == (10, 40), results
    assert all(admission.hold.amount == 100 for admission in admitted)
    account = Account.objects.get(pk=user.pk)
    assert (account.balance, account.held, account.available) == (1_000, 1_000, 0)
    assert min(available_seen) >= 0
    assert Hold.objects.filter(status="open").count() == 10
    assert ledger_violations() == []
    call_command("check_ledger")


def test_fifty_concurrent_holds_with_clamping_never_overspend(funded, settings):
    user, price = funded
    settings.SOLARIS_MIN_ANSWER_TOKENS = 1

    def admit(index: int):
        return hold_create(
            user=user, request_id=f"req-{index}", price=price, prompt_tokens=10, max_tokens=97
        )

    results = race(WORKERS, admit)
    admitted = [r for r in results if not isinstance(r, Exception)]
    assert all(isinstance(r, InsufficientCredits) for r in results if isinstance(r, Exception))
    assert sum(admission.hold.amount for admission in admitted) == 1_000
    assert sum(admission.clamped for admission in admitted) == 1  # the last one: 27 answer tokens
    assert Account.objects.get(pk=user.pk).available == 0
    assert ledger_violations() == []


def test_settle_retried_concurrently_charges_once(funded):
    user, price = funded
    hold_create(user=user, request_id="once", price=price, prompt_tokens=100, max_tokens=400)

    results = race(
        20, lambda _i: hold_settle(request_id="once", prompt_tokens=100, completion_tokens=150)
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.pk for r in results}) == 1
    usage = LedgerEntry.objects.get(kind="usage")
    assert usage.amount == -250
    account = Account.objects.get(pk=user.pk)
    assert (account.balance, account.held) == (750, 0)
    assert ledger_violations() == []
    call_command("check_ledger")


def test_concurrent_settles_of_many_calls_each_charge_once(funded):
    user, price = funded
    for index in range(10):
        hold_create(user=user, request_id=f"c{index}", price=price, prompt_tokens=10, max_tokens=90)

    def settle(index: int):
        return hold_settle(request_id=f"c{index % 10}", prompt_tokens=10, completion_tokens=40)

    results = race(30, settle)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert LedgerEntry.objects.filter(kind="usage").count() == 10
    account = Account.objects.get(pk=user.pk)
    assert (account.balance, account.held) == (500, 0)
    assert ledger_violations() == []


def test_cycle_renewal_by_two_workers_at_once_grants_once(transactional_db):
    plan = PlanFactory(slug="mensal", monthly_allowance=5_000)
    users = [UserFactory(plan_slug="mensal") for _ in range(5)]
    end = timezone.now() - timedelta(seconds=1)
    Subscription.objects.update(
        cycle_anchor=end, cycle_start=end - timedelta(days=30), cycle_end=end
    )
    Grant.objects.update(expires_at=end)

    results = race(2, lambda _i: cycles_renew())
    assert sorted(results) in ([0, 5], [1, 4], [2, 3]) and sum(results) == 5, results
    for user in users:
        grants = Grant.objects.filter(account_id=user.pk, source="plan_cycle")
        assert grants.count() == 2
        assert Account.objects.get(pk=user.pk).balance == plan.monthly_allowance
    assert LedgerEntry.objects.filter(kind="expiry").count() == 5
    assert ledger_violations() == []
    call_command("check_ledger")


def test_the_same_grant_key_raced_grants_once(funded):
    user, _price = funded
    results = race(10, lambda _i: credits_grant(user=user, amount=70, idempotency_key="raced").pk)
    assert len(set(results)) == 1, results
    assert Account.objects.get(pk=user.pk).balance == 1_070


def test_database_refuses_update_and_delete_on_the_ledger(funded):
    user, _price = funded
    entry = LedgerEntry.objects.get(account_id=user.pk)
    for statement in (
        "UPDATE credits_ledgerentry SET amount = 999999 WHERE id = %s",
        "DELETE FROM credits_ledgerentry WHERE id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    entry.refresh_from_db()
    assert entry.amount == 1_000
    assert LedgerEntry.objects.filter(account_id=user.pk).count() == 1
