"""The portal pages under their Content-Security-Policy in a real Chromium: every page renders
with no violation reported (no inline script or style, nothing from elsewhere)."""

import os
from datetime import timedelta

import pytest

from accounts.services import login_link_create
from tests.factories import CreditPackageFactory, UserFactory
from tests.portal.test_browser import PASSWORD, shot

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Every violation the page reports, kept where the test can read it.
VIOLATIONS_RECORDED = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def page(context, live_server):
    context.add_init_script(VIOLATIONS_RECORDED)
    page = context.new_page()
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.console_messages = console
    return page


def csp_kept(page, response, url: str) -> None:
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.wait_for_load_state("load")
    violations = page.evaluate("window.__csp")
    refused = [text for text in page.console_messages if "Content Security Policy" in text]
    assert violations == [] and refused == [], (url, violations, refused)
    # Style attributes are inline styles too: none is left to be refused.
    assert page.evaluate("document.querySelectorAll('[style]').length") == 0, url


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200, url
    csp_kept(page, response, url)


def test_the_portal_pages_break_no_rule_of_their_policy(page, live_server, plan, settings):
    settings.SOLARIS_PUBLIC_URL = live_server.url
    ana = UserFactory(email="ana@example.com", password=PASSWORD)
    package = CreditPackageFactory(name="Pacote 50 mil")
    for path in ("/entrar/", "/entrar/link/", "/senha/"):
        visit(page, live_server.url + path)
    page.goto(f"{live_server.url}/entrar/")
    page.fill("#id_username", ana.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{live_server.url}/conta/")
    for path in ("/conta/", "/conta/chaves/", "/conta/comprar/", f"/conta/comprar/{package.pk}/"):
        visit(page, live_server.url + path)


def test_the_sign_in_link_page_and_the_lockout_page(page, live_server, plan, settings):
    settings.SOLARIS_THROTTLE_SIGN_IN = "2/15m"
    ana = UserFactory(email="ana.souza@example.com", password=PASSWORD)
    _link, raw = login_link_create(user=ana, channel="librechat", ttl=timedelta(minutes=2))
    visit(page, f"{live_server.url}/entrar/link/{raw}/")
    assert page.locator("#login-link-account").inner_text() == "an***@example.com"
    shot(page, "sign-in-link")
    page.goto(f"{live_server.url}/entrar/")
    for _attempt in range(2):
        page.fill("#id_username", ana.email)
        page.fill("#id_password", "wrong")
        with page.expect_response(f"{live_server.url}/entrar/") as answer:
            page.click("button[type=submit].primary")
    assert answer.value.status == 429
    csp_kept(page, answer.value, "/entrar/ (locked out)")
    assert "Tente novamente às" in page.locator("#try-again").inner_text()
    shot(page, "sign-in-locked-out")
