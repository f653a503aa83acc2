"""Sign-in, e-mail and purchase throttles (docs/security.md): per who *and* client address, in
the shared cache, with a page (pages) or a 429 JSON (APIs) that says when to try again."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import LoginLink
from credits.models import Purchase
from tests.factories import CreditPackageFactory, UserFactory

LOGIN = reverse("portal:login")
ADMIN_LOGIN = reverse("admin:login")
RESET = reverse("portal:password-reset")
LINK = reverse("portal:login-link")
PASSWORD = "senha-forte-123"
# A fixed instant: the lockout is watched on a stopped clock, then moved past its end.
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
X, Y = "203.0.113.10", "203.0.113.20"


@pytest.fixture
def ana(plan):
    return UserFactory(email="ana@example.com", password=PASSWORD)


@pytest.fixture
def bia(plan):
    return UserFactory(email="bia@example.com", password=PASSWORD)


@pytest.fixture
def admin_user(plan):
    return UserFactory(
        email="chefe@solaris.test", password=PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def sign_in(client, email, password, *, ip=X, url=LOGIN):
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def locked_out(response) -> bool:
    return response.status_code == 429 and "throttled" in response.content.decode()


def test_thirty_wrong_passwords_then_the_right_one_waits_for_the_lockout_to_end(client, ana, clock):
    answers = [sign_in(client, ana.email, "wrong").status_code for _ in range(30)]
    # Nine forms with an error, the tenth failure locks, the rest are refused unchecked.
    assert answers == [200] * 9 + [429] * 21
    right = sign_in(client, ana.email, PASSWORD)
    assert locked_out(right) and not signed_in(client)
    assert right["Retry-After"] == str(15 * 60)
    html = right.content.decode()
    # pt-BR first, with the local time (São Paulo, UTC-3) it ends at.
    assert "Tente novamente às 12:15 (em 15 minutos)." in html
    clock.shift(timedelta(minutes=14, seconds=59))
    assert locked_out(sign_in(client, ana.email, PASSWORD)) and not signed_in(client)
    clock.shift(timedelta(seconds=2))
    after = sign_in(client, ana.email, PASSWORD)
    assert after.status_code == 302 and signed_in(client)


def test_the_lockout_page_speaks_english_too(client, ana, clock):
    client.cookies["django_language"] = "en"
    for _ in range(10):
        response = sign_in(client, ana.email, "wrong")
    assert "Try again at 12:15 (in 15 minutes)." in response.content.decode()
    assert "Too many failed sign-ins for this e-mail" in response.content.decode()


def test_a_lockout_holds_one_email_from_one_address_only(ana, bia, clock):
    attacker = Client()
    for _ in range(10):
        sign_in(attacker, ana.email, "wrong", ip=X)
    assert locked_out(sign_in(attacker, ana.email, PASSWORD, ip=X))
    # Ana from elsewhere, and Bia from the same address, sign in.
    elsewhere = Client()
    assert sign_in(elsewhere, ana.email, PASSWORD, ip=Y).status_code == 302
    neighbour = Client()
    assert sign_in(neighbour, bia.email, PASSWORD, ip=X).status_code == 302
    # The e-mail is counted as typed: another spelling of it is the same account.
    assert locked_out(sign_in(Client(), " ANA@Example.com ", PASSWORD, ip=X))


def test_the_admin_sign_in_is_throttled_the_same_way(admin_user, clock):
    attacker = Client()
    answers = [
        sign_in(attacker, admin_user.email, "wrong", url=ADMIN_LOGIN).status_code for _ in range(30)
    ]
    assert answers == [200] * 9 + [429] * 21
    assert locked_out(sign_in(attacker, admin_user.email, PASSWORD, url=ADMIN_LOGIN))
    assert not signed_in(attacker)
    # The admin, from another address, is not locked out by it.
    admin = Client()
    response = sign_in(admin, admin_user.email, PASSWORD, ip=Y, url=ADMIN_LOGIN)
    assert response.status_code == 302 and signed_in(admin)
    clock.shift(timedelta(minutes=15, seconds=1))
    assert sign_in(attacker, admin_user.email, PASSWORD, url=ADMIN_LOGIN).status_code == 302


def test_a_signed_in_user_cannot_guess_the_admin_password_unthrottled(ana, admin_user, clock):
    client = Client()
    client.force_login(ana)
    answers = [
        sign_in(client, admin_user.email, "wrong", url=ADMIN_LOGIN).status_code for _ in range(11)
    ]
    assert answers[-2:] == [429, 429]


def test_trusted_proxies_name_the_client_and_nobody_else_does(ana, settings, clock):
    settings.SOLARIS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxied = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": X}
    for _ in range(10):
        Client().post(LOGIN, {"username": ana.email, "password": "wrong"}, **proxied)
    refused = Client().post(LOGIN, {"username": ana.email, "password": PASSWORD}, **proxied)
    assert locked_out(refused)
    # Another client behind the same proxy is not locked out with them.
    other = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": f"{X}, {Y}"}
    response = Client().post(LOGIN, {"username": ana.email, "password": PASSWORD}, **other)
    assert response.status_code == 302
    # From a caller that is not a trusted proxy the header is its own text: it changes nothing.
    forged = {"REMOTE_ADDR": X, "HTTP_X_FORWARDED_FOR": "192.0.2.99"}
    assert locked_out(Client().post(LOGIN, {"username": ana.email, "password": PASSWORD}, **forged))


def test_the_reset_email_is_not_sent_seven_times_in_a_minute(client, ana, clock):
    answers = [client.post(RESET, {"email": ana.email}, REMOTE_ADDR=X) for _ in range(7)]
    assert [a.status_code for a in answers] == [302] * 5 + [429] * 2
    assert len(mail.outbox) == 5
    assert "Tente novamente às 13:00 (em 60 minutos)." in answers[-1].content.decode()
    # Another address asks from the same place; the same address from another place.
    assert client.post(RESET, {"email": "bia@example.com"}, REMOTE_ADDR=X).status_code == 302
    assert client.post(RESET, {"email": ana.email}, REMOTE_ADDR=Y).status_code == 302
    assert len(mail.outbox) == 6
    clock.shift(timedelta(hours=1, seconds=1))
    assert client.post(RESET, {"email": ana.email}, REMOTE_ADDR=X).status_code == 302
    assert len(mail.outbox) == 7


def _page(response, email: str) -> str:
    html = response.content.decode().replace(email, "X")
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", html)


@pytest.mark.parametrize("url", [RESET, LINK])
def test_throttled_email_senders_do_not_tell_who_is_a_user(client, ana, url, clock):
    unknown = "ninguem@example.com"
    known_answers = [client.post(url, {"email": ana.email}) for _ in range(6)]
    unknown_answers = [client.post(url, {"email": unknown}) for _ in range(6)]
    assert [a.status_code for a in known_answers] == [a.status_code for a in unknown_answers]
    assert known_answers[-1].status_code == 429
    assert _page(known_answers[-1], ana.email) == _page(unknown_answers[-1], unknown)
    assert {tuple(m.to) for m in mail.outbox} == {(ana.email,)}
    assert len(mail.outbox) == 5


def test_sign_in_link_emails_are_throttled(client, ana, clock):
    for _ in range(7):
        client.post(LINK, {"email": ana.email})
    assert len(mail.outbox) == 5
    assert LoginLink.objects.filter(user=ana).count() == 5


def test_the_widgets_sign_in_links_are_throttled_with_a_json_answer(ana, settings, clock):
    settings.SOLARIS_THROTTLE_REQUESTS = "3/h"
    client = Client()
    client.force_login(ana)
    url = reverse("portal:api-login-link")
    answers = [client.post(url, {}, content_type="application/json") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused["Retry-After"] == "3600"
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert "Tente novamente às 13:00" in error["message"]
    assert LoginLink.objects.filter(user=ana).count() == 3


def test_purchase_requests_are_throttled_on_the_page_and_the_api(ana, settings, clock):
    settings.SOLARIS_THROTTLE_REQUESTS = "3/h"
    packages = [CreditPackageFactory(credits=1_000 * n, price_cents=100 * n) for n in (1, 2, 3, 4)]
    client = Client()
    client.force_login(ana)
    api = reverse("portal:api-purchases")
    for package in packages[:3]:
        assert client.post(api, {"package": package.pk}).status_code == 201
    refused = client.post(api, {"package": packages[3].pk})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    page = client.post(
        reverse("portal:purchase-confirm", args=[packages[3].pk]),
        {"package": packages[3].pk, "idempotency_key": "a" * 32},
    )
    assert locked_out(page)
    assert Purchase.objects.filter(user=ana).count() == 3
    # Another user is not held back by Ana's requests.
    other = Client()
    other.force_login(UserFactory(email="caio@example.com"))
    assert other.post(api, {"package": packages[3].pk}).status_code == 201
