"""The admin API takes a staff key, and its input is still input: numbers beyond their columns,
NUL bytes and over-long values are 400s naming the field, never a 500."""

import pytest
from django.test import Client

from accounts.services import api_key_create
from credits.models import Grant, Purchase
from tests.backoffice.conftest import staff
from tests.factories import UserFactory


@pytest.fixture
def admin_api(plan_live):
    key = api_key_create(user=staff("chefe@solaris.test", superuser=True), name="ops")[1]
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def refused(response, param: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"price_cents": 10**30}, "price_cents"),
        ({"price_cents": 2**31}, "price_cents"),
        ({"credits": 10**30}, "credits"),
        ({"user": "ana\x00@example.com"}, "user"),
        ({"user": "a" * 300 + "@example.com"}, "user"),
        ({"user": 10**30}, "user"),
        ({"idempotency_key": "k\x00"}, "idempotency_key"),
    ],
)
def test_purchases_with_values_beyond_their_columns(admin_api, fields, param):
    user = UserFactory(email="ana@example.com")
    body = {"user": user.pk, "credits": 10, "price_cents": 100, "idempotency_key": "k1", **fields}
    refused(admin_api.post("/api/v1/admin/purchases", body, content_type="application/json"), param)
    assert not Purchase.objects.exists()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"amount": 10**30}, "amount"),
        ({"user": "x\x00"}, "user"),
        ({"reason": "r\x00"}, "reason"),
        ({"expires_at": "9999-99-99"}, "expires_at"),
    ],
)
def test_grants_with_hostile_values(admin_api, fields, param):
    user = UserFactory(email="ana@example.com")
    body = {"user": user.pk, "amount": 10, "reason": "r", "idempotency_key": "g1", **fields}
    refused(admin_api.post("/api/v1/admin/grants", body, content_type="application/json"), param)
    assert not Grant.objects.filter(account__user=user, source=Grant.Source.MANUAL).exists()


def test_listing_users_with_a_nul_or_an_over_long_query(admin_api):
    refused(admin_api.get("/api/v1/admin/users", {"search": "ana\x00"}), "search")
    refused(admin_api.get("/api/v1/admin/users", {"search": "a" * 10_000}), "search")
    assert admin_api.get("/api/v1/admin/users/" + "9" * 30).status_code == 404
