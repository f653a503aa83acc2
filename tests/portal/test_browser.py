"""The pages and the widget in a real Chromium (Playwright driving /usr/bin/chromium, headless).

Screenshots go to test-artifacts/ (desktop 1280×800 and mobile 390×844).
"""

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from accounts.models import User
from credits.models import Purchase
from tests.chromium import chromium_launched
from tests.factories import UserFactory
from tests.portal.conftest import LIBRECHAT_SECRET, librechat_token

# Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
PASSWORD = "senha-forte-123"


@pytest.fixture(scope="module")
def browser():
    with chromium_launched() as chromium:
        yield chromium


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=DESKTOP, locale="pt-BR")
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def seeded(plan, package, settings, live_server):
    settings.SOLARIS_PUBLIC_URL = live_server.url
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    return UserFactory(email="ana@example.com", name="Ana", librechat_id="lc-ana")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("mobile", MOBILE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=False)
    page.set_viewport_size(DESKTOP)


def sign_in(page, live_server, email="ana@example.com"):
    page.goto(f"{live_server.url}/entrar/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r"/conta/$"))


def test_user_signs_in_and_sees_the_available_credits(page, live_server, seeded, spend, settings):
    spend(seeded, 12_345)
    sign_in(page, live_server)
    assert page.locator("#available").inner_text() == "87.655"
    assert page.locator("#used-percent").inner_text() == "12,34 %"
    assert page.locator("#alert-modal").is_visible() is False
    assert page.locator("#blocked-modal").is_visible() is False
    # With DEBUG off the cookies are Secure; Chromium keeps them on http://localhost all the same.
    session = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    assert session["secure"] is settings.SESSION_COOKIE_SECURE
    shot(page, "statement")


def test_alert_modal_shows_once_per_crossing(page, live_server, seeded, spend):
    spend(seeded, 85_000)
    sign_in(page, live_server)
    modal = page.locator("#alert-modal")
    modal.wait_for(state="visible")
    assert "85,00 %" in modal.inner_text()
    assert "Pacote 50 mil" in modal.inner_text()
    shot(page, "alert-modal")
    modal.get_by_role("button", name="Entendi").click()
    modal.wait_for(state="hidden")
    page.reload()
    page.locator("#available").wait_for()
    page.wait_for_timeout(300)
    assert not modal.is_visible()
    assert "state-alert" in page.locator("#state-banner").get_attribute("class")


def test_blocking_modal_shows_the_purchase_instructions(page, live_server, seeded, spend):
    spend(seeded, 100_000)
    sign_in(page, live_server)
    modal = page.locator("#blocked-modal")
    modal.wait_for(state="visible")
    text = modal.inner_text()
    assert "Seus créditos acabaram" in text
    assert "Pacote 50 mil" in text and "R$ 29,90" in text
    assert "compras@solaris.example" in text
    assert modal.get_by_role(
        "button", name="Solicitar compra: Pacote 50 mil, R$ 29,90"
    ).is_visible()
    shot(page, "blocked-modal")
    page.reload()
    modal.wait_for(state="visible")  # blocking: back on every visit while blocked


def test_purchase_request_appears_pending(page, live_server, seeded, package):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/conta/comprar/")
    button = page.get_by_role("button", name="Solicitar compra: Pacote 50 mil, R$ 29,90")
    button.dblclick()
    order = page.locator("[data-order]")
    order.wait_for()
    purchase = Purchase.objects.get(user=seeded)
    assert f"Pedido #{purchase.pk} · R$ 29,90 · aguardando pagamento" in order.inner_text()
    assert "compras@solaris.example" in order.inner_text()  # the instructions
    assert page.locator(".packages").is_hidden()  # no more offering every package
    shot(page, "purchase-requested")
    assert Purchase.objects.filter(user=seeded).count() == 1
    assert purchase.status == Purchase.Status.REQUESTED
    page.goto(f"{live_server.url}/conta/")
    assert (
        f"Pedido #{purchase.pk} · R$ 29,90 · aguardando pagamento"
        in page.locator("#pending-order").inner_text()
    )
    row = page.locator("tr.purchase-pending")
    assert "aguardando pagamento" in row.inner_text()


def librechat_page(live_server, token: str) -> str:
    return f"""<!DOCTYPE html><html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>LibreChat</title>
<script src="{live_server.url}/static/solaris/widget.js" defer></script>
</head><body style="font-family:sans-serif;margin:0;padding:1rem"><h1>LibreChat (test page)</h1>
<p>A page standing in for LibreChat: it calls its own API with its access token.</p>
<script>
const TOKEN = {token!r};
document.addEventListener("DOMContentLoaded", () =>
  fetch("/api/user", {{headers: {{Authorization: "Bearer " + TOKEN}}}}));
window.chatXhr = () => new Promise((done) => {{
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/ask/openAI");
  xhr.setRequestHeader("Authorization", "Bearer " + TOKEN);
  xhr.onloadend = done;
  xhr.send("{{}}");
}});
window.chatFetch = () => fetch("/api/agents/chat", {{method: "POST",
  headers: new Headers({{Authorization: "Bearer " + TOKEN}})}}).then((r) => r.text());
</script></body></html>"""


@pytest.fixture
def fake_librechat(live_server, settings):
    """LibreChat cannot run here: a small server on another loopback origin plays its part, a page
    that calls its own API (answered with an empty event stream) with its access token."""
    token = librechat_token(user_id="lc-ana", email="ana@example.com")

    class LibreChat(BaseHTTPRequestHandler):
        def _answer(self, content_type: str, body: str) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/librechat/":
                self._answer("text/html; charset=utf-8", librechat_page(live_server, token))
            else:
                self._answer("application/json", "{}")

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer("text/event-stream", "data: {}\n\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), LibreChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    settings.LIBRECHAT_JWT_SECRET = LIBRECHAT_SECRET
    settings.SOLARIS_WIDGET_ALLOWED_ORIGINS = [origin]
    yield f"{origin}/librechat/"
    server.shutdown()
    server.server_close()


def test_widget_counter_and_modals_inside_librechat(
    page, live_server, seeded, spend, fake_librechat
):
    spend(seeded, 70_000)
    page.goto(fake_librechat)
    counter = page.locator("#solaris-widget .c")
    counter.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#solaris-widget').shadowRoot.querySelector('.c b')"
    )
    assert counter.locator("b").inner_text() == "30.000"
    assert "70,00 %" in counter.inner_text()
    assert page.locator("#solaris-widget .d").count() == 0
    shot(page, "widget-counter")

    spend(seeded, 15_000)
    page.evaluate("chatXhr()")  # a chat completion finishing: the widget refreshes
    modal = page.locator("#solaris-widget .d")
    modal.wait_for()
    assert "Seus créditos estão acabando" in modal.inner_text()
    assert "85,00 %" in modal.inner_text() and "Pacote 50 mil" in modal.inner_text()
    assert counter.locator("b").inner_text() == "15.000"
    shot(page, "widget-alert")
    modal.get_by_role("button", name="Entendi").click()
    assert page.locator("#solaris-widget .d").count() == 0
    page.reload()
    counter.locator("b").wait_for()
    page.evaluate("chatFetch()")
    page.wait_for_timeout(1_000)
    assert page.locator("#solaris-widget .d").count() == 0  # dismissed for this crossing

    spend(seeded, 15_000)
    page.evaluate("chatFetch()")
    blocked = page.locator("#solaris-widget .d.blk")
    blocked.wait_for()
    assert "Seus créditos acabaram" in blocked.inner_text()
    assert "compras@solaris.example" in blocked.inner_text()
    shot(page, "widget-blocked")


def test_widget_statement_link_signs_the_librechat_user_in(
    page, live_server, seeded, fake_librechat
):
    page.goto(fake_librechat)
    counter = page.locator("#solaris-widget .c")
    counter.locator("b").wait_for()
    counter.click()
    with page.context.expect_page() as opened:
        page.locator("#solaris-widget .p a").first.click()
    statement = opened.value
    # The link's page names the account and waits for the click (no sign-in on opening it).
    statement.locator("#login-link-account").wait_for()
    assert statement.locator("#login-link-account").inner_text() == "a***@example.com"
    assert User.objects.get(pk=seeded.pk).login_links.get().used_at is None
    statement.locator("#login-link-continue").click()
    statement.wait_for_url(re.compile(r"/conta/$"))
    assert statement.locator("#available").inner_text() == "100.000"
    assert "token" not in statement.url and "ey" not in urlparse(statement.url).query
    assert User.objects.get(pk=seeded.pk).login_links.get().used_at is not None
