"""Account summary (available, used percent, state), statements and the ledger check."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from credits.models import Account, Grant, Hold, Subscription
from credits.selectors import account_summary, ledger_violations, statement
from credits.services import (
    credits_grant,
    hold_create,
    hold_settle,
    purchase_confirm,
    purchase_request,
)
from tests.factories import UserFactory


def spend(user, price, amount, request_id):
    hold_create(user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount)
    hold_settle(request_id=request_id, prompt_tokens=amount, completion_tokens=0)


@pytest.fixture
def funded(poor):
    credits_grant(
        user=poor,
        amount=10_000,
        idempotency_key="fund",
        expires_at=timezone.now() + timedelta(days=30),
    )
    return poor


def test_state_thresholds(funded, unit_price, settings):
    settings.SOLARIS_ALERT_THRESHOLD = 80
    spend(funded, unit_price, 7_999, "a")
    summary = account_summary(user_id=funded.pk)
    assert (summary.used_percent, summary.state) == (Decimal("79.99"), "normal")
    spend(funded, unit_price, 1, "b")
    summary = account_summary(user_id=funded.pk)
    assert (summary.used_percent, summary.state, summary.available) == (
        Decimal("80.00"),
        "alert",
        2_000,
    )
    # Blocked from below what a short call costs on the cheapest model (200 prompt + 256 answer
    # tokens at 1 credit each), not at zero.
    spend(funded, unit_price, 1_544, "c")
    assert (
        account_summary(user_id=funded.pk).available,
        account_summary(user_id=funded.pk).state,
    ) == (456, "alert")
    spend(funded, unit_price, 1, "d")
    summary = account_summary(user_id=funded.pk)
    assert (summary.available, summary.used_percent, summary.state) == (
        455,
        Decimal("95.45"),
        "blocked",
    )
    spend(funded, unit_price, 455, "e")
    summary = account_summary(user_id=funded.pk)
    assert (summary.available, summary.used_percent, summary.state) == (
        0,
        Decimal("100.00"),
        "blocked",
    )


def test_threshold_is_configurable(funded, unit_price, settings):
    settings.SOLARIS_ALERT_THRESHOLD = 50
    spend(funded, unit_price, 5_000, "a")
    summary = account_summary(user_id=funded.pk)
    assert (summary.state, summary.alert_threshold) == ("alert", 50)


def test_open_holds_lower_available_not_used_percent(funded, unit_price):
    hold_create(
        user=funded, request_id="h", price=unit_price, prompt_tokens=9_000, max_tokens=1_000
    )
    summary = account_summary(user_id=funded.pk)
    assert (summary.available, summary.held, summary.balance) == (0, 10_000, 10_000)
    assert (summary.used_percent, summary.state) == (Decimal("0.00"), "blocked")


def test_summary_of_a_fresh_plan_user(user, plan):
    summary = account_summary(user_id=user.pk, with_grants=True)
    assert (summary.available, summary.balance, summary.granted, summary.used) == (
        100_000,
        100_000,
        100_000,
        0,
    )
    assert (summary.state, summary.plan, summary.renews_at) == (
        "normal",
        plan,
        user.subscription.cycle_end,
    )
    assert [(g.source, g.remaining) for g in summary.grants] == [("plan_cycle", 100_000)]


def test_summary_without_account_subscription_or_grants(db):
    user = UserFactory(plan_slug=None)
    Account.objects.filter(pk=user.pk).delete()
    Subscription.objects.filter(user=user).delete()
    summary = account_summary(user_id=user.pk)
    assert (summary.available, summary.used_percent, summary.state, summary.plan.slug) == (
        0,
        Decimal(100),
        "blocked",
        "padrao",  # without a subscription, on the default plan
    )


def test_spent_grant_without_expiry_no_longer_counts_for_used_percent(poor, unit_price):
    credits_grant(user=poor, amount=100, idempotency_key="a")
    spend(poor, unit_price, 100, "x")
    credits_grant(user=poor, amount=100, idempotency_key="b")
    summary = account_summary(user_id=poor.pk)
    assert (summary.granted, summary.used, summary.used_percent) == (100, 0, Decimal("0.00"))


def test_grants_list_orders_by_expiry_and_hides_spent_and_expired(poor, unit_price):
    now = timezone.now()
    never = credits_grant(user=poor, amount=5, idempotency_key="n")
    late = credits_grant(user=poor, amount=5, idempotency_key="l", expires_at=now + timedelta(9))
    soon = credits_grant(user=poor, amount=5, idempotency_key="s", expires_at=now + timedelta(1))
    gone = credits_grant(user=poor, amount=5, idempotency_key="g", expires_at=now + timedelta(2))
    Grant.objects.filter(pk=gone.pk).update(expires_at=now - timedelta(1))
    grants = account_summary(user_id=poor.pk, with_grants=True).grants
    assert [g.pk for g in grants] == [soon.pk, late.pk, never.pk]


def test_summary_query_count_is_bounded(funded, django_assert_num_queries):
    with django_assert_num_queries(3):
        account_summary(user_id=funded.pk)
    with django_assert_num_queries(4):
        account_summary(user_id=funded.pk, with_grants=True)


def test_statement_opening_plus_entries_is_closing(
    poor, user, unit_price, django_assert_num_queries
):
    start = timezone.now()
    before = start - timedelta(days=3)
    credits_grant(user=poor, amount=1_000, idempotency_key="old", now=before)
    hold_create(
        user=poor, request_id="old", price=unit_price, prompt_tokens=100, max_tokens=1, now=before
    )
    hold_settle(request_id="old", prompt_tokens=100, completion_tokens=0, now=before)
    credits_grant(user=poor, amount=500, idempotency_key="new")
    spend(poor, unit_price, 250, "new")
    purchase = purchase_request(user=poor, idempotency_key="p", credits=300, price_cents=10)
    purchase_confirm(purchase=purchase, confirmed_by=user)
    end = timezone.now() + timedelta(seconds=1)
    credits_grant(user=poor, amount=7, idempotency_key="after", now=end + timedelta(hours=1))

    with django_assert_num_queries(2):
        result = statement(user_id=poor.pk, start=start, end=end)
        kinds = [(e.kind, e.amount, e.grant_id is not None) for e in result.entries]
    assert result.opening_balance == 900
    assert kinds == [("grant", 500, True), ("usage", -250, False), ("grant", 300, True)]
    assert result.closing_balance == result.opening_balance + sum(e.amount for e in result.entries)
    assert result.closing_balance == 1_450
    assert result.totals == {
        "grant": 800,
        "usage": -250,
        "expiry": 0,
        "refund": 0,
        "adjustment": 0,
    }


def test_empty_statement_carries_the_balance(poor):
    credits_grant(user=poor, amount=40, idempotency_key="a")
    later = timezone.now() + timedelta(days=1)
    result = statement(user_id=poor.pk, start=later, end=later + timedelta(days=1))
    assert (result.opening_balance, result.closing_balance, result.entries) == (40, 40, [])
    empty = statement(
        user_id=poor.pk, start=later - timedelta(days=9), end=later - timedelta(days=8)
    )
    assert (empty.opening_balance, empty.closing_balance) == (0, 0)


def test_ledger_violations_name_the_account(funded, user, unit_price):
    assert ledger_violations() == []
    Account.objects.filter(pk=funded.pk).update(balance=9_999)
    problems = ledger_violations()
    assert {v.email for v in problems} == {"pobre@example.com"}
    assert "balance 9999 ≠ ledger sum 10000" in [v.problem for v in problems]
    Account.objects.filter(pk=funded.pk).update(balance=10_000, held=5)
    assert [v.problem for v in ledger_violations()] == ["held 5 ≠ open holds 0"]
    Account.objects.filter(pk=funded.pk).update(held=0)
    hold_create(user=funded, request_id="h", price=unit_price, prompt_tokens=1, max_tokens=1)
    Hold.objects.filter(request_id="h").update(status=Hold.Status.RELEASED)
    assert [v.problem for v in ledger_violations()] == ["held 2 ≠ open holds 0"]


def test_ledger_violations_catch_grant_remainders_out_of_range(funded):
    grant = Grant.objects.get(account=funded.account)
    with connection.cursor() as cursor:
        # The database's own check refuses this; switch it off to simulate a damaged row.
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER refuses pending FK checks
            cursor.execute("ALTER TABLE credits_grant DROP CONSTRAINT grant_remaining_not_negative")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        try:
            cursor.execute("UPDATE credits_grant SET remaining = -1 WHERE id = %s", [grant.pk])
        finally:
            if connection.vendor != "postgresql":
                cursor.execute("PRAGMA ignore_check_constraints = OFF")
    problems = [v.problem for v in ledger_violations()]
    assert f"grant {grant.pk} remainder -1 outside 0..10000" in problems
    assert "balance 10000 ≠ grants remaining -1 − debt 0" in problems
