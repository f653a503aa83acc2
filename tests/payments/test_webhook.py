"""The signed webhook: verified, logged (redacted), and acted on only after the payment is read
back from Mercado Pago; credits are granted once, for the exact amount and reference only."""

import json
import time
from decimal import Decimal

import pytest
from django.core import mail

from credits.models import Account, Grant, LedgerEntry, Purchase
from notifications.models import Notification
from payments.models import Payment, WebhookDelivery
from tests.payments.conftest import purchase_url

CREDITS = 100_000


@pytest.fixture
def charge(buy, package, mercadopago):
    """Ana has asked for the 100 mil package: a pending PIX charge at the stand-in."""
    response = buy(package)
    assert response.status_code == 201
    mail.outbox.clear()  # the admins' purchase-requested e-mail
    return Payment.objects.get(purchase_id=response.json()["id"])


def receipts():
    return [m for m in mail.outbox if "ana@example.com" in m.to]


def balance(user) -> int:
    return Account.objects.get(pk=user.pk).balance


def assert_nothing_granted(buyer, charge):
    purchase = Purchase.objects.get(pk=charge.purchase_id)
    assert purchase.status != Purchase.Status.CREDITED
    assert not Grant.objects.filter(purchase=purchase).exists()
    assert balance(buyer) == 0
    assert not LedgerEntry.objects.filter(account_id=buyer.pk).exists()
    assert receipts() == []


def test_a_paid_pix_grants_the_credits_and_sends_the_receipt(
    charge, deliver, buyer, client, mercadopago
):
    mercadopago.approve(charge.provider_payment_id)
    response = deliver(charge.provider_payment_id)
    assert response.status_code == 200
    assert response.json() == {"received": True}
    charge.refresh_from_db()
    assert (charge.status, charge.provider_status, charge.provider_status_detail) == (
        "paid",
        "approved",
        "accredited",
    )
    assert charge.paid_at is not None
    purchase = charge.purchase
    purchase.refresh_from_db()
    assert purchase.status == "credited" and purchase.confirmed_by is None
    assert purchase.payment_reference == f"Mercado Pago {charge.provider_payment_id}"
    assert balance(buyer) == CREDITS
    (receipt,) = receipts()
    assert "100.000" in receipt.body and "R$ 49,90" in receipt.body
    assert client.get(purchase_url(purchase.pk)).json()["status"] == "paid"
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.outcome, delivery.payment_id) == ("paid", charge.pk)


def test_the_same_notification_ten_times_grants_once(charge, deliver, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    for _ in range(10):
        assert deliver(charge.provider_payment_id).status_code == 200
    assert balance(buyer) == CREDITS
    assert Grant.objects.filter(purchase_id=charge.purchase_id).count() == 1
    assert LedgerEntry.objects.filter(account_id=buyer.pk).count() == 1
    assert len(receipts()) == 1
    assert Notification.objects.filter(kind="purchase_confirmed").count() == 1
    assert WebhookDelivery.objects.count() == 10


def test_a_pending_notification_changes_nothing(charge, deliver, buyer, mercadopago):
    assert deliver(charge.provider_payment_id).status_code == 200
    charge.refresh_from_db()
    assert charge.status == "pending"
    assert_nothing_granted(buyer, charge)


@pytest.mark.parametrize(
    "tamper",
    [
        {"secret": "not-the-secret"},
        {"signed_id": "999"},  # signed for another payment
        {"ts": int(time.time()) - 3600},  # an hour old: a replay
        {"ts": int(time.time()) + 3600},  # from the future
    ],
    ids=["bad-secret", "other-payment", "stale", "future"],
)
def test_a_bad_or_stale_signature_is_401_and_changes_nothing(
    charge, deliver, buyer, mercadopago, tamper
):
    mercadopago.approve(charge.provider_payment_id)
    reads_before = len(mercadopago.requests)
    response = deliver(charge.provider_payment_id, **tamper)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert len(mercadopago.requests) == reads_before  # not even read back
    assert not WebhookDelivery.objects.exists()
    charge.refresh_from_db()
    assert charge.status == "pending"
    assert_nothing_granted(buyer, charge)


def test_missing_or_garbled_signature_headers_are_401(charge, client, mercadopago):
    url = f"/api/v1/payments/mercadopago/webhook?data.id={charge.provider_payment_id}&type=payment"
    for headers in (
        {},
        {"HTTP_X_SIGNATURE": "garbage", "HTTP_X_REQUEST_ID": "r"},
        {"HTTP_X_SIGNATURE": "ts=abc,v1=00", "HTTP_X_REQUEST_ID": "r"},
        {"HTTP_X_SIGNATURE": "ts=١٢٣,v1=é", "HTTP_X_REQUEST_ID": "r"},
    ):
        assert client.post(url, "{}", content_type="application/json", **headers).status_code == 401
    assert client.get(url).status_code == 405
    assert not WebhookDelivery.objects.exists()


def test_without_a_webhook_secret_every_delivery_is_refused(charge, deliver, settings):
    settings.MERCADOPAGO_WEBHOOK_SECRET = ""
    assert deliver(charge.provider_payment_id, secret="").status_code == 401


def test_a_signature_in_milliseconds_is_understood(charge, deliver, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    assert deliver(charge.provider_payment_id, ts=int(time.time() * 1000)).status_code == 200
    assert balance(buyer) == CREDITS


def test_an_amount_mismatch_is_review_and_grants_nothing(
    charge, deliver, buyer, client, mercadopago
):
    mercadopago.approve(charge.provider_payment_id, transaction_amount=Decimal("0.01"))
    assert deliver(charge.provider_payment_id).status_code == 200
    charge.refresh_from_db()
    assert (charge.status, charge.review_reason) == ("review", "amount")
    assert_nothing_granted(buyer, charge)
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "review"
    # Fixing the amount at the provider afterwards does not grant by itself: finance decides.
    mercadopago.set(charge.provider_payment_id, transaction_amount=Decimal("49.90"))
    deliver(charge.provider_payment_id)
    assert_nothing_granted(buyer, charge)


def test_another_currency_is_review(charge, deliver, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id, currency_id="USD")
    deliver(charge.provider_payment_id)
    charge.refresh_from_db()
    assert (charge.status, charge.review_reason) == ("review", "amount")
    assert_nothing_granted(buyer, charge)


def test_an_unknown_payment_is_200_and_changes_nothing(charge, deliver, buyer, mercadopago):
    response = deliver("987654321")
    assert response.status_code == 200
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.outcome, delivery.payment) == ("unknown payment", None)
    charge.refresh_from_db()
    assert charge.status == "pending"
    assert_nothing_granted(buyer, charge)


def test_a_payment_of_someone_else_on_the_account_grants_nothing(
    charge, deliver, buyer, mercadopago
):
    foreign = mercadopago.foreign_payment(
        reference="loja-42", amount=Decimal("49.90"), status="approved"
    )
    assert deliver(foreign["id"]).status_code == 200
    assert WebhookDelivery.objects.get().outcome == "unknown payment"
    assert_nothing_granted(buyer, charge)


def test_a_second_provider_payment_naming_our_reference_is_review(
    charge, deliver, buyer, mercadopago
):
    forged = mercadopago.foreign_payment(
        reference=charge.reference, amount=Decimal("49.90"), status="approved"
    )
    deliver(forged["id"])
    charge.refresh_from_db()
    assert (charge.status, charge.review_reason) == ("review", "foreign")
    assert_nothing_granted(buyer, charge)


@pytest.mark.parametrize("status", ["rejected", "cancelled"])
def test_rejected_or_cancelled_cancels_the_purchase_and_grants_nothing(
    charge, deliver, buyer, client, mercadopago, status
):
    mercadopago.set(charge.provider_payment_id, status=status, status_detail="by_collector")
    deliver(charge.provider_payment_id)
    charge.refresh_from_db()
    assert charge.status == "cancelled"
    assert charge.purchase.status == "cancelled"
    assert_nothing_granted(buyer, charge)
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "cancelled"


def test_an_expired_pix_is_expired(charge, deliver, buyer, client, mercadopago):
    mercadopago.set(charge.provider_payment_id, status="cancelled", status_detail="expired")
    deliver(charge.provider_payment_id)
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "expired"
    assert_nothing_granted(buyer, charge)


def test_money_arriving_after_the_charge_was_closed_is_review(charge, deliver, buyer, mercadopago):
    mercadopago.set(charge.provider_payment_id, status="cancelled", status_detail="expired")
    deliver(charge.provider_payment_id)
    mercadopago.approve(charge.provider_payment_id)
    deliver(charge.provider_payment_id)
    charge.refresh_from_db()
    assert (charge.status, charge.review_reason) == ("review", "late")
    assert_nothing_granted(buyer, charge)


def test_a_charge_back_after_the_grant_puts_the_purchase_in_review(
    charge, deliver, buyer, client, mercadopago
):
    mercadopago.approve(charge.provider_payment_id)
    deliver(charge.provider_payment_id)
    mercadopago.set(charge.provider_payment_id, status="charged_back", status_detail="settled")
    deliver(charge.provider_payment_id)
    charge.refresh_from_db()
    assert (charge.status, charge.review_reason) == ("review", "disputed")
    assert client.get(purchase_url(charge.purchase_id)).json()["status"] == "review"
    # The credits stay until finance decides; nothing is granted twice either.
    assert balance(buyer) == CREDITS
    assert len(receipts()) == 1


def test_an_older_reading_never_undoes_a_payment(charge, deliver, buyer, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    deliver(charge.provider_payment_id)
    mercadopago.set(charge.provider_payment_id, status="pending", status_detail="pending")
    deliver(charge.provider_payment_id)
    charge.refresh_from_db()
    assert charge.status == "paid" and balance(buyer) == CREDITS


def test_other_topics_are_logged_and_ignored(charge, deliver, mercadopago):
    reads = len(mercadopago.requests)
    assert deliver(charge.provider_payment_id, topic="merchant_order").status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.outcome) == ("merchant_order", "ignored")
    assert len(mercadopago.requests) == reads


def test_the_webhook_log_keeps_no_secret_and_no_payer(charge, deliver, mercadopago):
    mercadopago.approve(charge.provider_payment_id)
    deliver(charge.provider_payment_id)
    delivery = WebhookDelivery.objects.get()
    assert delivery.body == {
        "id": "123456789012",
        "type": "payment",
        "action": "payment.updated",
        "api_version": "v1",
        "live_mode": "True",
        "date_created": "2026-03-02T10:04:58Z",
        "data": {"id": charge.provider_payment_id},
    }
    assert (delivery.topic, delivery.action, delivery.resource_id) == (
        "payment",
        "payment.updated",
        charge.provider_payment_id,
    )
    stored = json.dumps(
        list(WebhookDelivery.objects.values()) + list(Payment.objects.values()), default=str
    )
    for secret in ("19119119100", "comprador", "Souza", "v1=", "f3a9c1e07b2d"):
        assert secret not in stored


def test_a_delivery_while_mercado_pago_is_down_changes_nothing_until_read(
    charge, deliver, buyer, mercadopago
):
    mercadopago.approve(charge.provider_payment_id)
    mercadopago.fail_next(503)
    assert deliver(charge.provider_payment_id).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.processed_at is None
    assert_nothing_granted(buyer, charge)


def test_a_body_that_is_not_json_is_logged_empty_and_the_payment_still_read(
    charge, deliver, buyer, mercadopago
):
    """The signature covers the query's data.id, not the body: the body is never trusted."""
    mercadopago.approve(charge.provider_payment_id)
    assert deliver(charge.provider_payment_id, raw_body="<not json>").status_code == 200
    assert WebhookDelivery.objects.get().body == {}
    assert balance(buyer) == CREDITS
