"""What the database and the models refuse: a PIX purchase confirmed by hand as well, a second grant
for one purchase, two refunds in flight, a provider payment id used twice."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.services import api_key_create
from credits.models import Grant, LedgerEntry, Purchase
from credits.services import purchase_confirm, purchase_request
from payments.models import Payment, PaymentRefund


@pytest.fixture
def pix_purchase(buy, package, mercadopago):
    return Purchase.objects.get(pk=buy(package).json()["id"])


def test_a_pix_purchase_cannot_be_confirmed_by_hand(pix_purchase, admin_user):
    with pytest.raises(ValidationError) as refused:
        purchase_confirm(purchase=pix_purchase, confirmed_by=admin_user, payment_reference="x")
    assert refused.value.code == "online"
    pix_purchase.refresh_from_db()
    assert (pix_purchase.status, pix_purchase.confirmed_by) == ("requested", None)
    assert not Grant.objects.filter(purchase=pix_purchase).exists()
    assert not LedgerEntry.objects.filter(purchase=pix_purchase).exists()


def test_the_admin_confirm_page_says_no_without_a_500(pix_purchase, admin_client):
    url = reverse("admin:credits_purchase_confirm", args=[pix_purchase.pk])
    response = admin_client.post(url, {"payment_reference": "PIX-9"})
    assert response.status_code == 200
    assert "PIX" in " ".join(response.context["form"].non_field_errors())
    assert not Grant.objects.filter(purchase=pix_purchase).exists()


def test_the_admin_api_refuses_to_confirm_a_pix_purchase(pix_purchase, admin_user, client):
    _key, raw = api_key_create(user=admin_user, name="automation")
    response = client.post(
        f"/api/v1/admin/purchases/{pix_purchase.pk}/confirm",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "purchase_not_confirmable"
    assert not Grant.objects.filter(purchase=pix_purchase).exists()


def test_the_database_refuses_a_pix_purchase_with_a_confirming_person(pix_purchase, admin_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Purchase.objects.filter(pk=pix_purchase.pk).update(confirmed_by=admin_user)


def test_the_database_allows_one_grant_per_purchase(buyer):
    purchase = purchase_request(user=buyer, idempotency_key="m1", credits=10, price_cents=1)
    purchase_confirm(purchase=purchase, confirmed_by=None)
    grant = Grant.objects.get(purchase=purchase)
    with pytest.raises(IntegrityError), transaction.atomic():
        Grant.objects.create(
            account_id=grant.account_id,
            source="purchase",
            amount=10,
            remaining=10,
            purchase=purchase,
        )


def test_the_database_refuses_two_refunds_in_flight_and_a_reused_provider_id(pix_purchase):
    payment = pix_purchase.payment
    PaymentRefund.objects.create(
        payment=payment, amount_cents=100, credits_quoted=1, idempotency_key="r1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentRefund.objects.create(
            payment=payment, amount_cents=100, credits_quoted=1, idempotency_key="r2"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            purchase=Purchase.objects.create(
                user=pix_purchase.user, credits=1, price_cents=1, idempotency_key="p2"
            ),
            provider="mercadopago",
            provider_payment_id=payment.provider_payment_id,
            reference="other",
            idempotency_key="k2",
            amount_cents=1,
            expires_at=payment.expires_at,
        )
