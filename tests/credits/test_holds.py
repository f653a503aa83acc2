"""Admission (hold), settlement, release, expiry order, debt and the hold reaper."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits.models import Grant, Hold, LedgerEntry
from credits.selectors import account_summary, ledger_violations
from credits.services import (
    InsufficientCredits,
    credits_grant,
    grants_expire,
    hold_create,
    hold_release,
    hold_settle,
    hold_settle_summarised,
    holds_reap,
)
from tests.factories import ModelPriceFactory

# Every rule here holds through the SQL fast path and through the ORM (tests/credits/conftest.py).
pytestmark = pytest.mark.usefixtures("both_paths")


def account(user):
    user.account.refresh_from_db()
    return user.account


def fund(user, amount, key="fund", **kwargs):
    return credits_grant(user=user, amount=amount, idempotency_key=key, **kwargs)


def test_hold_reserves_the_worst_case(poor, price):
    fund(poor, 10_000)
    admission = hold_create(
        user=poor, request_id="r1", price=price, prompt_tokens=100, max_tokens=1_000
    )
    assert admission.max_tokens == 1_000 and not admission.clamped
    assert admission.hold.amount == 3_150  # 100 × 1.5 + 1 000 × 3
    admission.hold.refresh_from_db()
    assert (admission.hold.input_weight, admission.hold.output_weight) == (
        Decimal("1.5"),
        Decimal("3"),
    )
    assert (account(poor).held, account(poor).available) == (3_150, 6_850)
    assert account_summary(user_id=poor.pk).available == 6_850
    assert ledger_violations() == []


def test_n_choices_multiply_the_worst_case(poor, unit_price):
    fund(poor, 1_000)
    admission = hold_create(
        user=poor, request_id="r", price=unit_price, prompt_tokens=10, max_tokens=100, n=3
    )
    assert admission.hold.amount == 310


def test_clamping_lowers_max_tokens_to_what_fits(poor, price, settings):
    settings.SOLARIS_MIN_ANSWER_TOKENS = 256
    fund(poor, 1_000)
    admission = hold_create(
        user=poor, request_id="r1", price=price, prompt_tokens=100, max_tokens=4_096
    )
    # 150 for the prompt leaves 850, i.e. 283 answer tokens at 3 credits each.
    assert (admission.max_tokens, admission.clamped, admission.hold.amount) == (283, True, 999)
    assert account(poor).available == 1


def test_refused_when_only_less_than_the_minimum_answer_fits(poor, price, settings):
    settings.SOLARIS_MIN_ANSWER_TOKENS = 256
    fund(poor, 900)  # 150 for the prompt, room for 250 answer tokens only
    with pytest.raises(InsufficientCredits) as refused:
        hold_create(user=poor, request_id="r1", price=price, prompt_tokens=100, max_tokens=4_096)
    assert (refused.value.available, refused.value.needed) == (900, 12_438)
    assert not Hold.objects.exists()
    assert account(poor).held == 0


def test_small_request_that_does_not_fit_is_refused_not_clamped(poor, unit_price, settings):
    settings.SOLARIS_MIN_ANSWER_TOKENS = 256
    fund(poor, 120)
    with pytest.raises(InsufficientCredits):
        hold_create(user=poor, request_id="r", price=unit_price, prompt_tokens=100, max_tokens=50)
    admission = hold_create(
        user=poor, request_id="r2", price=unit_price, prompt_tokens=100, max_tokens=20
    )
    assert admission.hold.amount == 120 and not admission.clamped


def test_empty_account_is_refused(poor, price):
    with pytest.raises(InsufficientCredits) as refused:
        hold_create(user=poor, request_id="r", price=price, prompt_tokens=1, max_tokens=1)
    assert refused.value.available == 0


def test_hold_refuses_bad_token_counts_and_reused_request_ids(poor, unit_price):
    fund(poor, 1_000)
    for prompt, max_tokens, n in [(-1, 10, 1), (1, 0, 1), (1, 10, 0)]:
        with pytest.raises(ValidationError, match="at least 1 answer token"):
            hold_create(
                user=poor,
                request_id="bad",
                price=unit_price,
                prompt_tokens=prompt,
                max_tokens=max_tokens,
                n=n,
            )
    hold_create(user=poor, request_id="r", price=unit_price, prompt_tokens=1, max_tokens=1)
    with pytest.raises(ValidationError, match="already admitted"):
        hold_create(user=poor, request_id="r", price=unit_price, prompt_tokens=1, max_tokens=1)
    assert account(poor).held == 2


def test_settle_books_the_real_cost_once(poor, price):
    fund(poor, 10_000)
    hold_create(user=poor, request_id="r1", price=price, prompt_tokens=100, max_tokens=1_000)
    entry = hold_settle(request_id="r1", prompt_tokens=100, completion_tokens=201)
    assert (entry.kind, entry.amount, entry.flagged, entry.reason) == (
        "usage",
        -753,
        False,
        "gpt-test",
    )
    assert entry.balance_after == 9_247
    again = hold_settle(request_id="r1", prompt_tokens=100, completion_tokens=999)
    assert again == entry
    assert (account(poor).balance, account(poor).held) == (9_247, 0)
    hold = Hold.objects.get(request_id="r1")
    assert hold.status == "settled" and hold.closed_at is not None
    assert ledger_violations() == []


def test_the_real_cost_is_rounded_up(poor):
    price = ModelPriceFactory(model="fraction", input_weight="0.5", output_weight="0.25")
    fund(poor, 100)
    hold_create(user=poor, request_id="r1", price=price, prompt_tokens=3, max_tokens=10)
    entry = hold_settle(request_id="r1", prompt_tokens=3, completion_tokens=1)  # 1.75
    assert (entry.amount, entry.balance_after) == (-2, 98)
    assert ledger_violations() == []


def test_settle_uses_the_weights_quoted_at_admission(poor, price):
    fund(poor, 10_000)
    hold_create(user=poor, request_id="r1", price=price, prompt_tokens=10, max_tokens=10)
    price.input_weight = Decimal("100")
    price.save()
    assert hold_settle(request_id="r1", prompt_tokens=10, completion_tokens=10).amount == -45


def test_settle_of_nothing_produced_charges_nothing(poor, price):
    fund(poor, 1_000)
    hold_create(user=poor, request_id="r1", price=price, prompt_tokens=10, max_tokens=10)
    assert hold_settle(request_id="r1", prompt_tokens=0, completion_tokens=0) is None
    assert Hold.objects.get(request_id="r1").status == "settled"
    assert (account(poor).balance, account(poor).held) == (1_000, 0)


def test_release_frees_the_hold_and_charges_nothing(poor, price):
    fund(poor, 1_000)
    hold_create(user=poor, request_id="r1", price=price, prompt_tokens=10, max_tokens=100)
    hold_release(request_id="r1")
    hold_release(request_id="r1")
    assert Hold.objects.get(request_id="r1").status == "released"
    assert (account(poor).balance, account(poor).held, account(poor).available) == (1_000, 0, 1_000)
    assert not LedgerEntry.objects.filter(kind="usage").exists()


def test_unknown_request_id_is_an_error(db):
    with pytest.raises(Hold.DoesNotExist):
        hold_settle(request_id="nope", prompt_tokens=1, completion_tokens=1)


def test_cost_above_the_hold_is_booked_exactly_flagged_and_becomes_debt(poor, unit_price):
    fund(poor, 100)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=10, max_tokens=90)
    entry = hold_settle(request_id="r1", prompt_tokens=10, completion_tokens=140)
    assert (entry.amount, entry.flagged, entry.balance_after) == (-150, True, -50)
    acc = account(poor)
    assert (acc.balance, acc.debt, acc.held) == (-50, 50, 0)
    assert account_summary(user_id=poor.pk).state == "blocked"
    assert ledger_violations() == []


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (("3", "3"), 3 * 10 + 3 * 20),  # the model that answered costs more: its price
        (("0.5", "0.5"), 10 + 20),  # it costs less: the admitted price
        (("0.1", "5"), 1 + 5 * 20),  # the higher total, not each higher weight (110)
    ],
)
def test_a_call_answered_by_another_model_costs_the_higher_price(
    poor, unit_price, weights, expected
):
    fund(poor, 1_000)
    hold = hold_create(
        user=poor, request_id="r1", price=unit_price, prompt_tokens=10, max_tokens=20
    )
    answered = ModelPriceFactory(model="dearer", input_weight=weights[0], output_weight=weights[1])
    settled = hold_settle_summarised(
        request_id="r1", prompt_tokens=10, completion_tokens=20, answered_by=answered
    )
    assert -settled.entry.amount == expected
    assert settled.entry.flagged == (expected > hold.hold.amount)
    assert settled.entry.reason == f"{unit_price.model} → dearer"
    assert account(poor).balance == 1_000 - expected
    assert ledger_violations() == []


def test_debt_is_repaid_from_the_next_grant(poor, unit_price):
    fund(poor, 100)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=10, max_tokens=90)
    hold_settle(request_id="r1", prompt_tokens=10, completion_tokens=140)
    grant = fund(poor, 500, key="next")
    assert (grant.amount, grant.remaining) == (500, 450)
    acc = account(poor)
    assert (acc.balance, acc.debt, acc.available) == (450, 0, 450)
    assert account_summary(user_id=poor.pk).available == 450
    small = fund(poor, 10, key="small")
    assert small.remaining == 10
    assert ledger_violations() == []


def test_debt_larger_than_a_grant_eats_it_whole(poor, unit_price):
    fund(poor, 10)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=5, max_tokens=5)
    hold_settle(request_id="r1", prompt_tokens=5, completion_tokens=100)
    grant = fund(poor, 50, key="next")
    assert grant.remaining == 0
    assert (account(poor).debt, account(poor).balance) == (45, -45)
    assert ledger_violations() == []


def test_spending_draws_from_the_grant_that_expires_first(poor, unit_price):
    now = timezone.now()
    never = fund(poor, 100, key="never")
    late = fund(poor, 100, key="late", expires_at=now + timedelta(days=20))
    soon = fund(poor, 100, key="soon", expires_at=now + timedelta(days=5))
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=50, max_tokens=100)
    hold_settle(request_id="r1", prompt_tokens=50, completion_tokens=80)  # 130
    remaining = {g.pk: g.remaining for g in Grant.objects.filter(account=poor.account)}
    assert remaining == {soon.pk: 0, late.pk: 70, never.pk: 100}
    hold_create(user=poor, request_id="r2", price=unit_price, prompt_tokens=50, max_tokens=100)
    hold_settle(request_id="r2", prompt_tokens=50, completion_tokens=50)  # 100
    remaining = {g.pk: g.remaining for g in Grant.objects.filter(account=poor.account)}
    assert remaining == {soon.pk: 0, late.pk: 0, never.pk: 70}


def test_expired_grants_cannot_be_spent(poor, unit_price):
    now = timezone.now()
    fund(poor, 100, key="soon", expires_at=now + timedelta(hours=1))
    later = now + timedelta(hours=2)
    with pytest.raises(InsufficientCredits):
        hold_create(
            user=poor, request_id="r", price=unit_price, prompt_tokens=1, max_tokens=1, now=later
        )
    # The refusal rolls its transaction back; the beat task books the expiry.
    assert not LedgerEntry.objects.filter(kind="expiry").exists()
    assert grants_expire(now=later) == 100
    expiry = LedgerEntry.objects.get(kind="expiry")
    assert (expiry.amount, expiry.balance_after, expiry.created_at) == (-100, 0, later)


def test_summary_counts_an_expiry_not_booked_yet(poor):
    grant = fund(poor, 100, key="soon", expires_at=timezone.now() + timedelta(hours=1))
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert account(poor).balance == 100  # not booked yet
    summary = account_summary(user_id=poor.pk)
    assert (summary.available, summary.state) == (0, "blocked")
    assert grants_expire() == 100
    assert account(poor).balance == 0


def test_expiry_waits_for_the_calls_admitted_before_it(poor, unit_price):
    """A grant that expires while a call holds its credits keeps just what the call needs."""
    now = timezone.now()
    fund(poor, 100, key="soon", expires_at=now + timedelta(hours=1))
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=30, max_tokens=50)
    later = now + timedelta(hours=2)
    assert grants_expire(now=later) == 20
    acc = account(poor)
    assert (acc.balance, acc.held, acc.available) == (80, 80, 0)
    assert ledger_violations() == []
    with pytest.raises(InsufficientCredits):
        hold_create(
            user=poor, request_id="r2", price=unit_price, prompt_tokens=1, max_tokens=1, now=later
        )
    hold_settle(request_id="r1", prompt_tokens=30, completion_tokens=20, now=later)
    acc = account(poor)
    assert (acc.balance, acc.held, acc.debt) == (0, 0, 0)
    amounts = list(poor.account.entries.order_by("id").values_list("kind", "amount"))
    assert amounts == [("grant", 100), ("expiry", -20), ("usage", -50), ("expiry", -30)]
    assert ledger_violations() == []


def test_released_hold_lets_the_reserved_credits_expire(poor, unit_price):
    now = timezone.now()
    fund(poor, 100, key="soon", expires_at=now + timedelta(hours=1))
    fund(poor, 30, key="never")
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=30, max_tokens=50)
    later = now + timedelta(hours=2)
    assert grants_expire(now=later) == 50  # 30 of the 80 held are covered by the other grant
    assert account(poor).available == 0
    hold_release(request_id="r1", now=later)
    assert (account(poor).balance, account(poor).available) == (30, 30)
    assert ledger_violations() == []


def test_a_call_settled_after_the_reaper_released_it_is_still_charged(poor, unit_price):
    fund(poor, 100)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=10, max_tokens=10)
    hold_release(request_id="r1")
    entry = hold_settle(request_id="r1", prompt_tokens=10, completion_tokens=5)
    assert (entry.amount, entry.flagged) == (-15, True)
    assert Hold.objects.get(request_id="r1").status == "settled"
    assert (account(poor).balance, account(poor).held) == (85, 0)
    assert hold_settle(request_id="r1", prompt_tokens=10, completion_tokens=5) == entry
    hold_create(user=poor, request_id="r2", price=unit_price, prompt_tokens=10, max_tokens=10)
    hold_release(request_id="r2")
    assert hold_settle(request_id="r2", prompt_tokens=0, completion_tokens=0) is None
    assert Hold.objects.get(request_id="r2").status == "released"
    assert ledger_violations() == []


def test_reaper_releases_only_old_open_holds(poor, unit_price, settings):
    settings.SOLARIS_HOLD_MAX_AGE_SECONDS = 900
    fund(poor, 1_000)
    now = timezone.now()
    hold_create(
        user=poor,
        request_id="old",
        price=unit_price,
        prompt_tokens=1,
        max_tokens=9,
        now=now - timedelta(seconds=901),
    )
    hold_create(user=poor, request_id="young", price=unit_price, prompt_tokens=1, max_tokens=9)
    assert holds_reap() == 1
    statuses = dict(Hold.objects.values_list("request_id", "status"))
    assert statuses == {"old": "released", "young": "open"}
    assert account(poor).held == 10
    assert holds_reap(max_age_seconds=0, now=now + timedelta(seconds=1)) == 1
    assert account(poor).held == 0
    assert ledger_violations() == []


def test_inactive_price_still_quotes_its_weights(poor):
    # Whether a model is served is the proxy's decision; the hold only records the quote.
    price = ModelPriceFactory(model="old", input_weight="2", output_weight="2", active=False)
    fund(poor, 100)
    assert (
        hold_create(
            user=poor, request_id="r", price=price, prompt_tokens=1, max_tokens=1
        ).hold.amount
        == 4
    )


def test_a_new_grant_frees_credits_kept_for_holds(poor, unit_price):
    """Found by the state machine: after renewal the kept credits must not linger."""
    now = timezone.now()
    fund(poor, 100, key="soon", expires_at=now + timedelta(hours=1))
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=1, max_tokens=1)
    later = now + timedelta(hours=2)
    assert grants_expire(now=later) == 98
    fund(poor, 1_000, key="new", now=later)
    acc = account(poor)
    assert (acc.balance, acc.held, acc.available) == (1_000, 2, 998)
    assert account_summary(user_id=poor.pk).available == 998
    assert ledger_violations() == []
