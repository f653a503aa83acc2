from urllib.parse import urlparse

import pytest
from django.urls import reverse

from accounts.models import LoginLink
from accounts.services import api_key_create
from credits.selectors import account_summary
from tests.factories import UserFactory
from tests.portal.conftest import librechat_token

BALANCE = reverse("portal:api-balance")
LOGIN_LINK = reverse("portal:api-login-link")
ORIGIN = "https://chat.example.com"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def expected(user):
    summary = account_summary(user_id=user.pk)
    return {
        "available": summary.available,
        "balance": summary.balance,
        "held": summary.held,
        "used_percent": str(summary.used_percent),
        "state": summary.state,
        "alert_threshold": summary.alert_threshold,
        "renews_at": summary.renews_at.isoformat(),
    }


def test_balance_with_an_api_key_matches_the_summary(client, user, user_key, spend, package):
    spend(user, 85_000)
    response = client.get(BALANCE, **bearer(user_key))
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in expected(user)} == expected(user)
    assert body["available"] == 15_000 and body["used_percent"] == "85.00"
    assert body["state"] == "alert"
    assert body["plan"] == {"slug": "basico", "name": user.subscription.plan.name}
    assert body["packages"][0]["credits"] == 50_000
    assert body["statement_url"].endswith("/conta/")
    assert response["Cache-Control"] == "no-store"


def test_balance_with_the_session_and_the_page_agree(client, user, spend):
    spend(user, 1_000)
    client.force_login(user)
    body = client.get(BALANCE).json()
    page = client.get(reverse("portal:statement")).context["summary"]
    assert body["available"] == page.available == 99_000
    assert body["used_percent"] == str(page.used_percent)


def test_balance_shows_only_the_callers_account(client, user, user_key, spend):
    other = UserFactory(email="bia@example.com")
    spend(other, 50_000)
    assert client.get(BALANCE, **bearer(user_key)).json()["available"] == 100_000


def test_balance_refuses_anonymous_and_bad_keys(client, db):
    assert client.get(BALANCE).status_code == 401
    response = client.get(BALANCE, **bearer("sol-nope"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_librechat_token_is_accepted_and_links_the_user_by_email(client, user, librechat):
    response = client.get(BALANCE, **bearer(librechat(user_id="lc-77", email="ANA@example.com")))
    assert response.status_code == 200
    assert response.json()["available"] == 100_000
    user.refresh_from_db()
    assert user.librechat_id == "lc-77"


def test_librechat_token_finds_by_librechat_id_first(client, user, librechat):
    other = UserFactory(email="bia@example.com", librechat_id="lc-bia")
    response = client.get(BALANCE, **bearer(librechat(user_id="lc-bia", email=user.email)))
    assert response.status_code == 200
    assert response.json()["available"] == account_summary(user_id=other.pk).available
    user.refresh_from_db()
    assert user.librechat_id is None


@pytest.mark.parametrize(
    ("token_kwargs", "message"),
    [
        ({"ttl": -60}, "expired"),
        ({"secret": "not-the-librechat-secret-000000000"}, "Invalid"),
        ({"email": "nobody@example.com", "user_id": "lc-unknown"}, "not known"),
    ],
)
def test_librechat_token_refused(client, user, librechat, token_kwargs, message, settings):
    settings.LANGUAGE_CODE = "en"
    response = client.get(BALANCE, HTTP_ACCEPT_LANGUAGE="en", **bearer(librechat(**token_kwargs)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert message in response.json()["error"]["message"]


def test_unknown_librechat_user_is_not_provisioned(client, db, plan, librechat):
    from accounts.models import User

    client.get(BALANCE, **bearer(librechat(email="new@example.com", user_id="lc-new")))
    assert not User.objects.filter(email="new@example.com").exists()


def test_librechat_token_without_expiry_or_secret_configured_is_refused(client, user, settings):
    import jwt

    settings.LIBRECHAT_JWT_SECRET = "s" * 40
    forever = jwt.encode({"id": "lc-1", "email": user.email}, "s" * 40, algorithm="HS256")
    assert client.get(BALANCE, **bearer(forever)).status_code == 401
    settings.LIBRECHAT_JWT_SECRET = ""
    assert client.get(BALANCE, **bearer(librechat_token())).status_code == 401


def test_suspended_librechat_user_is_forbidden(client, user, librechat):
    user.is_suspended = True
    user.save()
    response = client.get(BALANCE, **bearer(librechat()))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"


def test_cors_only_for_allowed_origins(client, user, user_key, settings):
    settings.SOLARIS_WIDGET_ALLOWED_ORIGINS = [ORIGIN]
    allowed = client.get(BALANCE, HTTP_ORIGIN=ORIGIN, **bearer(user_key))
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed
    other = client.get(BALANCE, HTTP_ORIGIN="https://evil.example", **bearer(user_key))
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other
    refused = client.get(BALANCE, HTTP_ORIGIN=ORIGIN)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == ORIGIN
    # CORS stays off the rest of the API.
    me = client.get(reverse("api-me"), HTTP_ORIGIN=ORIGIN, **bearer(user_key))
    assert "Access-Control-Allow-Origin" not in me


def test_preflight_is_answered_before_authentication(client, db, settings):
    settings.SOLARIS_WIDGET_ALLOWED_ORIGINS = [ORIGIN]
    preflight = {
        "HTTP_ORIGIN": ORIGIN,
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization",
    }
    response = client.options(BALANCE, **preflight)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "GET" in response["Access-Control-Allow-Methods"]
    post = client.options(LOGIN_LINK, **{**preflight, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST"})
    assert "POST" in post["Access-Control-Allow-Methods"]
    stranger = client.options(BALANCE, **{**preflight, "HTTP_ORIGIN": "https://evil.example"})
    assert stranger.status_code == 204
    assert "Access-Control-Allow-Origin" not in stranger
    assert "Access-Control-Allow-Methods" not in stranger


def test_widget_login_link_signs_in_once(client, user, librechat, settings):
    settings.SOLARIS_PUBLIC_URL = "http://testserver"
    response = client.post(
        LOGIN_LINK,
        {"next": "/conta/comprar/"},
        content_type="application/json",
        **bearer(librechat()),
    )
    assert response.status_code == 200
    url = urlparse(response.json()["url"])
    assert librechat() not in response.json()["url"]
    assert url.query == "next=%2Fconta%2Fcomprar%2F"
    link = LoginLink.objects.get(user=user)
    assert link.channel == "librechat"
    assert (link.expires_at - link.created_at).total_seconds() == pytest.approx(120, abs=1)
    page = client.get(f"{url.path}?{url.query}")
    # It says whose account it opens and waits for the click: opening it signs nobody in.
    assert page.status_code == 200 and page.context["account"] == "a***@example.com"
    assert "data-autosubmit" not in page.content.decode()
    assert client.get(reverse("portal:statement")).status_code == 302
    signed = client.post(f"{url.path}?{url.query}")
    assert signed.status_code == 302 and signed["Location"] == "/conta/comprar/"
    assert client.get(reverse("portal:statement")).status_code == 200
    client.logout()
    assert client.post(url.path).status_code == 400


def test_widget_login_link_ignores_foreign_next_and_needs_the_token(client, user, librechat):
    for target in ("https://evil.example/conta/", "//evil.example/", "/admin/"):
        body = client.post(
            LOGIN_LINK, {"next": target}, content_type="application/json", **bearer(librechat())
        ).json()
        assert body["url"].endswith("?next=%2Fconta%2F")
    assert client.post(LOGIN_LINK).status_code == 401
    _key, raw = api_key_create(user=user)
    assert client.post(LOGIN_LINK, **bearer(raw)).status_code == 401
