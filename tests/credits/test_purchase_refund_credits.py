"""Taking back exactly the credits a refund returned the money for: from what is left of the
purchase's grant, the rest as debt; once per key; the ledger check clean after each."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits.models import Account, Grant, LedgerEntry, Purchase
from credits.selectors import account_summary, ledger_violations
from credits.services import (
    credits_grant,
    hold_create,
    hold_settle,
    purchase_confirm,
    purchase_refund,
    purchase_refund_credits,
    purchase_request,
)


def bought(user, *, credits: int = 100_000, method: str = Purchase.Method.ONLINE) -> Purchase:
    purchase = purchase_request(
        user=user,
        idempotency_key=uuid.uuid4().hex,
        credits=credits,
        price_cents=4_990,
        method=method,
    )
    return purchase_confirm(purchase=purchase, confirmed_by=None)


def spend(user, price, amount: int) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    hold_create(user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount)
    hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)


def account(user) -> Account:
    return Account.objects.get(pk=user.pk)


@pytest.fixture(autouse=True)
def ledger_clean(db):
    yield
    assert ledger_violations() == []


def test_pro_rata_takes_back_exactly_the_credits_quoted(poor, user, unit_price):
    purchase = bought(poor)
    spend(poor, unit_price, 30_000)
    purchase = purchase_refund_credits(
        purchase=purchase,
        credits=70_000,
        refunded_by=user,
        idempotency_key="r1",
        reason="pro rata",
    )
    assert purchase.status == "refunded"
    (entry,) = LedgerEntry.objects.filter(kind="refund")
    assert (entry.amount, entry.purchase, entry.created_by, entry.reason) == (
        -70_000,
        purchase,
        user,
        "pro rata",
    )
    assert Grant.objects.get(purchase=purchase).remaining == 0
    assert (account(poor).balance, account(poor).debt) == (0, 0)


def test_credits_spent_after_the_quote_become_debt_exactly(poor, user, unit_price):
    """Quoted at 70 000 unspent, the person spent 5 000 more before the provider confirmed: the
    money paid back 70 000 credits, so 70 000 are taken back, 5 000 of them as debt."""
    purchase = bought(poor)
    spend(poor, unit_price, 35_000)
    purchase_refund_credits(
        purchase=purchase, credits=70_000, refunded_by=None, idempotency_key="r1"
    )
    assert [e.amount for e in LedgerEntry.objects.filter(kind="refund")] == [-70_000]
    assert (account(poor).balance, account(poor).debt) == (-5_000, 5_000)
    assert account_summary(user_id=poor.pk).available == -5_000


def test_a_full_refund_books_the_spent_part_as_debt_paid_by_the_next_grant(poor, user, unit_price):
    purchase = bought(poor)
    spend(poor, unit_price, 40_000)
    purchase_refund_credits(
        purchase=purchase, credits=100_000, refunded_by=user, idempotency_key="full"
    )
    assert [e.amount for e in LedgerEntry.objects.filter(kind="refund")] == [-100_000]
    assert (account(poor).balance, account(poor).debt) == (-40_000, 40_000)
    assert account_summary(user_id=poor.pk).state == "blocked"
    credits_grant(user=poor, amount=50_000, idempotency_key="later")
    assert (account(poor).balance, account(poor).debt) == (10_000, 0)
    assert account_summary(user_id=poor.pk).available == 10_000


def test_the_other_grants_are_untouched(poor, unit_price):
    credits_grant(user=poor, amount=20_000, idempotency_key="topup")
    purchase = bought(poor, credits=10_000)
    purchase_refund_credits(
        purchase=purchase, credits=10_000, refunded_by=None, idempotency_key="r"
    )
    assert Grant.objects.get(source="manual").remaining == 20_000
    assert account(poor).balance == 20_000


def test_the_same_key_books_once_and_a_second_refund_is_refused(poor):
    purchase = bought(poor)
    for _ in range(3):
        purchase_refund_credits(
            purchase=purchase, credits=60_000, refunded_by=None, idempotency_key="same"
        )
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    with pytest.raises(ValidationError) as conflict:
        purchase_refund_credits(
            purchase=purchase, credits=50_000, refunded_by=None, idempotency_key="same"
        )
    assert conflict.value.code == "conflict"
    with pytest.raises(ValidationError) as again:
        purchase_refund_credits(
            purchase=purchase, credits=60_000, refunded_by=None, idempotency_key="other"
        )
    assert again.value.code == "status"
    assert account(poor).balance == 40_000


@pytest.mark.parametrize("credits", [0, -1, 100_001, "10", 1.5, True])
def test_bad_amounts_are_refused_and_change_nothing(poor, credits):
    purchase = bought(poor)
    with pytest.raises(ValidationError) as refused:
        purchase_refund_credits(
            purchase=purchase, credits=credits, refunded_by=None, idempotency_key="bad"
        )
    assert refused.value.code == "amount"
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    assert Purchase.objects.get(pk=purchase.pk).status == "credited"


def test_only_a_credited_purchase(poor):
    pending = purchase_request(
        user=poor, idempotency_key="p", credits=10, price_cents=1, method="online"
    )
    with pytest.raises(ValidationError) as refused:
        purchase_refund_credits(purchase=pending, credits=10, refunded_by=None, idempotency_key="k")
    assert refused.value.code == "status"
    with pytest.raises(ValidationError) as no_key:
        purchase_refund_credits(purchase=pending, credits=10, refunded_by=None, idempotency_key=" ")
    assert no_key.value.code == "idempotency_key"


def test_it_waits_while_calls_hold_credits_it_would_take(poor, unit_price):
    purchase = bought(poor)
    hold_create(user=poor, request_id="open", price=unit_price, prompt_tokens=0, max_tokens=500)
    with pytest.raises(ValidationError) as held:
        purchase_refund_credits(
            purchase=purchase, credits=100_000, refunded_by=None, idempotency_key="k"
        )
    assert held.value.code == "held"
    # What the open call does not need can be taken back at once.
    purchase_refund_credits(
        purchase=purchase, credits=99_500, refunded_by=None, idempotency_key="k"
    )
    assert account(poor).balance == 500
    hold_settle(request_id="open", prompt_tokens=0, completion_tokens=500)
    assert (account(poor).balance, account(poor).debt) == (0, 0)


def test_expired_credits_are_debt_too(poor):
    purchase = bought(poor, credits=1_000)
    now = timezone.now()
    Grant.objects.filter(purchase=purchase).update(expires_at=now + timedelta(days=1))
    purchase_refund_credits(
        purchase=purchase,
        credits=1_000,
        refunded_by=None,
        idempotency_key="k",
        now=now + timedelta(days=2),
    )
    entries = list(account(poor).entries.order_by("id").values_list("kind", "amount"))
    assert entries == [("grant", 1_000), ("expiry", -1_000), ("refund", -1_000)]
    assert account(poor).debt == 1_000


def test_a_pix_purchase_is_not_refunded_without_its_money(poor):
    """credits' purchase_refund takes credits back without returning money: a purchase paid by
    PIX goes through its payment (payments.services.payment_refund) instead."""
    purchase = bought(poor, method=Purchase.Method.ONLINE)
    with pytest.raises(ValidationError) as refused:
        purchase_refund(purchase=purchase, refunded_by=None, reason="x")
    assert refused.value.code == "online"
    assert account(poor).balance == 100_000
    manual = bought(poor, method=Purchase.Method.MANUAL, credits=10)
    assert purchase_refund(purchase=manual, refunded_by=None).status == "refunded"
