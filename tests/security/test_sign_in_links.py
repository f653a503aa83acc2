"""Sign-in links say whose account they open and sign in only on a click (no login CSRF); a
LibreChat token whose id and e-mail name different accounts opens neither."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import LoginLink
from accounts.services import login_link_create
from tests.factories import UserFactory
from tests.portal.conftest import LIBRECHAT_SECRET, librechat_token

BALANCE = reverse("portal:api-balance")
LOGIN_LINK_API = reverse("portal:api-login-link")
STATEMENT = reverse("portal:statement")


@pytest.fixture
def mallory(plan):
    return UserFactory(email="mallory.attacker@example.com")


def link_path(user, channel=LoginLink.Channel.LIBRECHAT) -> str:
    _link, raw = login_link_create(user=user, channel=channel, ttl=timedelta(minutes=5))
    return reverse("portal:login-link-use", args=[raw])


@pytest.mark.parametrize("channel", [LoginLink.Channel.LIBRECHAT, LoginLink.Channel.EMAIL])
def test_opening_a_link_shows_whose_account_and_signs_nobody_in(mallory, channel):
    victim = Client(enforce_csrf_checks=True)
    path = link_path(mallory, channel)
    page = victim.get(path)
    html = page.content.decode()
    assert page.status_code == 200
    assert '<strong id="login-link-account">ma***@example.com</strong>' in html
    assert mallory.email not in html
    assert "data-autosubmit" not in html and 'method="post"' in html
    assert victim.get(STATEMENT).status_code == 302
    # Only a POST with the page's CSRF token signs in: a forged cross-site form gets 403.
    assert victim.post(path).status_code == 403
    assert victim.get(STATEMENT).status_code == 302
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', html).group(1)
    signed = victim.post(path, {"csrfmiddlewaretoken": token})
    assert signed.status_code == 302 and signed["Location"] == STATEMENT
    assert victim.get(STATEMENT).status_code == 200


@pytest.mark.parametrize(
    ("email", "shown"),
    [("ana@example.com", "a***@example.com"), ("jo@x.io", "j***@x.io")],
)
def test_short_addresses_are_masked_too(plan, email, shown):
    page = Client().get(link_path(UserFactory(email=email)))
    assert page.context["account"] == shown
    assert email not in page.content.decode()


@pytest.fixture
def librechat(settings):
    settings.LIBRECHAT_JWT_SECRET = LIBRECHAT_SECRET
    return librechat_token


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_token_whose_id_and_email_name_different_users_is_refused(client, plan, librechat):
    UserFactory(email="ana@example.com", librechat_id="lc-ana")
    UserFactory(email="bia@example.com", librechat_id="lc-bia")
    # Bia's id with Ana's e-mail: the id wins, the token is Bia's.
    bias = librechat(user_id="lc-bia", email="ana@example.com")
    url = client.post(LOGIN_LINK_API, {}, content_type="application/json", **bearer(bias))
    assert Client().get(url.json()["url"]).context["account"] == "b***@example.com"
    # An id no one has, with the e-mail of a user linked to another id: refused, not Ana.
    forged = librechat(user_id="lc-mallory", email="ana@example.com")
    for response in (
        client.get(BALANCE, **bearer(forged)),
        client.post(LOGIN_LINK_API, {}, content_type="application/json", **bearer(forged)),
    ):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert "contas diferentes" in error["message"]
    assert LoginLink.objects.get().user.email == "bia@example.com"


def test_the_email_still_links_a_user_who_has_no_librechat_id_yet(client, plan, librechat):
    ana = UserFactory(email="ana@example.com")
    response = client.get(BALANCE, **bearer(librechat(user_id="lc-ana", email="ana@example.com")))
    assert response.status_code == 200
    ana.refresh_from_db()
    assert ana.librechat_id == "lc-ana"
    # The same token again, and one without an id: still Ana.
    assert client.get(BALANCE, **bearer(librechat(user_id="lc-ana"))).status_code == 200
    assert client.get(BALANCE, **bearer(librechat(user_id=""))).status_code == 200
