"""Subscriptions, cycle renewal, plan changes, model prices and the beat tasks."""

import calendar
import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

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
    cycle_boundary,
    cycles_renew,
    hold_create,
    model_price_set,
    subscription_change_plan,
    subscription_start,
)
from tests.factories import PlanFactory, UserFactory


def end_cycle(user, ago=timedelta(seconds=1)):
    """The user's cycle ended `ago`, and the cycles are anchored at that end."""
    end = timezone.now() - ago
    Subscription.objects.filter(user=user).update(
        cycle_anchor=end, cycle_start=end - timedelta(days=31), cycle_end=end
    )
    return end


def test_new_user_gets_the_default_plan_and_its_allowance(user, plan):
    subscription = user.subscription
    assert subscription.plan == plan
    assert subscription.cycle_anchor == subscription.cycle_start
    assert subscription.cycle_end == cycle_boundary(anchor=subscription.cycle_start, months=1)
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
    """Made by migration 0006 (and again after a test flush, as after any migrate)."""
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
    assert subscription.cycle_end == cycle_boundary(anchor=old_end, months=1)
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


LOCAL = ZoneInfo("America/Sao_Paulo")


def anchored(user, anchor: datetime) -> Subscription:
    Subscription.objects.filter(user=user).update(
        cycle_anchor=anchor, cycle_start=anchor, cycle_end=cycle_boundary(anchor=anchor, months=1)
    )
    return Subscription.objects.get(user=user)


def renew_through(user, years: int) -> list[date]:
    """Renew at the very end of each cycle for `years` years; the local start day of each cycle."""
    subscription = Subscription.objects.get(user=user)
    days = [timezone.localtime(subscription.cycle_start).date()]
    for _renewal in range(12 * years):
        assert cycles_renew(now=subscription.cycle_end) == 1
        previous_end = subscription.cycle_end
        subscription.refresh_from_db()
        assert subscription.cycle_start == previous_end  # no gap, no overlap
        days.append(timezone.localtime(subscription.cycle_start).date())
    return days


def expected_days(first: date, years: int) -> list[date]:
    """The anchor's day in every month, or that month's last day."""
    days = []
    for index in range(12 * years + 1):
        year, month = (
            first.year + (first.month - 1 + index) // 12,
            (first.month - 1 + index) % 12 + 1,
        )
        days.append(date(year, month, min(first.day, calendar.monthrange(year, month)[1])))
    return days


@pytest.mark.parametrize(
    "anchor",
    [
        datetime(2027, 1, 31, 12, 30, tzinfo=LOCAL),  # the 31st, over the leap year 2028
        datetime(2028, 2, 29, 8, 0, tzinfo=LOCAL),  # a leap day: the 29th, or February's last
        datetime(2027, 3, 30, 23, 59, tzinfo=LOCAL),  # the 30th, late in the (local) evening
    ],
)
def test_cycles_start_on_the_anchor_day_for_years(user, anchor, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    anchored(user, anchor)
    days = renew_through(user, years=5)
    assert days == expected_days(anchor.date(), years=5)
    subscription = Subscription.objects.get(user=user)
    assert timezone.localtime(subscription.cycle_start).time() == anchor.time()
    # Each cycle granted its allowance once, and it expires with the cycle.
    grants = Grant.objects.filter(account=user.account, source="plan_cycle").order_by("id")
    assert grants.count() == 1 + 12 * 5
    assert grants.last().expires_at == subscription.cycle_end
    assert ledger_violations() == []


def test_the_31st_goes_to_february_28_and_back_to_the_31st(user, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    subscription = anchored(user, datetime(2027, 1, 31, 9, 0, tzinfo=LOCAL))
    ends = []
    for _renewal in range(3):
        cycles_renew(now=subscription.cycle_end)
        subscription.refresh_from_db()
        ends.append(timezone.localtime(subscription.cycle_start).date())
    assert ends == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]


def test_missed_cycles_are_skipped_to_the_one_on_the_anchor_day(user, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    anchored(user, datetime(2027, 1, 31, 9, 0, tzinfo=LOCAL))
    assert cycles_renew(now=datetime(2027, 5, 15, tzinfo=LOCAL)) == 1
    subscription = Subscription.objects.get(user=user)
    assert timezone.localtime(subscription.cycle_start) == datetime(2027, 4, 30, 9, tzinfo=LOCAL)
    assert timezone.localtime(subscription.cycle_end) == datetime(2027, 5, 31, 9, tzinfo=LOCAL)
    assert Grant.objects.filter(account=user.account, source="plan_cycle").count() == 2


def test_a_plan_change_anchors_the_cycles_anew(user):
    pro = PlanFactory(slug="pro", monthly_allowance=500)
    before = timezone.now()
    subscription = subscription_change_plan(user=user, plan=pro)
    assert before <= subscription.cycle_anchor == subscription.cycle_start
    assert subscription.cycle_end == cycle_boundary(anchor=subscription.cycle_anchor, months=1)


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
