"""Grants, purchases and refunds: idempotent, exact, and leaving the ledger consistent."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits.models import Grant, LedgerEntry, Purchase
from credits.selectors import account_summary, ledger_violations
from credits.services import (
    credits_grant,
    hold_create,
    purchase_cancel,
    purchase_confirm,
    purchase_refund,
    purchase_request,
)
from tests.factories import CreditPackageFactory, UserFactory

# Every rule here holds through the SQL fast path and through the ORM (tests/credits/conftest.py).
pytestmark = pytest.mark.usefixtures("both_paths")


def balance(user) -> int:
    user.account.refresh_from_db()
    return user.account.balance


def test_grant_adds_credits_and_one_ledger_entry(poor, user):
    grant = credits_grant(
        user=poor, amount=500, idempotency_key="k1", reason="welcome", created_by=user
    )
    assert (grant.amount, grant.remaining, grant.source) == (500, 500, Grant.Source.MANUAL)
    entry = LedgerEntry.objects.get(account=poor.account)
    assert (entry.kind, entry.amount, entry.balance_after) == ("grant", 500, 500)
    assert (entry.created_by, entry.reason, entry.grant) == (user, "welcome", grant)
    assert balance(poor) == 500
    assert ledger_violations() == []


def test_same_key_twice_grants_once(poor):
    first = credits_grant(user=poor, amount=500, idempotency_key="same")
    again = credits_grant(user=poor, amount=500, idempotency_key="same")
    assert again == first
    assert Grant.objects.filter(account=poor.account).count() == 1
    assert balance(poor) == 500


def test_same_key_with_another_amount_or_user_is_refused(poor, user):
    credits_grant(user=poor, amount=500, idempotency_key="same")
    with pytest.raises(ValidationError, match="already used for a different grant"):
        credits_grant(user=poor, amount=501, idempotency_key="same")
    with pytest.raises(ValidationError, match="already used for a different grant"):
        credits_grant(user=user, amount=500, idempotency_key="same")
    assert balance(poor) == 500
    assert balance(user) == 100_000


@pytest.mark.parametrize("amount", [0, -5, "10", 1.5, True])
def test_grant_refuses_amounts_that_are_not_positive_integers(poor, amount):
    with pytest.raises(ValidationError, match="positive number of credits"):
        credits_grant(user=poor, amount=amount, idempotency_key=f"bad-{amount}")
    assert not LedgerEntry.objects.filter(account=poor.account).exists()


def test_grant_refuses_missing_key_past_expiry_and_foreign_sources(poor):
    with pytest.raises(ValidationError, match="idempotency key is required"):
        credits_grant(user=poor, amount=1, idempotency_key=" ")
    with pytest.raises(ValidationError, match="expiry must be in the future"):
        credits_grant(
            user=poor, amount=1, idempotency_key="p", expires_at=timezone.now() - timedelta(1)
        )
    with pytest.raises(ValidationError, match="their own services"):
        credits_grant(user=poor, amount=1, idempotency_key="q", source=Grant.Source.PLAN_CYCLE)
    assert balance(poor) == 0


def test_promo_grant_with_expiry(poor):
    expires = timezone.now() + timedelta(days=7)
    grant = credits_grant(
        user=poor, amount=70, idempotency_key="promo", source=Grant.Source.PROMO, expires_at=expires
    )
    assert (grant.source, grant.expires_at) == ("promo", expires)


def test_purchase_lifecycle_requested_credited(poor, user):
    package = CreditPackageFactory(credits=5_000, price_cents=1_990, validity_days=30)
    purchase = purchase_request(user=poor, idempotency_key="buy-1", package=package)
    assert (purchase.status, purchase.credits, purchase.price_cents) == ("requested", 5_000, 1_990)
    assert balance(poor) == 0
    purchase = purchase_confirm(purchase=purchase, confirmed_by=user, payment_reference="pix-123")
    assert purchase.paid_at is not None
    assert (purchase.status, purchase.confirmed_by, purchase.payment_reference) == (
        "credited",
        user,
        "pix-123",
    )
    grant = purchase.grant
    assert (grant.source, grant.amount, grant.purchase) == ("purchase", 5_000, purchase)
    assert grant.expires_at - grant.created_at == timedelta(days=30)  # from crediting
    assert balance(poor) == 5_000
    assert ledger_violations() == []


def test_confirming_twice_grants_once(poor, user):
    purchase = purchase_request(user=poor, idempotency_key="buy", credits=300, price_cents=100)
    purchase_confirm(purchase=purchase, confirmed_by=user)
    purchase_confirm(purchase=purchase, confirmed_by=user)
    assert Grant.objects.filter(purchase=purchase).count() == 1
    assert balance(poor) == 300


def test_purchase_request_key_is_idempotent_and_refuses_a_different_purchase(poor, user):
    first = purchase_request(user=poor, idempotency_key="req", credits=300, price_cents=100)
    assert purchase_request(user=poor, idempotency_key="req", credits=300, price_cents=100) == first
    with pytest.raises(ValidationError, match="different purchase"):
        purchase_request(user=poor, idempotency_key="req", credits=301, price_cents=100)
    with pytest.raises(ValidationError, match="different purchase"):
        purchase_request(user=user, idempotency_key="req", credits=300, price_cents=100)
    assert Purchase.objects.count() == 1


def test_purchase_request_refuses_bad_input(poor):
    with pytest.raises(ValidationError, match="not on sale"):
        purchase_request(user=poor, idempotency_key="a", package=CreditPackageFactory(active=False))
    with pytest.raises(ValidationError, match="positive number"):
        purchase_request(user=poor, idempotency_key="b", credits=0, price_cents=1)
    with pytest.raises(ValidationError, match="price must be zero or more"):
        purchase_request(user=poor, idempotency_key="c", credits=10)
    with pytest.raises(ValidationError, match="idempotency key is required"):
        purchase_request(user=poor, idempotency_key="", credits=10, price_cents=1)
    assert not Purchase.objects.exists()


def test_cancel_only_before_credit(poor, user):
    purchase = purchase_request(user=poor, idempotency_key="x", credits=10, price_cents=1)
    assert purchase_cancel(purchase=purchase, cancelled_by=user).status == "cancelled"
    assert purchase_cancel(purchase=purchase, cancelled_by=user).status == "cancelled"
    with pytest.raises(ValidationError, match="cannot be confirmed"):
        purchase_confirm(purchase=purchase, confirmed_by=user)
    with pytest.raises(ValidationError, match="Only a credited purchase"):
        purchase_refund(purchase=purchase, refunded_by=user)
    credited = purchase_request(user=poor, idempotency_key="y", credits=10, price_cents=1)
    purchase_confirm(purchase=credited, confirmed_by=user)
    with pytest.raises(ValidationError, match="not yet credited"):
        purchase_cancel(purchase=credited, cancelled_by=user)
    assert balance(poor) == 10


def test_refund_takes_back_what_is_left_of_the_grant(poor, user, unit_price):
    from credits.services import hold_settle

    purchase = purchase_request(user=poor, idempotency_key="r", credits=1_000, price_cents=500)
    purchase_confirm(purchase=purchase, confirmed_by=user)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=100, max_tokens=200)
    hold_settle(request_id="r1", prompt_tokens=100, completion_tokens=150)
    purchase = purchase_refund(purchase=purchase, refunded_by=user, reason="chargeback")
    assert purchase.status == "refunded"
    refund = LedgerEntry.objects.get(kind="refund")
    assert (refund.amount, refund.purchase, refund.reason, refund.created_by) == (
        -750,
        purchase,
        "chargeback",
        user,
    )
    assert Grant.objects.get(purchase=purchase).remaining == 0
    assert balance(poor) == 0
    purchase_refund(purchase=purchase, refunded_by=user)
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert ledger_violations() == []


def test_refund_is_refused_while_calls_hold_those_credits(poor, user, unit_price):
    purchase = purchase_request(user=poor, idempotency_key="r", credits=1_000, price_cents=500)
    purchase_confirm(purchase=purchase, confirmed_by=user)
    hold_create(user=poor, request_id="r1", price=unit_price, prompt_tokens=100, max_tokens=300)
    with pytest.raises(ValidationError, match="Calls in progress"):
        purchase_refund(purchase=purchase, refunded_by=user)
    purchase.refresh_from_db()
    assert purchase.status == "credited"
    assert account_summary(user_id=poor.pk).available == 600


def test_refund_of_an_expired_purchase_takes_nothing(poor, user):
    purchase = purchase_request(user=poor, idempotency_key="r", credits=100, price_cents=5)
    now = timezone.now()
    purchase_confirm(purchase=purchase, confirmed_by=user, now=now)
    Grant.objects.filter(purchase=purchase).update(expires_at=now + timedelta(days=1))
    purchase_refund(purchase=purchase, refunded_by=user, now=now + timedelta(days=2))
    kinds = list(poor.account.entries.order_by("id").values_list("kind", "amount"))
    assert kinds == [("grant", 100), ("expiry", -100)]
    assert ledger_violations() == []


def test_users_have_separate_accounts(poor):
    other = UserFactory(plan_slug="vazio")
    credits_grant(user=other, amount=5, idempotency_key="o")
    assert balance(poor) == 0
    assert balance(other) == 5


def test_adjustment_takes_credits_back_once_and_never_below_what_is_held(poor, user, unit_price):
    from credits.services import credits_adjust

    soon = credits_grant(
        user=poor, amount=100, idempotency_key="s", expires_at=timezone.now() + timedelta(days=1)
    )
    never = credits_grant(user=poor, amount=100, idempotency_key="n")
    entry = credits_adjust(
        user=poor, amount=-150, idempotency_key="fix-1", reason="duplicated top-up", created_by=user
    )
    assert (entry.kind, entry.amount, entry.balance_after, entry.created_by) == (
        "adjustment",
        -150,
        50,
        user,
    )
    assert credits_adjust(user=poor, amount=-150, idempotency_key="fix-1", reason="again") == entry
    remaining = dict(Grant.objects.filter(account=poor.account).values_list("pk", "remaining"))
    assert remaining == {soon.pk: 0, never.pk: 50}
    hold_create(user=poor, request_id="r", price=unit_price, prompt_tokens=10, max_tokens=10)
    with pytest.raises(ValidationError, match="Only 30 credits"):
        credits_adjust(user=poor, amount=-31, idempotency_key="fix-2", reason="x")
    bad = [
        ({"amount": 5}, "must be negative"),
        ({"amount": -1, "reason": " "}, "needs a reason"),
        ({"amount": -2, "idempotency_key": "fix-1"}, "different adjustment"),
    ]
    for change, message in bad:
        arguments = {"user": poor, "amount": -1, "idempotency_key": "fix-3", "reason": "r"}
        with pytest.raises(ValidationError, match=message):
            credits_adjust(**{**arguments, **change})
    assert balance(poor) == 50
    assert ledger_violations() == []
