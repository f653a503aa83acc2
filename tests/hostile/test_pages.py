"""A hostile caller against the pages and the user API (/conta/*, /entrar/*, /senha/*,
/api/v1/me*): out-of-range dates, NUL bytes, huge numbers, over-long and forged identities, JSON
nested too deep. Pages answer with a visible error, APIs with a 4xx in the OpenAI error shape and
the offending `param`; Django's test client raises on any 500, so none can hide."""

import time

import jwt
import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import LoginLink, User
from accounts.services import api_key_create, integration_create
from credits.models import Purchase
from tests.factories import CreditPackageFactory, UserFactory

STATEMENT = reverse("portal:statement")
CSV = reverse("portal:calls-csv")
BALANCE = reverse("portal:api-balance")
LOGIN_LINK_API = reverse("portal:api-login-link")
SECRET = "librechat-hostile-secret-0123456789abcdef"


@pytest.fixture
def ana(plan_live):
    return UserFactory(email="ana@example.com", name="Ana", librechat_id="lc-ana")


@pytest.fixture
def signed_in(ana):
    client = Client()
    client.force_login(ana)
    return client


def api_error(response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start": "9999-12-30"}, "start"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, "start"),
        ({"end": "9999-12-31"}, "end"),
        ({"start": "0001-01-01", "end": "0001-01-01"}, "start"),
        ({"start": "1999-12-31"}, "start"),
        ({"start": "2026-13-45"}, "start"),
        ({"start": "2026-05-10", "end": "2026-05-01"}, None),
        ({"start": "2024-01-01", "end": "2026-01-01"}, None),
    ],
)
def test_out_of_range_dates(signed_in, query, param):
    page = signed_in.get(STATEMENT, query)
    assert page.status_code == 200
    html = page.content.decode()
    form = page.context["form"]
    message = form.errors[param][0] if param else form.non_field_errors()[0]
    assert 'class="error"' in html and str(message).replace("'", "&#x27;") in html
    error = api_error(signed_in.get(CSV, query), 400, param)
    assert error["code"] == "invalid_request_error" and error["message"] == str(message)


def test_the_period_edges_still_work(signed_in):
    assert signed_in.get(STATEMENT, {"start": "2000-01-01", "end": "2000-12-31"}).status_code == 200
    response = signed_in.get(CSV, {"start": "2099-01-01", "end": "2099-12-31"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(
    "query",
    [
        {"page": "99999999999999999999"},
        {"page": "-1"},
        {"page": "x\x00"},
        {"model": "gpt\x00"},
        {"model": "m" * 10_000},
        {"start": "\x00"},
        {"start": "2026-01-01" * 1_000},
    ],
)
def test_garbage_in_the_statement_query(signed_in, query):
    assert signed_in.get(STATEMENT, query).status_code == 200
    assert signed_in.get(CSV, query).status_code in (200, 400)


def test_huge_ids_in_paths_are_not_found(signed_in):
    huge = "9" * 30
    assert signed_in.post(f"/conta/chaves/{huge}/revogar/").status_code == 404
    assert signed_in.get(f"/conta/comprar/{huge}/").status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "x" * 65, "email": "ana@example.com"},
        {"id": "lc-ana\x00", "email": "ana@example.com"},
        {"id": "", "email": "a" * 250 + "@example.com"},
        {"id": "", "email": "ana@example.com\x00"},
        {"id": {"$ne": None}, "email": ["ana@example.com"]},
    ],
)
def test_librechat_tokens_no_user_row_can_hold(client, ana, settings, payload):
    """Signed with the right secret and still refused: a JSON 401, nothing written."""
    settings.LIBRECHAT_JWT_SECRET = SECRET
    now = int(time.time())
    token = jwt.encode({**payload, "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    for method, url in (("get", BALANCE), ("post", LOGIN_LINK_API)):
        response = getattr(client, method)(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        error = api_error(response, 401)
        assert error["code"] in ("invalid_api_key", "not_authenticated")
    ana.refresh_from_db()
    assert ana.librechat_id == "lc-ana"
    assert not LoginLink.objects.exists()


@pytest.mark.parametrize(
    ("headers", "param"),
    [
        ({"HTTP_X_LIBRECHAT_USER_ID": "i" * 65}, "X-LibreChat-User-Id"),
        ({"HTTP_X_LIBRECHAT_USER_EMAIL": "e" * 250 + "@x.com"}, "X-LibreChat-User-Email"),
    ],
)
def test_integration_identities_on_the_user_api(client, plan_live, headers, param):
    key = integration_create(name="lc")[1]
    users = User.objects.count()
    for url in (BALANCE, reverse("api-me")):
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
        api_error(response, 400, param)
    assert User.objects.count() == users


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_too_deep_on_the_user_api(signed_in, ana, depth):
    key = api_key_create(user=ana, name="k")[1]
    body = "[" * depth + "]" * depth
    response = Client().post(
        LOGIN_LINK_API, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    # API keys cannot ask for sign-in links; the session can, and its body is parsed.
    assert response.status_code in (400, 401, 403)
    response = signed_in.post(LOGIN_LINK_API, body, content_type="application/json")
    api_error(response, 400)
    assert not LoginLink.objects.exists()


def test_sign_in_forms_with_nul_and_huge_values(client, ana):
    for data in (
        {"username": "ana@example.com\x00", "password": "x"},
        {"username": "a" * 100_000, "password": "p" * 100_000},
        {"username": ["a", "b"], "password": "\x00"},
    ):
        response = client.post(reverse("portal:login"), data)
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    for data in ({"email": "ana@example.com\x00"}, {"email": "e" * 10_000}):
        assert client.post(reverse("portal:login-link"), data).status_code == 200
        assert client.post(reverse("portal:password-reset"), data).status_code == 200
    assert not LoginLink.objects.exists()
    for token in ("x\x00y", "t" * 5_000, "%00"):
        assert client.get(f"/entrar/link/{token}/").status_code == 400
        assert client.post(f"/entrar/link/{token}/").status_code == 400
    assert client.get("/senha/MQ\x00/token/").status_code == 200
    response = client.post(reverse("portal:language"), {"language": "pt-br\x00"})
    assert response.status_code == 400


def test_a_purchase_request_with_garbage(signed_in):
    package = CreditPackageFactory(name="Pacote", credits=1_000, price_cents=100)
    url = reverse("portal:purchase-confirm", args=[package.pk])
    for data in ({"package": "1\x00" * 10}, {"package": "9" * 30}, {"package": "a" * 10_000}):
        response = signed_in.post(url, data)
        assert response.status_code == 400  # the form again, with its error
    assert not Purchase.objects.exists()
