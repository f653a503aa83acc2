"""Refunds through Mercado Pago: pro rata to the credits not yet spent by default, or the whole
price; the credits are booked once the provider confirms, and only once."""

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from credits.models import Account, Grant, LedgerEntry
from credits.selectors import account_summary
from credits.services import hold_create, hold_settle
from payments.models import Payment, PaymentRefund
from payments.selectors import refund_quote
from payments.services import PaymentUnavailable, payment_refund, payments_reconcile
from tests.factories import ModelPriceFactory, UserFactory
from tests.payments.conftest import purchase_url


@pytest.fixture
def unit_price(db):
    return ModelPriceFactory(model="unit", input_weight="1", output_weight="1")


def spend(user, price, amount: int) -> str:
    """One settled call costing exactly `amount` credits."""
    request_id = f"req-{uuid.uuid4().hex}"
    hold_create(user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount)
    hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)
    return request_id


@pytest.fixture
def finance(db):
    return UserFactory(email="fin@example.com", is_staff=True)


def balance(user) -> int:
    return Account.objects.get(pk=user.pk).balance


def refund_entries(user):
    return list(LedgerEntry.objects.filter(account_id=user.pk, kind="refund"))


def test_the_default_refund_is_pro_rata_to_the_credits_not_yet_spent(
    paid, buyer, client, finance, mercadopago, unit_price, deliver
):
    spend(buyer, unit_price, 30_000)
    assert refund_quote(payment=paid).pro_rata_cents == 3_493  # 49,90 × 70 % rounded down
    refund = payment_refund(payment=paid, requested_by=finance, reason="pediu cancelamento")
    assert (refund.status, refund.amount_cents, refund.credits_quoted) == ("booked", 3_493, 70_000)
    (asked,) = mercadopago.refunds_asked()
    assert asked == {"amount": Decimal("34.93")}
    assert mercadopago.idempotency_keys[-1] == refund.idempotency_key
    assert balance(buyer) == 0  # the 70 000 unspent credits are taken back, the rest stays spent
    (entry,) = refund_entries(buyer)
    assert (entry.amount, entry.created_by, entry.reason) == (
        -70_000,
        finance,
        "pediu cancelamento",
    )
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_cents, paid.purchase.status) == (
        "refunded",
        3_493,
        "refunded",
    )
    assert client.get(purchase_url(paid.purchase_id)).json()["status"] == "refunded"
    # Mercado Pago's notification of its partial refund changes nothing more.
    deliver(paid.provider_payment_id)
    paid.refresh_from_db()
    assert paid.status == "refunded"
    assert len(refund_entries(buyer)) == 1


def test_a_full_refund_gives_back_the_whole_price_and_books_the_spent_part_as_debt(
    paid, buyer, finance, mercadopago, unit_price
):
    spend(buyer, unit_price, 40_000)
    refund = payment_refund(payment=paid, requested_by=finance, full=True)
    assert (refund.status, refund.amount_cents, refund.full) == ("booked", 4_990, True)
    assert mercadopago.refunds_asked() == [{}]  # Mercado Pago's "refund it all"
    assert mercadopago.payments[paid.provider_payment_id]["status"] == "refunded"
    # All 100 000 credits the money paid for are taken back: 60 000 left, 40 000 spent as debt.
    assert [e.amount for e in refund_entries(buyer)] == [-100_000]
    assert (balance(buyer), Account.objects.get(pk=buyer.pk).debt) == (-40_000, 40_000)
    assert account_summary(user_id=buyer.pk).state == "blocked"


def test_credits_spent_while_mercado_pago_confirms_a_pro_rata_refund_become_debt(
    paid, buyer, finance, mercadopago, unit_price, deliver
):
    """The money paid back is for the credits quoted when it was asked: those are taken back,
    exactly, even when the person spent some of them before the provider confirmed."""
    spend(buyer, unit_price, 30_000)
    mercadopago.refund_status = "in_process"
    refund = payment_refund(payment=paid, requested_by=finance)
    assert (refund.amount_cents, refund.credits_quoted) == (3_493, 70_000)
    spend(buyer, unit_price, 5_000)
    mercadopago.confirm_refund(paid.provider_payment_id, refund.provider_refund_id)
    deliver(paid.provider_payment_id)
    assert [e.amount for e in refund_entries(buyer)] == [-70_000]
    assert (balance(buyer), Account.objects.get(pk=buyer.pk).debt) == (-5_000, 5_000)


def test_a_refund_books_once(paid, buyer, finance, mercadopago, deliver):
    payment_refund(payment=paid, requested_by=finance)
    with pytest.raises(ValidationError) as refused:
        payment_refund(payment=Payment.objects.get(pk=paid.pk), requested_by=finance)
    assert refused.value.code == "status"
    for _ in range(3):
        deliver(paid.provider_payment_id)
    payments_reconcile()
    assert len(mercadopago.refunds_asked()) == 1
    assert len(refund_entries(buyer)) == 1
    assert PaymentRefund.objects.get().status == "booked"


def test_a_refund_in_process_is_booked_when_mercado_pago_confirms_it(
    paid, buyer, finance, mercadopago, deliver
):
    mercadopago.refund_status = "in_process"
    refund = payment_refund(payment=paid, requested_by=finance)
    assert refund.status == "requested" and refund.provider_refund_id
    assert balance(buyer) == 100_000  # nothing taken back before the money is
    deliver(paid.provider_payment_id)
    assert balance(buyer) == 100_000
    mercadopago.confirm_refund(paid.provider_payment_id, refund.provider_refund_id)
    deliver(paid.provider_payment_id)
    deliver(paid.provider_payment_id)
    refund.refresh_from_db()
    assert refund.status == "booked"
    assert balance(buyer) == 0
    assert len(refund_entries(buyer)) == 1


def test_a_refund_waits_for_calls_in_flight_then_books(
    paid, buyer, finance, mercadopago, unit_price
):
    hold_create(user=buyer, request_id="call-1", price=unit_price, prompt_tokens=0, max_tokens=500)
    refund = payment_refund(payment=paid, requested_by=finance)
    assert refund.status == "confirmed"  # Mercado Pago refunded; the booking waits
    paid.refresh_from_db()
    assert paid.status == "paid"
    assert refund_entries(buyer) == []
    payments_reconcile()
    assert refund_entries(buyer) == []  # still held
    hold_settle(request_id="call-1", prompt_tokens=0, completion_tokens=200)
    payments_reconcile()
    refund.refresh_from_db()
    assert refund.status == "booked"
    # The money paid back the 100 000 credits quoted: the 200 the call spent meanwhile are debt.
    assert [e.amount for e in refund_entries(buyer)] == [-100_000]
    assert (balance(buyer), Account.objects.get(pk=buyer.pk).debt) == (-200, 200)


def test_a_refund_mercado_pago_refuses_books_nothing(paid, buyer, finance, mercadopago):
    mercadopago.fail_next(400)
    with pytest.raises(ValidationError) as refused:
        payment_refund(payment=paid, requested_by=finance)
    assert refused.value.code == "refused"
    assert PaymentRefund.objects.get().status == "failed"
    assert balance(buyer) == 100_000
    assert payment_refund(payment=paid, requested_by=finance).status == "booked"


def test_a_refund_without_an_answer_is_asked_again_with_the_same_key(
    paid, buyer, finance, mercadopago
):
    mercadopago.fail_next(502, after_work=True)
    with pytest.raises(PaymentUnavailable):
        payment_refund(payment=paid, requested_by=finance)
    refund = PaymentRefund.objects.get()
    assert (refund.status, refund.provider_refund_id) == ("requested", "")
    assert balance(buyer) == 100_000
    assert payments_reconcile().refunds_sent == 1
    refund.refresh_from_db()
    assert refund.status == "booked"
    assert len(mercadopago.payments[paid.provider_payment_id]["refunds"]) == 1
    keys = [k for k in mercadopago.idempotency_keys if k == refund.idempotency_key]
    assert len(keys) == 2
    assert len(refund_entries(buyer)) == 1


def test_a_refund_made_in_mercado_pagos_panel_is_booked_once_as_a_full_refund(
    paid, buyer, client, mercadopago, deliver, unit_price
):
    spend(buyer, unit_price, 1_000)
    mercadopago.refund_from_dashboard(paid.provider_payment_id)
    deliver(paid.provider_payment_id)
    deliver(paid.provider_payment_id)
    paid.refresh_from_db()
    assert paid.status == "refunded"
    assert [e.amount for e in refund_entries(buyer)] == [-100_000]
    assert (balance(buyer), Account.objects.get(pk=buyer.pk).debt) == (-1_000, 1_000)
    assert client.get(purchase_url(paid.purchase_id)).json()["status"] == "refunded"


def test_a_partial_refund_made_in_mercado_pagos_panel_is_review(paid, buyer, mercadopago, deliver):
    mercadopago.refund_from_dashboard(paid.provider_payment_id, amount=Decimal("10.00"))
    deliver(paid.provider_payment_id)
    paid.refresh_from_db()
    assert (paid.status, paid.review_reason) == ("review", "partial_refund")
    assert balance(buyer) == 100_000
    assert refund_entries(buyer) == []


def test_nothing_left_to_refund_pro_rata(paid, buyer, finance, unit_price, mercadopago):
    spend(buyer, unit_price, 100_000)
    with pytest.raises(ValidationError) as refused:
        payment_refund(payment=paid, requested_by=finance)
    assert refused.value.code == "nothing_left"
    assert mercadopago.refunds_asked() == []
    assert payment_refund(payment=paid, requested_by=finance, full=True).amount_cents == 4_990


def test_only_a_paid_charge_can_be_refunded(buy, package, finance, mercadopago, settings):
    pending = Payment.objects.get(purchase_id=buy(package).json()["id"])
    with pytest.raises(ValidationError) as refused:
        payment_refund(payment=pending, requested_by=finance)
    assert refused.value.code == "status"
    settings.MERCADOPAGO_ACCESS_TOKEN = ""
    with pytest.raises(ValidationError) as refused:
        payment_refund(payment=pending, requested_by=finance)
    assert refused.value.code == "provider"
    assert mercadopago.refunds_asked() == []
    assert not Grant.objects.exists()
