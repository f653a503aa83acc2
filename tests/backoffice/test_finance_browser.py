"""The finance screens in a real browser (Debian's Chromium driven by Playwright) at 1366×900 and
390×844: the users list fits and leads with the top-up, a top-up while a purchase waits needs the
box ticked (with the live "= 500.000 créditos" preview), cancelling is a danger-styled step with a
reason, the badges are readable (WCAG ratios from the colours Chromium paints), and finance
refunds a PIX purchase pro rata through Mercado Pago's stand-in.

Screenshots go to test-artifacts/finance/ (git-ignored), one per test and size.
"""

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client

from backoffice.roles import FINANCE
from credits.models import Account, Grant, LedgerEntry, Purchase
from credits.services import hold_create, hold_settle, purchase_request
from payments.models import Payment
from tests.backoffice.conftest import spend as call
from tests.backoffice.conftest import staff
from tests.chromium import SIZES, chromium_launched
from tests.factories import CreditPackageFactory, ModelPriceFactory, PlanFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "finance"

# The WCAG contrast of each element's text against its own painted background.
CONTRAST_JS = """
(elements) => elements.map((element) => {
  const rgb = (value) => value.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const style = getComputedStyle(element);
  const [light, dark] = [luminance(rgb(style.color)), luminance(rgb(style.backgroundColor))]
    .sort((a, b) => b - a);
  return {
    text: element.textContent.trim(),
    color: style.color,
    background: style.backgroundColor,
    ratio: (light + 0.05) / (dark + 0.05),
  };
})
"""


@pytest.fixture(scope="module")
def browser():
    """Chromium, once for the module. Playwright's sync API keeps an event loop in this thread:
    the ORM calls of these tests are plain synchronous code between its steps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with chromium_launched() as chromium:
            yield chromium


@pytest.fixture(params=list(SIZES))
def size(request) -> str:
    return request.param


@pytest.fixture
def finance(transactional_db):
    return staff("financeiro@solaris.test", group=FINANCE)


@pytest.fixture
def page(browser, size, live_server, finance):
    """A page signed in as finance (the session of Django's test client, handed to Chromium)."""
    client = Client()
    client.force_login(finance)
    context = browser.new_context(viewport=SIZES[size], locale="pt-BR")
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.base = live_server.url
    yield page
    context.close()


@pytest.fixture
def shot(size):
    def shot(page, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)

    return shot


@pytest.fixture
def people(transactional_db):
    """Customers in every state, a pending manual purchase, and a staff member."""
    PlanFactory(slug="pro", name="Profissional", monthly_allowance=100_000, is_default=True)
    price = ModelPriceFactory(model="gpt-4o-mini", input_weight="1", output_weight="1")
    carla = UserFactory(email="carla.cliente.com.nome.longo@empresa-exemplo.com.br", name="Carla")
    alert = UserFactory(email="bruno@example.com", name="Bruno Alerta")
    blocked = UserFactory(email="dora@example.com", name="Dora Bloqueada")
    for user, amount in ((carla, 1_234), (alert, 85_000), (blocked, 100_000)):
        call(user, price, request_id=f"spent-{uuid.uuid4().hex}", prompt=0, completion=amount)
    package = CreditPackageFactory(name="Pacote 100 mil", credits=100_000, price_cents=4_990)
    waiting = purchase_request(user=carla, idempotency_key="carla-1", package=package)
    staff("gerente@solaris.test", group=FINANCE)
    return {"carla": carla, "waiting": waiting}


def result_rows(page):
    return page.locator("#result_list tbody tr")


def test_the_users_list_fits_and_leads_with_the_top_up(page, people, size, shot):
    page.goto(f"{page.base}/admin/accounts/user/")
    page.wait_for_selector("#result_list")
    text = page.inner_text("#result_list")
    assert "gerente@solaris.test" not in text and "financeiro@solaris.test" not in text
    assert result_rows(page).count() == 3  # customers only
    width = page.evaluate("() => document.documentElement.clientWidth")
    button = result_rows(page).first.locator("a.add-credits").bounding_box()
    assert button is not None and button["x"] + button["width"] <= width  # never cut off
    if size == "desktop":
        # Every column visible: the table does not scroll inside its box, nor the page.
        results = page.locator("#changelist .results")
        assert results.evaluate("(e) => e.scrollWidth <= e.clientWidth")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        assert page.locator("th.column-last_call").is_visible()
    shot(page, "users-list")
    if size == "desktop":
        page.goto(f"{page.base}/admin/credits/purchase/")
        shot(page, "purchases-list")
        results = page.locator("#changelist .results")
        assert results.evaluate("(e) => e.scrollWidth <= e.clientWidth")
    page.goto(f"{page.base}/admin/accounts/user/?people=staff")
    assert "gerente@solaris.test" in page.inner_text("#result_list")
    shot(page, "users-list-staff")


def test_a_top_up_while_a_purchase_waits_needs_the_box_ticked(page, people, shot):
    carla, waiting = people["carla"], people["waiting"]
    page.goto(f"{page.base}/admin/accounts/user/{carla.pk}/add-credits/")
    pending = page.locator("#pending-purchases")
    assert f"#{waiting.pk}" in pending.inner_text() and "R$ 49,90" in pending.inner_text()
    assert pending.locator("a.confirm-instead").inner_text() == (
        f"confirmar a compra #{waiting.pk} em vez disso"
    )
    amount = page.locator("#id_amount")
    amount.fill("500000")
    assert page.inner_text("#id_amount-preview") == "= 500.000 créditos"
    amount.fill("1")
    assert page.inner_text("#id_amount-preview") == "= 1 crédito"
    amount.fill("500000")
    page.fill("#id_reason", "PIX recebido por fora")
    shot(page, "top-up-pending")
    page.click("input[type=submit][name=_submit]")
    error = page.locator(f".field-acknowledge_purchase_{waiting.pk} .errorlist")
    assert "confirme essa compra em vez disso" in error.inner_text()
    assert page.inner_text("#id_amount-preview") == "= 500.000 créditos"  # after the reload too
    assert not Grant.objects.filter(account_id=carla.pk, source="manual").exists()
    shot(page, "top-up-refused")
    page.check(f"#id_acknowledge_purchase_{waiting.pk}")
    page.click("input[type=submit][name=_submit]")
    page.wait_for_selector("ul.messagelist li.success")
    grants = Grant.objects.filter(account_id=carla.pk, source="manual")
    assert list(grants.values_list("amount", flat=True)) == [500_000]


def test_cancelling_is_a_danger_step_with_a_reason(page, people, shot):
    waiting = people["waiting"]
    page.goto(f"{page.base}/admin/credits/purchase/{waiting.pk}/change/")
    danger = "rgb(186, 33, 33)"  # Django admin's --delete-button-bg
    link = page.locator("a.cancel-purchase")
    assert link.evaluate("(e) => getComputedStyle(e).backgroundColor") == danger
    shot(page, "purchase-page")
    link.click()
    submit = page.locator("input[type=submit][name=_submit]")
    assert submit.get_attribute("value") == "Cancelar esta compra"
    assert submit.evaluate("(e) => getComputedStyle(e).backgroundColor") == danger
    assert "Manter a compra" in page.inner_text(".submit-row")
    submit.click()
    assert page.locator(".field-reason .errorlist").is_visible()
    assert Purchase.objects.get(pk=waiting.pk).status == "requested"
    page.fill("#id_reason", "Pedido em dobro")
    shot(page, "purchase-cancel-step")
    page.click("input[type=submit][name=_submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "Cancelada: Pedido em dobro" in page.inner_text("ul.messagelist")
    assert Purchase.objects.get(pk=waiting.pk).status == "cancelled"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_badges_are_readable(page, people, scheme, shot):
    page.emulate_media(color_scheme=scheme)
    readings = []
    for path, least in (("/admin/accounts/user/", 3), ("/admin/credits/purchase/", 1)):
        page.goto(page.base + path)
        badges = page.locator(".badge")
        assert badges.count() >= least
        readings += page.evaluate(CONTRAST_JS, badges.element_handles())
    shot(page, f"badges-{scheme}")
    labels = {reading["text"] for reading in readings}
    assert {"normal", "alerta", "bloqueado", "solicitada"} <= labels
    failing = [reading for reading in readings if reading["ratio"] < 4.5]
    assert failing == []
    alert = next(reading for reading in readings if reading["text"] == "alerta")
    assert alert["background"] == "rgb(138, 90, 0)" and alert["ratio"] > 5.5


# --- finance refunds a PIX purchase pro rata ---


@pytest.fixture
def pix_paid(people, settings, deliver_signed):
    """Ana paid the 100 mil package by PIX (webhook signed as Mercado Pago signs it) and spent
    30 000 credits of it."""
    from tests.payments.conftest import ACCESS_TOKEN, WEBHOOK_SECRET
    from tests.payments.standin import MercadoPagoStandIn

    standin = MercadoPagoStandIn(access_token=ACCESS_TOKEN).start()
    settings.MERCADOPAGO_ACCESS_TOKEN = ACCESS_TOKEN
    settings.MERCADOPAGO_API_BASE = standin.url
    settings.MERCADOPAGO_WEBHOOK_SECRET = WEBHOOK_SECRET
    PlanFactory(slug="vazio", monthly_allowance=0)
    ana = UserFactory(email="ana@example.com", name="Ana Souza", plan_slug="vazio")
    buyer = Client()
    buyer.force_login(ana)
    package = CreditPackageFactory(name="Pacote PIX", credits=100_000, price_cents=4_990)
    answer = buyer.post(
        "/api/v1/me/purchases", {"package": package.pk}, content_type="application/json"
    )
    payment = Payment.objects.get(purchase_id=answer.json()["id"])
    standin.approve(payment.provider_payment_id)
    deliver_signed(payment.provider_payment_id)
    price = ModelPriceFactory(model="unit", input_weight="1", output_weight="1")
    hold_create(user=ana, request_id="ana-1", price=price, prompt_tokens=0, max_tokens=30_000)
    hold_settle(request_id="ana-1", prompt_tokens=0, completion_tokens=30_000)
    yield ana, payment, standin
    standin.stop()


@pytest.fixture
def deliver_signed(settings):
    """Hand Solaris one signed notification and process it in-process (eager Celery)."""
    from solaris.celery import app as celery_app
    from tests.payments.conftest import notification

    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True

    def deliver(payment_id):
        assert notification(Client(), payment_id).status_code == 200

    yield deliver
    celery_app.conf.task_always_eager = saved


def test_finance_refunds_a_pix_purchase_pro_rata(page, pix_paid, size, shot):
    ana, payment, standin = pix_paid
    assert Account.objects.get(pk=ana.pk).balance == 70_000
    page.goto(f"{page.base}/admin/payments/payment/")
    assert "approved (accredited)" in page.inner_text("#result_list")
    shot(page, "payments-list")
    if size == "desktop":
        results = page.locator("#changelist .results")
        assert results.evaluate("(e) => e.scrollWidth <= e.clientWidth")
    page.goto(f"{page.base}/admin/credits/purchase/{payment.purchase_id}/change/")
    assert "Pagamento PIX" in page.inner_text("#purchase-payment")
    page.click("a.refund-purchase")
    pro_rata = page.locator("input[name=full][value=pro_rata]")
    assert pro_rata.is_checked()
    choices = page.inner_text(".field-full")
    assert "Proporcional: devolve R$ 34,93; os 70.000 créditos ainda não gastos" in choices
    assert "Integral: devolve R$ 49,90" in choices
    page.fill("#id_reason", "Cliente pediu cancelamento")
    shot(page, "pix-refund-form")
    page.click("input[type=submit][name=_submit]")
    message = page.wait_for_selector("ul.messagelist li.success").inner_text()
    assert "R$ 34,93 estornados pelo Mercado Pago; 70.000 créditos retirados" in message
    refunds = page.inner_text("#purchase-refunds")
    assert "R$ 34,93" in refunds and "proporcional" in refunds and "70.000" in refunds
    shot(page, "pix-refunded-purchase")
    page.goto(f"{page.base}/admin/accounts/user/{ana.pk}/change/")
    assert "-70.000" in page.inner_text("#user-ledger")
    overview = page.inner_text("#credit-overview")
    assert "Disponível: 0" in overview
    shot(page, "pix-refunded-user")
    assert standin.refunds_asked() == [{"amount": Decimal("34.93")}]
    entry = LedgerEntry.objects.get(account_id=ana.pk, kind="refund")
    assert (entry.amount, entry.reason) == (-70_000, "Cliente pediu cancelamento")
    assert Account.objects.get(pk=ana.pk).balance == 0
