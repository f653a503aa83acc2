"""The end-user pages as people see them: a real Chromium (Playwright driving /usr/bin/chromium)
at 1366×900 and 390×844, a month of history, Mercado Pago's stand-in and a LibreChat stand-in.

Screenshots go to test-artifacts/pages/ (git-ignored), one per test and size.
"""

import json
import os
import threading
import time
import uuid
from datetime import timedelta
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlparse

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from credits.models import ModelPrice
from credits.services import credits_grant, hold_create, hold_settle
from proxy.models import CallRecord
from proxy.services import record_write
from solaris.celery import app as celery_app
from tests.chromium import SIZES, chromium_launched
from tests.factories import CreditPackageFactory, ModelPriceFactory, PlanFactory, UserFactory
from tests.payments.conftest import ACCESS_TOKEN, WEBHOOK_SECRET, signature
from tests.payments.standin import MercadoPagoStandIn
from tests.portal.conftest import LIBRECHAT_SECRET, librechat_token

# Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
PASSWORD = "senha-forte-123"
EMAIL = "ana@example.com"


@pytest.fixture(scope="module")
def browser():
    with chromium_launched() as chromium:
        yield chromium


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    return request.param


@pytest.fixture
def context(browser, size, live_server):
    context = browser.new_context(viewport=SIZES[size], locale="pt-BR")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda message: page.console_messages.append(message.text))
    return page


@pytest.fixture
def shot(size):
    def shot(page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}-{size}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return shot


def sign_in(page, live_server, email: str = EMAIL, next_path: str = "/conta/") -> None:
    page.goto(f"{live_server.url}/entrar/?{urlencode({'next': next_path})}")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(lambda url: url == live_server.url + next_path)


@pytest.fixture
def site(settings, live_server, transactional_db):
    settings.SOLARIS_PUBLIC_URL = live_server.url
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # e-mails and webhook processing run in-process
    yield live_server
    celery_app.conf.task_always_eager = saved


@pytest.fixture
def plan(site):
    return PlanFactory(slug="pro", name="Profissional", monthly_allowance=100_000, is_default=True)


@pytest.fixture
def prices(site) -> list[ModelPrice]:
    return [
        ModelPriceFactory(model="gpt-4o-mini", input_weight="1", output_weight="2"),
        ModelPriceFactory(model="claude-sonnet", input_weight="3", output_weight="6"),
    ]


@pytest.fixture
def package(site):
    return CreditPackageFactory(name="Pacote 100 mil", credits=100_000, price_cents=4_990)


@pytest.fixture
def ana(plan, prices, package):
    return UserFactory(email=EMAIL, name="Ana Souza", librechat_id="lc-ana")


def record_call(user, price: ModelPrice, *, prompt: int, completion: int, when=None) -> CallRecord:
    """A call booked as the proxy books it: a hold, its settlement, the call record."""
    when = when or timezone.now()
    request_id = f"call-{uuid.uuid4().hex}"
    admission = hold_create(
        user=user,
        request_id=request_id,
        price=price,
        prompt_tokens=prompt,
        max_tokens=completion,
        now=when,
    )
    entry = hold_settle(
        request_id=request_id, prompt_tokens=prompt, completion_tokens=completion, now=when
    )
    return record_write(
        request_id=request_id,
        user=user,
        model=price.model,
        stream=True,
        prompt_tokens=prompt,
        completion_tokens=completion,
        credits=-entry.amount if entry else 0,
        held=admission.hold.amount,
        status_code=200,
        end_reason=CallRecord.EndReason.COMPLETED,
        duration_ms=900,
        created_at=when,
    )


@pytest.fixture
def month(ana, prices):
    """Ana's cycle so far: the plan's 100,000, a 20,000 top-up, calls on two models over a week."""
    credits_grant(user=ana, amount=20_000, idempotency_key="welcome", reason="Boas-vindas")
    now = timezone.now()
    for day in range(6, -1, -1):
        when = now - timedelta(days=day, minutes=5)
        record_call(ana, prices[0], prompt=2_000, completion=1_500, when=when)
        record_call(ana, prices[1], prompt=1_000, completion=500, when=when)
    return ana


def spend_all(user) -> None:
    """Spend every credit left, in one call at one credit per token."""
    from credits.selectors import account_summary

    unit = ModelPriceFactory(model="gpt-unit", input_weight="1", output_weight="1")
    left = account_summary(user_id=user.pk).available
    record_call(user, unit, prompt=left - 1, completion=1)


def period_query() -> str:
    today = timezone.localdate()
    return f"start={(today - timedelta(days=6)).isoformat()}&end={today.isoformat()}"


# --- Mercado Pago ---


@pytest.fixture
def mercadopago(settings, site):
    standin = MercadoPagoStandIn(access_token=ACCESS_TOKEN).start()
    settings.MERCADOPAGO_ACCESS_TOKEN = ACCESS_TOKEN
    settings.MERCADOPAGO_API_BASE = standin.url
    settings.MERCADOPAGO_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MERCADOPAGO_TIMEOUT_SECONDS = 5.0
    yield standin
    standin.stop()


def webhook_deliver(live_server, payment_id: str) -> int:
    """A signed notification, as Mercado Pago sends it, to the running Solaris."""
    request_id = str(uuid.uuid4())
    ts = int(time.time())
    url = (
        f"{live_server.url}{reverse('payments:mercadopago-webhook')}"
        f"?data.id={payment_id}&type=payment"
    )
    body = {"action": "payment.updated", "type": "payment", "data": {"id": str(payment_id)}}
    response = httpx.post(
        url,
        content=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "x-signature": signature(data_id=str(payment_id), request_id=request_id, ts=ts),
            "x-request-id": request_id,
        },
        timeout=10,
    )
    return response.status_code


# --- LibreChat ---


LIBRECHAT_CSS = b"""body{font-family:sans-serif;margin:0} main{padding:1rem}
#composer{position:fixed;left:25vw;right:0;bottom:0;height:140px;display:flex;gap:8px;
align-items:center;padding:16px;background:#f1f3f5}
@media (max-width:768px){#composer{left:0}}
#composer textarea{flex:1;height:80px}"""


def librechat_html(script_src: str, token: str, *, attributes: str = "") -> str:
    """A page standing in for LibreChat: its composer and send button at the bottom, its own API
    called with its access token, the widget included as the reverse proxy would add it."""
    return f"""<!DOCTYPE html><html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>LibreChat</title>
<script src="{script_src}" {attributes} defer></script>
<link rel="stylesheet" href="/librechat.css">
</head><body><main><h1>LibreChat (página de teste)</h1>
<button id="before">Novo chat</button></main>
<form id="composer"><textarea id="prompt" aria-label="Mensagem"></textarea>
<button id="send" type="button">Enviar</button></form>
<script>
const TOKEN = {json.dumps(token)};
document.addEventListener("DOMContentLoaded", () =>
  fetch("/api/user", {{headers: {{Authorization: "Bearer " + TOKEN}}}}));
window.chatFetch = () => fetch("/api/agents/chat", {{method: "POST",
  headers: new Headers({{Authorization: "Bearer " + TOKEN}})}}).then((r) => r.text());
</script></body></html>"""


class LibreChatStandIn:
    """LibreChat on its own loopback origin, with Solaris behind it under /solaris/ as the nginx
    example of docs/widget.md does it (same origin); records what reaches Solaris through it."""

    def __init__(self, solaris_url: str, token: str):
        self.solaris = urlparse(solaris_url)
        self.token = token
        self.forwarded: list[dict] = []  # headers of every request sent on to Solaris
        self.attributes = ""
        self.cross_origin = True
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> "LibreChatStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, content_type: str, body: bytes, headers=()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                standin.forwarded.append(
                    {"path": self.path, **{k.lower(): v for k, v in headers.items()}}
                )
                upstream = HTTPConnection(
                    standin.solaris.hostname, standin.solaris.port, timeout=10
                )
                upstream.request(method, self.path[len("/solaris") :], body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                passed = [
                    (k, v)
                    for k, v in answer.getheaders()
                    if k.lower()
                    not in ("content-length", "transfer-encoding", "connection", "content-type")
                ]
                self._answer(
                    answer.status, answer.getheader("Content-Type", "text/plain"), data, passed
                )

            def do_GET(self):
                if self.path.startswith("/solaris/"):
                    self._forward("GET")
                elif self.path.startswith("/c/"):
                    if standin.cross_origin:
                        src = f"{standin.solaris.scheme}://{standin.solaris.netloc}/static/solaris/widget.js"
                    else:
                        src = "/solaris/static/solaris/widget.js"
                    html = librechat_html(src, standin.token, attributes=standin.attributes)
                    self._answer(200, "text/html; charset=utf-8", html.encode())
                elif self.path == "/librechat.css":
                    self._answer(200, "text/css", LIBRECHAT_CSS)
                else:
                    self._answer(200, "application/json", b"{}")

            def do_POST(self):
                if self.path.startswith("/solaris/"):
                    self._forward("POST")
                    return
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(200, "text/event-stream", b"data: {}\n\n")

            def do_OPTIONS(self):
                self._forward("OPTIONS")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def librechat(site, settings):
    token = librechat_token(user_id="lc-ana", email=EMAIL)
    standin = LibreChatStandIn(site.url, token).start()
    settings.LIBRECHAT_JWT_SECRET = LIBRECHAT_SECRET
    settings.SOLARIS_WIDGET_ALLOWED_ORIGINS = [standin.url]
    yield standin
    standin.stop()


def widget_ready(page) -> None:
    # Locators pierce the widget's open shadow root; no string is evaluated in the page, so this
    # waits as well under a strict Content-Security-Policy (no 'unsafe-eval').
    page.locator("#solaris-widget .c b").first.wait_for()
