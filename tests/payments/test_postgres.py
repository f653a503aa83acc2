"""Races on real PostgreSQL: threads, each with its own connection and its own HTTP client, deliver
the same signed notification, start the same purchase, reconcile and refund at once; the payment's
row lock and the ledger's unique keys decide, and everything happens once."""

import threading

import pytest
from django.core import mail
from django.db import DatabaseError, connections, transaction
from django.test import Client

from credits.models import Account, Grant, LedgerEntry, Purchase
from credits.services import hold_create, hold_settle
from notifications.models import Notification
from payments.models import Payment, PaymentRefund, WebhookDelivery
from payments.services import PaymentUnavailable, payment_refund, payments_reconcile
from tests.credits.test_postgres import race
from tests.factories import ModelPriceFactory
from tests.payments.conftest import PURCHASES, notification

pytestmark = pytest.mark.postgres

CREDITS = 100_000


@pytest.fixture
def charge(transactional_db, buyer, package, mercadopago):
    client = Client()
    client.force_login(buyer)
    response = client.post(PURCHASES, {"package": package.pk}, content_type="application/json")
    assert response.status_code == 201
    return Payment.objects.get(purchase_id=response.json()["id"])


def receipts():
    return [m for m in mail.outbox if m.to == ["ana@example.com"]]


def test_ten_concurrent_deliveries_of_a_paid_pix_grant_once(charge, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)

    def deliver(_index):
        return notification(Client(), charge.provider_payment_id).status_code

    assert race(10, deliver) == [200] * 10
    assert Account.objects.get(pk=buyer.pk).balance == CREDITS
    assert Grant.objects.filter(purchase_id=charge.purchase_id).count() == 1
    assert LedgerEntry.objects.filter(account_id=buyer.pk).count() == 1
    assert Notification.objects.filter(kind="purchase_confirmed").count() == 1
    assert len(receipts()) == 1
    assert WebhookDelivery.objects.count() == 10
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {"paid"}
    reads = [r for r in mercadopago.requests if r[0] == "GET"]
    assert len(reads) == 10  # every delivery read the payment back before acting


def test_a_reading_takes_the_payments_row_lock_before_the_account(charge, buyer, mercadopago):
    """What the provider says is applied under the payment's row lock, taken before credits lock
    the account: while another worker holds the payment, a delivery waits without touching the
    account (a lock order that cannot deadlock), then acts on what it finds."""
    mercadopago.approve(charge.provider_payment_id)
    locked, probe, release = threading.Event(), threading.Event(), threading.Event()
    answers, account_free = [], []

    def hold_the_payment():
        with transaction.atomic():
            Payment.objects.select_for_update().get(pk=charge.pk)
            locked.set()
            probe.wait(timeout=10)
            try:
                with transaction.atomic():
                    Account.objects.select_for_update(nowait=True).get(pk=buyer.pk)
                account_free.append(True)
            except DatabaseError:
                account_free.append(False)
            release.wait(timeout=10)
        connections.close_all()

    def deliver():
        answers.append(notification(Client(), charge.provider_payment_id).status_code)
        connections.close_all()

    holder = threading.Thread(target=hold_the_payment)
    holder.start()
    assert locked.wait(timeout=5)
    delivery = threading.Thread(target=deliver)
    delivery.start()
    delivery.join(timeout=1.5)
    assert delivery.is_alive() and answers == []
    probe.set()
    release.set()
    holder.join(timeout=10)
    delivery.join(timeout=10)
    assert account_free == [True]
    assert answers == [200]
    assert Account.objects.get(pk=buyer.pk).balance == CREDITS


def test_a_double_click_raced_makes_one_purchase_and_one_charge(
    transactional_db, buyer, package, mercadopago
):
    def buy(_index):
        client = Client()
        client.force_login(buyer)
        response = client.post(PURCHASES, {"package": package.pk}, content_type="application/json")
        return response.status_code, response.json()["id"]

    results = race(6, buy)
    assert sorted(code for code, _id in results) == [200] * 5 + [201]
    assert len({purchase_id for _code, purchase_id in results}) == 1
    assert Purchase.objects.filter(user=buyer).count() == 1
    assert len(mercadopago.payments) == 1
    assert len(set(mercadopago.idempotency_keys)) == 1


def test_reconciliation_racing_the_webhook_grants_once(charge, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)

    def work(index):
        if index % 2:
            return payments_reconcile().read
        return notification(Client(), charge.provider_payment_id).status_code

    race(8, work)
    assert Account.objects.get(pk=buyer.pk).balance == CREDITS
    assert LedgerEntry.objects.filter(account_id=buyer.pk).count() == 1
    assert len(receipts()) == 1


def test_two_refunds_asked_at_once_refund_and_book_once(charge, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    notification(Client(), charge.provider_payment_id)
    assert Account.objects.get(pk=buyer.pk).balance == CREDITS

    def refund(_index):
        return payment_refund(payment=Payment.objects.get(pk=charge.pk), requested_by=None)

    results = race(4, refund)
    done = [r for r in results if isinstance(r, PaymentRefund)]
    refused = [r for r in results if not isinstance(r, PaymentRefund)]
    assert len(done) == 1 and len(refused) == 3
    assert not any(isinstance(r, PaymentUnavailable) for r in refused)
    assert done[0].status == "booked"
    refunds = [r for method, path, r in mercadopago.requests if path.endswith("/refunds")]
    assert len(refunds) == 1
    assert Account.objects.get(pk=buyer.pk).balance == 0
    assert LedgerEntry.objects.filter(account_id=buyer.pk, kind="refund").count() == 1


def test_a_confirmed_refund_books_once_under_concurrent_confirmations(charge, buyer, mercadopago):
    """Mercado Pago confirms a pro-rata refund later; its webhook arrives several times while
    reconciliation runs: the credits quoted are taken back once, exactly."""
    mercadopago.approve(charge.provider_payment_id)
    notification(Client(), charge.provider_payment_id)
    unit = ModelPriceFactory(model="unit", input_weight="1", output_weight="1")
    hold_create(user=buyer, request_id="spent", price=unit, prompt_tokens=0, max_tokens=25_000)
    hold_settle(request_id="spent", prompt_tokens=0, completion_tokens=25_000)  # 25 000 spent
    mercadopago.refund_status = "in_process"
    refund = payment_refund(payment=Payment.objects.get(pk=charge.pk), requested_by=None)
    assert (refund.status, refund.amount_cents, refund.credits_quoted) == (
        "requested",
        3_742,  # R$ 49,90 × 75 % rounded down
        75_000,
    )
    mercadopago.confirm_refund(charge.provider_payment_id, refund.provider_refund_id)

    def confirm(index):
        if index % 3 == 0:
            return payments_reconcile().read
        return notification(Client(), charge.provider_payment_id).status_code

    results = race(9, confirm)
    assert not [r for r in results if isinstance(r, Exception)]
    refund.refresh_from_db()
    assert refund.status == "booked"
    entries = LedgerEntry.objects.filter(account_id=buyer.pk, kind="refund")
    assert [e.amount for e in entries] == [-75_000]
    account = Account.objects.get(pk=buyer.pk)
    assert (account.balance, account.debt) == (0, 0)
    assert Payment.objects.get(pk=charge.pk).status == "refunded"
