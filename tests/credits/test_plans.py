"""Subscriptions, cycle renewal, plan changes, model prices and the beat tasks."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits import tasks
from credits.models import Grant, Hold, LedgerEntry, ModelPrice, Plan, Subscription
from credits.selectors import account_summary, ledger_violations
from credits.services import (
    add_months,
    credits_grant,
    cycles_renew,
    hold_create,
    model_price_set,
    subscription_change_plan,
    subscription_start,
)
from tests.factories import PlanFactory, UserFactory


def end_cycle(user, ago=timedelta(seconds=1)):
    end = timezone.now() - ago
    Subscription.objects.filter(user=user).update(
        cycle_start=end - timedelta(days=31), cycle_end=end
    )
    return end


def test_new_user_gets_the_default_plan_and_its_allowance(user, plan):
    subscription = user.subscription
    assert subscription.plan == plan
    assert subscription.cycle_end == add_months(subscription.cycle_start)
    grant = Grant.objects.get(account=user.account)
    assert (grant.source, grant.amount, grant.expires_at) == (
        "plan_cycle",
        100_000,
        subscription.cycle_end,
    )


def test_subscription_start_is_idempotent_and_refuses_unknown_plans(user):
    assert subscription_start(user=user) == user.subscription
    assert Grant.objects.filter(account=user.account).count() == 1
    with pytest.raises(ValidationError, match="nope"):
        Subscription.objects.filter(user=user).delete()
        subscription_start(user=user, plan_slug="nope")


def test_a_fresh_database_has_the_default_plan_and_new_users_get_it(db):
    """Made by migration 0005 (and again after a test flush, as after any migrate)."""
    default = Plan.objects.get(is_default=True)
    assert (default.slug, default.name, default.monthly_allowance) == ("padrao", "Padrão", 0)
    assert (default.all_models, default.requests_per_minute, default.active) == (True, 60, True)
    user = UserFactory(plan_slug=None)
    assert Subscription.objects.get(user=user).plan == default
    assert user.account.balance == 0
    assert not Grant.objects.filter(account=user.account).exists()


def test_renewal_expires_the_old_allowance_and_grants_the_new(user, plan):
    credits_grant(user=user, amount=50, idempotency_key="keep")
    old_end = end_cycle(user)
    assert cycles_renew() == 1
    subscription = Subscription.objects.get(user=user)
    assert subscription.cycle_start == old_end
    assert subscription.cycle_end == add_months(old_end)
    kinds = list(user.account.entries.order_by("id").values_list("kind", "amount"))
    assert kinds == [("grant", 100_000), ("grant", 50), ("expiry", -100_000), ("grant", 100_000)]
    user.account.refresh_from_db()
    assert user.account.balance == 100_050
    assert cycles_renew() == 0  # nothing due any more
    assert ledger_violations() == []


def test_renewal_after_missed_cycles_grants_once(user):
    end_cycle(user, ago=timedelta(days=100))
    assert cycles_renew() == 1
    assert Grant.objects.filter(account=user.account, source="plan_cycle").count() == 2
    subscription = Subscription.objects.get(user=user)
    assert subscription.cycle_start <= timezone.now() < subscription.cycle_end


def test_renewal_of_a_plan_without_allowance_grants_nothing(poor):
    end_cycle(poor)
    assert cycles_renew() == 1
    assert not Grant.objects.filter(account=poor.account).exists()


def test_renewal_at_a_given_moment_skips_cycles_not_due(user):
    end = user.subscription.cycle_end
    assert cycles_renew(now=end - timedelta(seconds=1)) == 0
    assert cycles_renew(now=end) == 1


def test_changing_plan_expires_old_plan_credits_and_starts_a_cycle(user, plan):
    pro = PlanFactory(slug="pro", monthly_allowance=500_000)
    credits_grant(user=user, amount=50, idempotency_key="keep")
    subscription = subscription_change_plan(user=user, plan=pro, changed_by=user)
    assert subscription.plan == pro
    summary = account_summary(user_id=user.pk)
    assert (summary.available, summary.plan) == (500_050, pro)
    assert ledger_violations() == []


def test_changing_plan_for_a_user_without_subscription(db):
    user = UserFactory(plan_slug=None)
    pro = PlanFactory(slug="pro", monthly_allowance=10)
    assert subscription_change_plan(user=user, plan=pro).plan == pro
    assert account_summary(user_id=user.pk).available == 10


def test_add_months_keeps_the_day_or_clamps_to_the_month_end():
    jan31 = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert add_months(jan31) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)
    assert add_months(jan31, 13) == datetime(2027, 2, 28, 12, tzinfo=UTC)


def test_model_price_set_creates_updates_and_validates(db):
    price = model_price_set(
        model="gpt-x", input_weight=Decimal("0.000001"), output_weight=Decimal(2)
    )
    assert (price.input_weight, price.active) == (Decimal("0.000001"), True)
    price = model_price_set(
        model="gpt-x",
        input_weight=Decimal(3),
        output_weight=Decimal(4),
        max_output_tokens=8,
        active=False,
    )
    price.refresh_from_db()
    assert (price.input_weight, price.output_weight, price.max_output_tokens, price.active) == (
        Decimal(3),
        Decimal(4),
        8,
        False,
    )
    assert ModelPrice.objects.count() == 1
    bad = [
        ({"input_weight": Decimal(0)}, "greater than zero"),
        ({"output_weight": Decimal("-1")}, "greater than zero"),
        ({"input_weight": Decimal("NaN")}, "greater than zero"),
        ({"input_weight": 1.5}, "greater than zero"),
        ({"input_weight": Decimal("0.0000001")}, "6"),
        ({"output_weight": Decimal("123456789")}, "8"),
        ({"max_output_tokens": 0}, "at least 1 token"),
        ({"model": " "}, "model name is required"),
    ]
    for change, message in bad:
        arguments = {"model": "gpt-y", "input_weight": Decimal(1), "output_weight": Decimal(1)}
        with pytest.raises(ValidationError, match=message):
            model_price_set(**{**arguments, **change})
    assert not ModelPrice.objects.filter(model="gpt-y").exists()


def test_beat_schedule_names_the_tasks():
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "credits.tasks.renew_cycles",
        "credits.tasks.expire_grants",
        "credits.tasks.reap_holds",
    } <= scheduled
    for name in scheduled:
        module, function = name.rsplit(".", 1)
        assert importlib.import_module(module) and hasattr(
            importlib.import_module(module), function
        )


def test_tasks_run_the_services(user, unit_price, settings):
    settings.SOLARIS_HOLD_MAX_AGE_SECONDS = 60
    now = timezone.now()
    credits_grant(user=user, amount=10, idempotency_key="s", expires_at=now + timedelta(hours=1))
    Grant.objects.filter(reason="", source="manual").update(expires_at=now)
    hold_create(
        user=user,
        request_id="stale",
        price=unit_price,
        prompt_tokens=1,
        max_tokens=1,
        now=now - timedelta(minutes=5),
    )
    end_cycle(user)
    assert tasks.expire_grants.apply().get() == 10
    assert tasks.reap_holds.apply().get() == 1
    assert tasks.renew_cycles.apply().get() == 1
    assert Hold.objects.get(request_id="stale").status == "released"
    assert LedgerEntry.objects.filter(account=user.account, kind="expiry").count() == 2
    assert ledger_violations() == []
