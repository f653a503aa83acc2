"""The rule book (credits/rules.py): the blocked line, the state, and every surface that computes
available and state in another way (the admin list's SQL columns) held to it."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice.selectors import used_percent_of, users_with_credits
from credits import rules
from credits.models import Account, Grant, Subscription
from credits.selectors import account_summary, blocked_line_of, blocked_lines
from credits.services import (
    InsufficientCredits,
    credits_grant,
    grants_expire,
    hold_create,
    hold_settle,
    model_price_set,
)
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory


def test_the_blocked_line_is_a_short_call_on_the_cheapest_model_the_plan_allows(db, settings):
    settings.SOLARIS_BLOCKED_PROMPT_TOKENS = 200
    settings.SOLARIS_MIN_ANSWER_TOKENS = 256
    ModelPriceFactory(model="cheap", input_weight="0.5", output_weight="1.5")  # 100 + 384
    ModelPriceFactory(model="dear", input_weight="2", output_weight="4")  # 400 + 1 024
    ModelPriceFactory(model="off", input_weight="0.01", output_weight="0.01", active=False)
    everything = PlanFactory(slug="tudo", all_models=True)
    dear_only = PlanFactory(slug="caro", all_models=False, allowed_models=["dear", "off"])
    nothing = PlanFactory(slug="nada", all_models=False, allowed_models=["unknown"])
    closed = PlanFactory(slug="fechado", all_models=True, active=False)
    assert blocked_line_of(plan=everything) == 484
    assert blocked_line_of(plan=dear_only) == 1_424
    assert blocked_line_of(plan=nothing) == 1  # no model: blocked only with nothing available
    assert blocked_line_of(plan=closed) == 1
    lines = blocked_lines()
    assert (lines[everything.pk], lines[dear_only.pk], lines[nothing.pk]) == (484, 1_424, 1)
    settings.SOLARIS_BLOCKED_PROMPT_TOKENS = 1
    settings.SOLARIS_MIN_ANSWER_TOKENS = 1
    assert rules.blocked_line(weights=[(Decimal("0.1"), Decimal("0.1"))]) == 1  # ceil(0.2)


def test_the_line_is_rounded_up_like_a_call(settings):
    settings.SOLARIS_BLOCKED_PROMPT_TOKENS = 3
    settings.SOLARIS_MIN_ANSWER_TOKENS = 1
    assert rules.blocked_line(weights=[(Decimal("0.5"), Decimal("0.25"))]) == 2  # ceil(1.75)


def test_state_boundaries(settings):
    settings.SOLARIS_ALERT_THRESHOLD = 80
    state = rules.credit_state
    assert state(available=456, used_percent=Decimal("79.99"), blocked_line=456) == "normal"
    assert state(available=456, used_percent=Decimal("80"), blocked_line=456) == "alert"
    assert state(available=455, used_percent=Decimal("0"), blocked_line=456) == "blocked"
    assert state(available=-5, used_percent=Decimal("0"), blocked_line=1) == "blocked"


def test_available_counts_debt_holds_and_what_expired_grants_keep():
    assert rules.available(left=100, expired_left=0, held=30, debt=0) == 70
    assert rules.available(left=100, expired_left=0, held=0, debt=40) == 60
    # 80 held, 20 left on the active grants: the expired ones keep 60 of their 90 for the holds.
    assert rules.available(left=20, expired_left=90, held=80, debt=0) == 0
    assert rules.available(left=20, expired_left=10, held=80, debt=0) == -50


def test_refusal_tells_a_blocked_account_from_a_request_too_large(poor, unit_price):
    credits_grant(user=poor, amount=1_000, idempotency_key="fund")
    with pytest.raises(InsufficientCredits) as large:
        hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=900, max_tokens=300)
    assert (large.value.available, large.value.blocked) == (1_000, False)
    hold_create(user=poor, request_id="r2", price=unit_price, prompt_tokens=0, max_tokens=600)
    hold_settle(request_id="r2", prompt_tokens=0, completion_tokens=600)
    with pytest.raises(InsufficientCredits) as exhausted:
        hold_create(user=poor, request_id="r3", price=unit_price, prompt_tokens=200, max_tokens=300)
    assert (exhausted.value.available, exhausted.value.blocked) == (400, True)
    assert account_summary(user_id=poor.pk).state == "blocked"


def _random_account(rng: random.Random, user, price, now) -> None:
    """Grants with and without expiry, calls held and settled (some beyond their hold, into debt),
    expiries booked while calls hold credits, and expiries not booked yet."""
    for number in range(rng.randint(0, 4)):
        expires = rng.choice([None, now + timedelta(hours=rng.randint(1, 48))])
        credits_grant(
            user=user,
            amount=rng.randint(1, 3_000),
            idempotency_key=f"{user.pk}-g{number}",
            expires_at=expires,
        )
    for number in range(rng.randint(0, 5)):
        request_id = f"{user.pk}-{number}"
        try:
            hold_create(
                user=user,
                request_id=request_id,
                price=price,
                prompt_tokens=rng.randint(0, 300),
                max_tokens=rng.randint(1, 900),
            )
        except InsufficientCredits:
            continue
        if rng.random() < 0.6:
            hold_settle(
                request_id=request_id,
                prompt_tokens=rng.randint(0, 300),
                completion_tokens=rng.randint(0, 1_200),
            )
    if rng.random() < 0.5:
        grants = list(Grant.objects.filter(account_id=user.pk, remaining__gt=0))
        if grants:
            Grant.objects.filter(pk=rng.choice(grants).pk).update(
                expires_at=now - timedelta(seconds=1)
            )
            if rng.random() < 0.5:
                grants_expire()


@pytest.mark.parametrize("seed", range(4))
def test_the_admin_columns_are_the_rules(db, seed, settings):
    """users_with_credits (SQL, one query for the list, the dashboard and /metrics) agrees with
    account_summary (Python) on available, used percent and state for every account."""
    rng = random.Random(seed)
    settings.SOLARIS_ALERT_THRESHOLD = rng.choice([50, 80])
    now = timezone.now()
    prices = [
        ModelPriceFactory(model="unit", input_weight="1", output_weight="1"),
        ModelPriceFactory(model="half", input_weight="0.5", output_weight="0.5"),
        ModelPriceFactory(model="dear", input_weight="3", output_weight="2.5"),
    ]
    PlanFactory(slug="padrao-teste", monthly_allowance=rng.choice([0, 2_000]), is_default=True)
    PlanFactory(slug="caro", monthly_allowance=1_000, all_models=False, allowed_models=["dear"])
    PlanFactory(slug="vazio", monthly_allowance=0)
    users = []
    for _user in range(12):
        user = UserFactory(plan_slug=rng.choice([None, "caro", "vazio"]))
        if rng.random() < 0.2:
            Subscription.objects.filter(user=user).delete()  # on the default plan
        _random_account(rng, user, rng.choice(prices), now)
        users.append(user)
    if rng.random() < 0.5:  # a price edit moves every line
        model_price_set(model="half", input_weight=Decimal(2), output_weight=Decimal(2))
    columns = {user.pk: user for user in users_with_credits().filter(pk__in=[u.pk for u in users])}
    states = set()
    for user in users:
        summary = account_summary(user_id=user.pk)
        row = columns[user.pk]
        assert (row.credits_available, used_percent_of(row.used_bp), row.credit_state) == (
            summary.available,
            summary.used_percent,
            summary.state,
        ), user.pk
        states.add(summary.state)
    assert Account.State.BLOCKED in states
