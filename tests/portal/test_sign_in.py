import re
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import LoginLink, User
from accounts.services import login_link_consume, login_link_create
from tests.factories import UserFactory

LOGIN = reverse("portal:login")
LINK = reverse("portal:login-link")
STATEMENT = reverse("portal:statement")


def link_in(text: str) -> str:
    return re.search(r"https?://\S+/entrar/link/\S+/", text).group(0)


def test_login_page_is_in_portuguese_first(client, db):
    html = client.get(LOGIN).content.decode()
    assert '<html lang="pt-BR">' in html
    assert "Entrar" in html and "Esqueceu a senha?" in html


def test_login_with_email_and_password_then_logout(client, user):
    response = client.post(LOGIN, {"username": "ANA@example.com", "password": "senha-forte-123"})
    assert response.status_code == 302 and response["Location"] == STATEMENT
    assert client.get(STATEMENT).status_code == 200
    assert client.post(reverse("portal:logout")).status_code == 302
    assert client.get(STATEMENT).status_code == 302


def test_wrong_password_is_refused(client, user):
    response = client.post(LOGIN, {"username": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get(STATEMENT).status_code == 302


def test_login_link_by_email_over_smtp_works_once(client, plan, smtp_sink, settings):
    settings.SOLARIS_PUBLIC_URL = "http://testserver"
    user = User.objects.create_user("lc@example.com")  # provisioned from LibreChat: no password
    assert not user.has_usable_password()
    response = client.post(LINK, {"email": "LC@example.com"})
    assert response.status_code == 200
    assert len(smtp_sink.messages) == 1
    mail = smtp_sink.messages[0]
    assert mail["To"] == "lc@example.com"
    assert "IA SOLARIS" in mail["Subject"]
    url = link_in(mail.get_content())
    path = url.removeprefix("http://testserver")
    # Opening the link (or a mail scanner fetching it) does not spend it.
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    signed = client.post(path)
    assert signed.status_code == 302 and signed["Location"] == STATEMENT
    assert client.get(STATEMENT).status_code == 200
    client.logout()
    again = client.post(path)
    assert again.status_code == 400
    assert client.get(STATEMENT).status_code == 302


def test_login_link_request_does_not_reveal_unknown_emails(client, user, mailoutbox):
    known = client.post(LINK, {"email": user.email})
    unknown = client.post(LINK, {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200

    def page(response, email):
        html = response.content.decode().replace(email, "X")
        return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", html)

    assert page(known, user.email) == page(unknown, "nobody@example.com")
    assert [m.to for m in mailoutbox] == [[user.email]]


def test_login_link_requests_are_throttled(client, user, mailoutbox):
    for _ in range(7):
        client.post(LINK, {"email": user.email})
    assert len(mailoutbox) == 5


def test_login_link_email_speaks_the_users_language(client, plan, mailoutbox):
    UserFactory(email="en@example.com", language="en")
    client.post(LINK, {"email": "en@example.com"})
    assert "sign in" in mailoutbox[0].body and "sign-in link" in mailoutbox[0].subject


def test_expired_or_bad_login_links_are_refused(client, user):
    _link, raw = login_link_create(user=user, channel=LoginLink.Channel.EMAIL, ttl=timedelta(0))
    path = reverse("portal:login-link-use", args=[raw])
    assert client.get(path).status_code == 400
    assert client.post(path).status_code == 400
    assert client.get(STATEMENT).status_code == 302
    bad = reverse("portal:login-link-use", args=["not-a-token"])
    assert client.post(bad).status_code == 400


def test_login_link_is_single_use_at_the_service(user):
    _link, raw = login_link_create(
        user=user, channel=LoginLink.Channel.EMAIL, ttl=timedelta(minutes=5)
    )
    assert login_link_consume(raw_token=raw) == user
    assert login_link_consume(raw_token=raw) is None
    stored = LoginLink.objects.get()
    assert stored.used_at is not None and raw not in stored.token_hash


def test_login_link_of_a_suspended_user_does_not_sign_in(user):
    _link, raw = login_link_create(
        user=user, channel=LoginLink.Channel.EMAIL, ttl=timedelta(minutes=5)
    )
    User.objects.filter(pk=user.pk).update(is_suspended=True)
    assert login_link_consume(raw_token=raw) is None


def test_login_link_next_must_stay_on_this_site(client, user):
    _link, raw = login_link_create(
        user=user, channel=LoginLink.Channel.EMAIL, ttl=timedelta(minutes=5)
    )
    path = reverse("portal:login-link-use", args=[raw])
    response = client.post(path + "?next=https://evil.example/")
    assert response["Location"] == STATEMENT


def test_password_reset_by_email(client, user, mailoutbox):
    response = client.post(reverse("portal:password-reset"), {"email": user.email})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:password-reset-done")
    assert len(mailoutbox) == 1 and "senha" in mailoutbox[0].subject.lower()
    path = re.search(r"http://testserver(/senha/\S+/\S+/)", mailoutbox[0].body).group(1)
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "outra-senha-456!", "new_password2": "outra-senha-456!"},
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("portal:password-reset-complete")
    assert client.login(username=user.email, password="outra-senha-456!")


def test_language_switch_is_saved_on_the_user(client, user):
    client.force_login(user)
    response = client.post(reverse("portal:language"), {"language": "en", "next": STATEMENT})
    assert response.status_code == 302 and response["Location"] == STATEMENT
    user.refresh_from_db()
    assert user.language == "en"
    html = client.get(STATEMENT).content.decode()
    assert '<html lang="en">' in html and "credits available" in html
    assert client.post(reverse("portal:language"), {"language": "xx"}).status_code == 400


def test_anonymous_language_switch_uses_a_cookie(client, db):
    client.post(reverse("portal:language"), {"language": "en", "next": LOGIN})
    assert "Forgot your password?" in client.get(LOGIN).content.decode()


@pytest.mark.parametrize("amount", [1_234_567])
def test_numbers_are_formatted_per_language(client, user, amount):
    from django.utils import translation

    from portal.templatetags.portal_tags import brl, credits

    with translation.override("pt-br"):
        assert (credits(amount), brl(499_990)) == ("1.234.567", "R$ 4.999,90")
    with translation.override("en"):
        assert (credits(-amount), brl(5)) == ("-1,234,567", "R$ 0,05".replace(",", "."))


def test_login_link_mail_failure_is_explained_and_the_link_unusable(client, user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens on discard
    settings.EMAIL_TIMEOUT = 2
    response = client.post(LINK, {"email": user.email})
    assert response.status_code == 503
    assert "e-mail" in response.content.decode()
    assert response.context["form"].non_field_errors()
