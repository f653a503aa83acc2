"""`POST /api/v1/me/purchases` and `GET /api/v1/me/purchases/{id}`: a PIX charge at the stand-in
(a manual request without Mercado Pago), each person seeing only their own purchases."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.services import api_key_create
from credits.models import LedgerEntry, Purchase
from credits.services import purchase_confirm
from notifications.models import Notification
from payments.models import Payment
from tests.factories import CreditPackageFactory, UserFactory
from tests.payments.conftest import PUBLIC_URL, PURCHASES, purchase_url
from tests.portal.conftest import LIBRECHAT_SECRET, librechat_token


def test_a_pix_purchase_answers_the_charge_to_pay(buy, buyer, package, mercadopago):
    before = timezone.now()
    response = buy(package)
    assert response.status_code == 201
    body = response.json()
    purchase = Purchase.objects.get(user=buyer)
    assert body["id"] == purchase.pk
    assert (body["status"], body["method"], body["credits"], body["price_cents"]) == (
        "pending",
        "pix",
        100_000,
        4_990,
    )
    assert body["instructions"] is None
    assert (
        body["pix"]["qr_code"].startswith("000201") and "br.gov.bcb.pix" in body["pix"]["qr_code"]
    )
    assert body["pix"]["qr_code_base64"].startswith("iVBORw0KGgo")  # a PNG
    assert body["pix"]["ticket_url"].startswith("https://www.mercadopago.com.br/payments/")
    expires_at = datetime.fromisoformat(body["pix"]["expires_at"])
    assert timedelta(minutes=29) < expires_at - before <= timedelta(minutes=31)
    assert response["Cache-Control"] == "no-store"
    # What Mercado Pago was asked for: the exact amount, our reference, the payer, the webhook.
    (sent,) = mercadopago.creations()
    payment = Payment.objects.get(purchase=purchase)
    assert sent["transaction_amount"] == Decimal("49.9")
    assert sent["payment_method_id"] == "pix"
    assert sent["external_reference"] == payment.reference
    assert sent["payer"] == {"email": "ana@example.com"}
    assert sent["notification_url"] == (
        f"{PUBLIC_URL}/api/v1/payments/mercadopago/webhook?source_news=webhooks"
    )
    assert datetime.fromisoformat(sent["date_of_expiration"]) == payment.expires_at
    assert mercadopago.idempotency_keys == [payment.idempotency_key]
    assert mercadopago.payments[payment.provider_payment_id]["external_reference"] == (
        payment.reference
    )
    # Nothing granted yet; the purchase is an online request.
    assert (purchase.method, purchase.status) == ("online", "requested")
    assert not LedgerEntry.objects.filter(account_id=buyer.pk).exists()


def test_get_shows_the_same_purchase_with_its_current_status(buy, client, package, mercadopago):
    created = buy(package).json()
    shown = client.get(purchase_url(created["id"]))
    assert shown.status_code == 200
    assert shown.json() == created


def test_asking_again_for_the_same_package_returns_the_pending_purchase(
    buy, buyer, package, mercadopago
):
    first = buy(package)
    second = buy(package)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert Purchase.objects.filter(user=buyer).count() == 1
    assert len(mercadopago.creations()) == 1
    other = CreditPackageFactory(name="Pacote 10 mil", credits=10_000, price_cents=990)
    assert buy(other).status_code == 201
    assert Purchase.objects.filter(user=buyer).count() == 2


def test_a_charge_about_to_expire_is_not_offered_again(buy, buyer, package, mercadopago):
    first = buy(package).json()
    Payment.objects.filter(purchase_id=first["id"]).update(
        expires_at=timezone.now() + timedelta(minutes=2)
    )
    second = buy(package)
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    assert len(set(mercadopago.idempotency_keys)) == 2


def test_a_lost_answer_is_asked_again_with_the_same_idempotency_key(
    buy, buyer, package, mercadopago
):
    """Mercado Pago made the charge but its answer was lost: the retry gets the same charge."""
    mercadopago.fail_next(502, after_work=True)
    failed = buy(package)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "payment_provider_unavailable"
    assert failed["Retry-After"] == "5"
    payment = Payment.objects.get(purchase__user=buyer)
    assert (payment.status, payment.provider_payment_id) == ("pending", "")
    again = buy(package)
    assert again.status_code == 200
    assert again.json()["pix"]["qr_code"]
    assert len(mercadopago.payments) == 1
    assert mercadopago.idempotency_keys == [payment.idempotency_key] * 2
    assert Purchase.objects.filter(user=buyer).count() == 1


def test_a_charge_the_provider_refuses_cancels_its_purchase(buy, buyer, package, mercadopago):
    mercadopago.fail_next(400)
    response = buy(package)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "payment_refused"
    purchase = Purchase.objects.get(user=buyer)
    assert purchase.status == "cancelled"
    assert purchase.payment.status == "cancelled"
    assert buy(package).status_code == 201  # a new purchase, a new charge


def test_without_a_public_https_url_no_notification_url_is_sent(
    buy, package, mercadopago, settings
):
    settings.SOLARIS_PUBLIC_URL = "http://127.0.0.1:8000"
    assert buy(package).status_code == 201
    assert "notification_url" not in mercadopago.creations()[0]


def test_a_pix_purchase_does_not_e_mail_the_admins(buy, package, mercadopago, deliver):
    """Its payment confirms it: the purchase mailbox hears only of manual requests, which need
    someone to confirm the payment."""
    payment = Payment.objects.get(purchase_id=buy(package).json()["id"])
    assert not Notification.objects.filter(kind="purchase_requested").exists()
    mercadopago.approve(payment.provider_payment_id)
    deliver(payment.provider_payment_id)
    assert [m.to for m in mail.outbox] == [["ana@example.com"]]  # the receipt only


def test_without_the_access_token_the_call_records_a_manual_request(
    buy, client, buyer, package, settings
):
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    response = buy(package)
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["method"], body["pix"]) == ("pending", "manual", None)
    assert "compras@solaris.example" in body["instructions"]
    purchase = Purchase.objects.get(pk=body["id"])
    assert (purchase.method, purchase.status, purchase.credits) == ("manual", "requested", 100_000)
    assert not Payment.objects.exists()
    # The admins get the purchase-requested e-mail, as from the page.
    (request_mail,) = mail.outbox
    assert request_mail.to == ["compras@solaris.example"]
    assert f"nº {purchase.pk}" in request_mail.subject
    assert "confirme o pedido no painel" in request_mail.body
    # A double click is the same request; confirming it grants, as today.
    assert buy(package).json()["id"] == purchase.pk
    assert Purchase.objects.filter(user=buyer).count() == 1
    admin = UserFactory(email="fin@example.com", is_staff=True)
    purchase_confirm(purchase=purchase, confirmed_by=admin)
    assert client.get(purchase_url(purchase.pk)).json()["status"] == "paid"


def test_both_flows_run_side_by_side(buy, buyer, package, mercadopago, settings):
    settings.MERCADOPAGO_ACCESS_TOKEN = ""
    manual = buy(package).json()
    settings.MERCADOPAGO_ACCESS_TOKEN = mercadopago.access_token
    pix = buy(package).json()
    assert (manual["method"], pix["method"]) == ("manual", "pix")
    assert manual["id"] != pix["id"]
    assert Purchase.objects.filter(user=buyer).count() == 2


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"package": "x"},
        {"package": None},
        {"package": True},
        {"package": -1},
        {"package": 10**30},
    ],
)
def test_a_bad_package_is_a_400_and_creates_nothing(client, buyer, payload, mercadopago):
    client.force_login(buyer)
    response = client.post(PURCHASES, payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "package"
    assert not Purchase.objects.exists()
    assert mercadopago.requests == []


def test_a_package_not_on_sale_is_refused(buy, mercadopago):
    hidden = CreditPackageFactory(active=False)
    assert buy(hidden).status_code == 400
    assert not Purchase.objects.exists()


def test_a_free_package_cannot_be_paid_by_pix(buy, mercadopago):
    free = CreditPackageFactory(name="Brinde", price_cents=0)
    response = buy(free)
    assert response.status_code == 400
    assert "PIX" in response.json()["error"]["message"]
    assert mercadopago.requests == []


def test_a_malformed_body_is_a_400(client, buyer, mercadopago):
    client.force_login(buyer)
    response = client.post(PURCHASES, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert not Purchase.objects.exists()


def test_purchases_need_a_caller(client, package, mercadopago):
    assert client.post(PURCHASES, {"package": package.pk}).status_code == 401
    assert client.get(purchase_url(1)).status_code == 401
    assert mercadopago.requests == []


def test_a_person_only_ever_sees_their_own_purchases(buy, client, package, mercadopago):
    mine = buy(package).json()
    other = UserFactory(email="bia@example.com")
    client.force_login(other)
    assert client.get(purchase_url(mine["id"])).status_code == 404
    assert client.get(purchase_url(10**30)).status_code == 404
    assert client.get(purchase_url(mine["id"] + 1000)).status_code == 404


def test_an_api_key_and_the_librechat_token_can_buy_and_poll(
    client, buyer, package, mercadopago, settings
):
    _key, raw = api_key_create(user=buyer, name="script")
    created = client.post(
        PURCHASES,
        {"package": package.pk},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert created.status_code == 201
    settings.LIBRECHAT_JWT_SECRET = LIBRECHAT_SECRET
    token = librechat_token(email=buyer.email)
    polled = client.get(purchase_url(created.json()["id"]), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert polled.status_code == 200 and polled.json()["id"] == created.json()["id"]
    again = client.post(
        PURCHASES,
        {"package": package.pk},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


def test_the_widget_origin_may_buy_cross_origin(client, buyer, package, mercadopago, settings):
    settings.SOLARIS_WIDGET_ALLOWED_ORIGINS = ["https://chat.example.com"]
    preflight = client.options(
        PURCHASES,
        HTTP_ORIGIN="https://chat.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert preflight.status_code == 204
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert preflight["Access-Control-Allow-Origin"] == "https://chat.example.com"


def test_the_purchase_endpoints_are_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "post" in schema["paths"]["/api/v1/me/purchases"]
    assert "get" in schema["paths"]["/api/v1/me/purchases/{purchase_id}"]
    purchase = schema["components"]["schemas"]["MyPurchase"]["properties"]
    assert {"id", "status", "credits", "price_cents", "pix"} <= set(purchase)
    assert set(schema["components"]["schemas"]["PixCharge"]["properties"]) >= {
        "qr_code",
        "qr_code_base64",
        "expires_at",
    }
    assert Notification.objects.count() == 0


def test_answers_speak_portuguese_first_and_english_on_request(buy, client, package):
    body = buy(package).json()
    assert body["instructions"].startswith("Um administrador vai entrar em contato")
    assert client.get(purchase_url(10**6)).json()["error"]["message"] == "Compra não encontrada."
    english = client.get(purchase_url(body["id"]), HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["instructions"].startswith("An administrator will contact you")
