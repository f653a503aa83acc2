import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ApiKey, User
from accounts.selectors import key_find
from accounts.services import api_key_create
from credits.models import Grant, LedgerEntry, Purchase
from credits.selectors import account_summary
from tests.backoffice.conftest import staff
from tests.factories import CreditPackageFactory, UserFactory

BASE = "/api/v1/admin/"


@pytest.fixture
def api(client, staff_key):
    def call(method, path, body=None, *, key=staff_key, **headers):
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return getattr(client, method)(BASE + path, **kwargs, **headers)

    return call


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com", name="Carla")


def assert_error(response, status, code, param=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] == code and error["message"]
    assert "{" not in error["message"]  # plain text, no JSON inside
    if param is not None:
        assert error["param"] == param
    return error


# --- authentication and rights ---


def test_needs_a_key(api, db):
    assert_error(api("get", "users", key=None), 401, "invalid_api_key")
    assert_error(api("get", "users", key="sol-notakey"), 401, "invalid_api_key")


def test_needs_a_staff_key(api, customer):
    _key, raw = api_key_create(user=customer)
    assert_error(api("get", "users", key=raw), 403, "permission_denied")


def test_session_login_is_not_enough(client, admin_user):
    client.force_login(admin_user)
    assert_error(client.get(BASE + "users"), 401, "invalid_api_key")


def test_support_key_reads_but_cannot_grant(api, customer):
    support = staff("suporte@solaris.test", group="Suporte")
    raw = api_key_create(user=support)[1]
    assert api("get", f"users/{customer.pk}", key=raw).status_code == 200
    body = {"user": customer.pk, "amount": 10, "reason": "x", "idempotency_key": "s1"}
    assert_error(api("post", "grants", body, key=raw), 403, "permission_denied")
    assert not Grant.objects.filter(source=Grant.Source.MANUAL).exists()


def test_finance_key_grants(api, customer):
    finance = staff("financeiro@solaris.test", group="Financeiro")
    raw = api_key_create(user=finance)[1]
    body = {"user": customer.email, "amount": 10, "reason": "x", "idempotency_key": "f1"}
    assert api("post", "grants", body, key=raw).status_code == 201
    assert LedgerEntry.objects.get(idempotency_key="grant:api:f1").created_by == finance


# --- users ---


def test_create_list_and_show_users(api, plan):
    response = api("post", "users", {"email": "Nova@Example.com", "name": "Nova"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "nova@example.com" and body["plan"] == plan.slug
    assert body["available"] == 100_000 and body["state"] == "normal"
    assert body["used_percent"] == "0.00" and len(body["grants"]) == 1
    listing = api("get", "users?search=nova").json()
    assert listing["count"] == 1 and listing["results"][0]["available"] == 100_000
    shown = api("get", f"users/{body['id']}").json()
    assert shown["email"] == "nova@example.com"
    assert_error(api("get", "users/999999"), 404, "not_found")


def test_list_filters_by_state(api, customer):
    assert api("get", "users?state=blocked").json()["count"] == 0
    assert api("get", "users?state=normal").json()["results"][0]["email"] == customer.email
    assert_error(api("get", "users?state=weird"), 400, "invalid_request_error", "state")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": "sem e-mail"}, "email"),
        ({"email": "x@example.com", "plan": "nao-existe"}, "plan"),
        ({"email": "x@example.com", "language": "fr"}, "language"),
    ],
)
def test_create_user_bad_input(api, plan, body, param):
    before = User.objects.count()
    assert_error(api("post", "users", body), 400, "invalid_request_error", param)
    assert User.objects.count() == before


def test_create_duplicate_user(api, customer):
    assert_error(
        api("post", "users", {"email": customer.email}), 400, "invalid_request_error", "email"
    )


# --- grants ---


def test_grant_is_idempotent_by_key(api, customer, admin_user):
    body = {"user": customer.pk, "amount": 500_000, "reason": "PIX 123", "idempotency_key": "g-1"}
    first = api("post", "grants", body)
    second = api("post", "grants", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert first.json()["amount"] == 500_000
    assert account_summary(user_id=customer.pk).available == 600_000
    entry = LedgerEntry.objects.get(idempotency_key="grant:api:g-1")
    assert entry.created_by == admin_user and entry.reason == "PIX 123"


def test_grant_key_from_the_header(api, customer):
    body = {"user": customer.email, "amount": 5, "reason": "x"}
    assert api("post", "grants", body, HTTP_IDEMPOTENCY_KEY="h-1").status_code == 201
    assert api("post", "grants", body, HTTP_IDEMPOTENCY_KEY="h-1").status_code == 200
    assert Grant.objects.filter(source=Grant.Source.MANUAL).count() == 1


def test_grant_key_reused_for_another_amount(api, customer):
    body = {"user": customer.pk, "amount": 5, "reason": "x", "idempotency_key": "g-2"}
    api("post", "grants", body)
    assert_error(api("post", "grants", {**body, "amount": 6}), 409, "idempotency_conflict")
    assert Grant.objects.filter(source=Grant.Source.MANUAL).count() == 1


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"amount": -100}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": "muito"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"user": 999_999}, "user"),
        ({"user": "ninguem@example.com"}, "user"),
        ({"user": "9" * 30}, "user"),
        ({"idempotency_key": None}, "idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"reason": ""}, "reason"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"source": "purchase"}, "source"),
    ],
)
def test_grant_bad_input_is_a_clear_400_and_writes_nothing(api, customer, change, param):
    body = {"user": customer.pk, "amount": 10, "reason": "x", "idempotency_key": "bad", **change}
    body = {name: value for name, value in body.items() if value is not None}
    entries = LedgerEntry.objects.count()
    error = assert_error(api("post", "grants", body), 400, "invalid_request_error", param)
    assert error["type"] == "invalid_request_error"
    assert LedgerEntry.objects.count() == entries
    assert Grant.objects.filter(source=Grant.Source.MANUAL).count() == 0


def test_body_must_be_an_object(api, customer):
    assert_error(api("post", "grants", [1, 2]), 400, "invalid_request_error")


# --- purchases ---


def test_purchase_create_and_confirm(api, customer, admin_user):
    package = CreditPackageFactory(credits=50_000, price_cents=2_990, validity_days=30)
    body = {"user": customer.pk, "package": package.pk, "idempotency_key": "p-1"}
    first = api("post", "purchases", body)
    assert first.status_code == 201 and first.json()["status"] == "requested"
    assert api("post", "purchases", body).status_code == 200
    assert Purchase.objects.count() == 1
    purchase_id = first.json()["id"]
    confirmed = api("post", f"purchases/{purchase_id}/confirm", {"payment_reference": "PIX-1"})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "credited"
    assert confirmed.json()["confirmed_by"] == admin_user.pk
    again = api("post", f"purchases/{purchase_id}/confirm", {})
    assert again.status_code == 200
    assert Grant.objects.filter(purchase_id=purchase_id).count() == 1
    assert account_summary(user_id=customer.pk).available == 150_000


def test_purchase_custom_amount(api, customer):
    body = {"user": customer.pk, "credits": 1_000, "price_cents": 500, "idempotency_key": "p-2"}
    assert api("post", "purchases", body).json()["credits"] == 1_000


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"credits": -5, "price_cents": 100}, "credits"),
        ({"credits": 5}, "package"),
        ({"credits": 5, "price_cents": -1}, "price_cents"),
        ({"package": 999}, "package"),
        ({"user": 424242, "credits": 5, "price_cents": 1}, "user"),
        ({"credits": 5, "price_cents": 1, "idempotency_key": None}, "idempotency_key"),
    ],
)
def test_purchase_bad_input(api, customer, body, param):
    full = {"user": customer.pk, "idempotency_key": "p-bad", **body}
    full = {name: value for name, value in full.items() if value is not None}
    assert_error(api("post", "purchases", full), 400, "invalid_request_error", param)
    assert not Purchase.objects.exists()


def test_purchase_with_package_and_credits_is_refused(api, customer):
    package = CreditPackageFactory()
    body = {"user": customer.pk, "package": package.pk, "credits": 5, "idempotency_key": "p-3"}
    assert_error(api("post", "purchases", body), 400, "invalid_request_error", "credits")


def test_inactive_package_is_refused(api, customer):
    package = CreditPackageFactory(active=False)
    body = {"user": customer.pk, "package": package.pk, "idempotency_key": "p-4"}
    assert_error(api("post", "purchases", body), 400, "invalid_request_error", "package")
    assert not Purchase.objects.exists()


def test_confirm_unknown_or_cancelled_purchase(api, customer):
    assert_error(api("post", "purchases/999/confirm", {}), 404, "not_found")
    from credits.services import purchase_cancel, purchase_request

    purchase = purchase_request(user=customer, idempotency_key="c", credits=5, price_cents=1)
    purchase_cancel(purchase=purchase, cancelled_by=None)
    assert_error(
        api("post", f"purchases/{purchase.pk}/confirm", {}), 400, "purchase_not_confirmable"
    )
    assert not Grant.objects.filter(purchase=purchase).exists()


# --- API keys ---


def test_create_api_key_returns_plaintext_once(api, customer):
    response = api("post", "api-keys", {"user": customer.email, "name": "bot"})
    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith(body["prefix"]) and body["user"] == customer.pk
    assert key_find(raw_key=body["key"]).pk == body["id"]
    assert body["key"] not in str(ApiKey.objects.values().get(pk=body["id"]))
    assert_error(
        api("post", "api-keys", {"user": "x@example.com"}), 400, "invalid_request_error", "user"
    )


# --- schema and docs ---


def test_openapi_schema_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in [
        "/api/v1/admin/users",
        "/api/v1/admin/grants",
        "/api/v1/admin/purchases/{purchase_id}/confirm",
        "/api/v1/admin/api-keys",
    ]:
        assert path in text
    assert "SolarisApiKey" in text


def test_schema_endpoint_and_offline_docs(admin_client):
    client = admin_client  # staff only when DEBUG is off (tests/security/test_hardening.py)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and "/api/v1/admin/grants" in schema.content.decode()
    html = client.get("/api/schema/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html and "http://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}")
    assert client.get(reverse("schema-docs")).status_code == 200
