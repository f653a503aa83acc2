"""A real browser (Debian's Chromium driven by Playwright) through the admin's daily job."""

from pathlib import Path

import pytest

from accounts.models import User
from credits.selectors import account_summary
from tests.backoffice.conftest import PASSWORD, spend
from tests.chromium import chromium_launched
from tests.factories import UserFactory

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def scene(transactional_db, plan, price):
    admin = User.objects.create_superuser("chefe@solaris.test", PASSWORD, name="Chefe")
    customer = UserFactory(email="cliente@example.com", name="Carla Cliente")
    spent = spend(customer, price, request_id="browser-1", prompt=1_000, completion=500)
    return admin, customer, spent


@pytest.mark.browser
@pytest.mark.slow
def test_admin_adds_credits_and_sees_the_dashboard(live_server, scene, settings):
    admin, customer, spent = scene
    ARTIFACTS.mkdir(exist_ok=True)
    # The ORM is not used while Playwright runs: its event loop makes Django refuse sync queries.
    with chromium_launched() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="pt-BR")
        drive(page, live_server.url, admin.email, customer.email, spent)
        session = next(c for c in page.context.cookies() if c["name"] == "sessionid")

    # With DEBUG off (the PostgreSQL run) the cookie is Secure; Chromium keeps it on 127.0.0.1.
    assert session["secure"] is settings.SESSION_COOKIE_SECURE

    # The browser's work reached the database: exactly one grant of 500 000, by this admin.
    summary = account_summary(user_id=customer.pk, with_grants=True)
    assert summary.available == 100_000 - spent + 500_000
    manual = [grant for grant in summary.grants if grant.source == "manual"]
    assert [(grant.amount, grant.created_by_id) for grant in manual] == [(500_000, admin.pk)]


def drive(page, base: str, admin_email: str, customer_email: str, spent: int) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", admin_email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard-link")
    assert any(cookie["name"] == "sessionid" for cookie in page.context.cookies())

    page.goto(f"{base}/admin/accounts/user/")
    row = page.locator("#result_list tr", has_text=customer_email)
    row.locator("a.add-credits").click()
    page.fill("input[name=amount]", "500000")
    page.fill("input[name=reason]", "Pagamento PIX confirmado")
    page.fill("input[name=payment_reference]", "PIX-2026-001")
    page.screenshot(path=ARTIFACTS / "admin-add-credits-form.png", full_page=True)
    page.click("input[type=submit][name=_submit]")
    page.wait_for_selector("ul.messagelist li.success")

    expected = 100_000 - spent + 500_000
    shown = f"{expected:,}".replace(",", ".")  # pt-BR grouping
    row = page.locator("#result_list tr", has_text=customer_email)
    assert shown in row.locator("td.field-available").inner_text()
    page.screenshot(path=ARTIFACTS / "admin-user-list-after-credits.png", full_page=True)
    row.locator("th a").click()
    page.wait_for_selector("#credit-overview")
    assert "Pagamento PIX confirmado (ref. PIX-2026-001)" in page.inner_text("#user-ledger")
    page.screenshot(path=ARTIFACTS / "admin-user-detail.png", full_page=True)

    page.goto(f"{base}/admin/")
    page.click("#dashboard-link a")
    page.wait_for_selector("svg#daily-chart")
    bars = page.locator("svg#daily-chart rect.bar")
    assert bars.count() == 30
    heights = [int(bars.nth(index).get_attribute("height")) for index in range(bars.count())]
    assert heights[-1] > 0  # today's consumption is drawn
    box = bars.nth(29).bounding_box()
    assert box is not None and box["height"] > 0
    page.screenshot(path=ARTIFACTS / "admin-dashboard.png", full_page=True)


@pytest.mark.browser
@pytest.mark.slow
def test_a_large_grant_waits_for_a_second_person(live_server, transactional_db, plan, settings):
    from backoffice.roles import FINANCE
    from tests.backoffice.conftest import staff

    settings.SOLARIS_GRANT_APPROVAL_ABOVE = 100_000
    asker = staff("pede@solaris.test", group=FINANCE)
    approver = staff("aprova@solaris.test", group=FINANCE)
    customer = UserFactory(email="cliente@example.com", name="Carla Cliente")
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium_launched() as browser:
        first = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="pt-BR")
        ask(first.new_page(), live_server.url, asker.email, customer.pk)
        first.close()
        second = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="pt-BR")
        approve(second.new_page(), live_server.url, approver.email)
        second.close()

    # Exactly one grant of 250 000, asked by one person and approved by the other.
    summary = account_summary(user_id=customer.pk, with_grants=True)
    manual = [grant for grant in summary.grants if grant.source == "manual"]
    assert [(grant.amount, grant.created_by_id) for grant in manual] == [(250_000, asker.pk)]
    assert summary.available == 100_000 + 250_000


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard-link")


def ask(page, base: str, email: str, customer_id: int) -> None:
    sign_in(page, base, email)
    page.goto(f"{base}/admin/accounts/user/{customer_id}/add-credits/")
    assert "Acima de 100.000 créditos" in page.inner_text("#content-main")
    page.fill("input[name=amount]", "250000")
    page.fill("input[name=reason]", "Contrato anual")
    page.click("input[type=submit][name=_submit]")
    message = page.wait_for_selector("ul.messagelist li.warning")
    assert "aguardam a aprovação de outro membro da equipe" in message.inner_text()
    assert page.locator("a.approve-grant").count() == 0  # not for the one who asked
    assert "pendente" in page.inner_text("#content-main")
    page.screenshot(path=ARTIFACTS / "admin-grant-request-pending.png", full_page=True)


def approve(page, base: str, email: str) -> None:
    sign_in(page, base, email)
    page.goto(f"{base}/admin/backoffice/grantrequest/?status__exact=pending")
    row = page.locator("#result_list tbody tr")
    assert row.count() == 1 and "250.000" in row.inner_text()
    row.locator("th a").click()
    page.click("a.approve-grant")
    assert "pedidos por pede@solaris.test: Contrato anual" in page.inner_text("#content-main")
    page.click("input[type=submit][name=_submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "aprovado" in page.inner_text("#content-main").lower()
    assert page.locator("a.approve-grant").count() == 0
    page.screenshot(path=ARTIFACTS / "admin-grant-request-approved.png", full_page=True)
