"""The end-user pages in Chromium at 1366×900 and 390×844, item by item: the counter and its
renewal, the pending order, tables on a phone, the period and its chart, accessibility (contrast
computed from the colours painted), language and error pages, the exports."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone, translation

from credits.models import Grant, Purchase, Subscription
from credits.selectors import account_summary
from credits.services import purchase_confirm, purchase_request
from tests.factories import ModelPriceFactory
from tests.pages.conftest import (
    ARTIFACTS,
    period_query,
    record_call,
    sign_in,
    spend_all,
    widget_ready,
)
from tests.pages.rendered import contrast_failures, english_in, english_words, visible_words

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def credits_text(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def renewal_days(user) -> int:
    ends = Subscription.objects.get(user=user).cycle_end
    return (timezone.localdate(ends) - timezone.localdate()).days


def plan_left(user) -> int:
    return Grant.objects.get(account_id=user.pk, source=Grant.Source.PLAN_CYCLE).remaining


def push_to_alert(user) -> None:
    unit = ModelPriceFactory(model="gpt-unit", input_weight="1", output_weight="1")
    summary = account_summary(user_id=user.pk)
    target = summary.granted * 85 // 100 - summary.used
    record_call(user, unit, prompt=target - 1, completion=1)


# --- 1. what is available, what the renewal brings, what the percent is of ---


def test_the_counter_leads_with_available_then_the_renewal(page, site, month, shot):
    sign_in(page, site)
    summary = account_summary(user_id=month.pk)
    available = page.locator("#available")
    assert available.inner_text() == credits_text(summary.available)
    days = renewal_days(month)
    renewal = page.locator("#renewal").inner_text()
    assert renewal == f"Renova em {days} dias: +100.000; {credits_text(plan_left(month))} vencem"
    used = page.locator("#used-text").inner_text()
    percent = str(summary.used_percent).replace(".", ",")
    assert used.startswith(f"Usado: {percent} % dos 120.000 créditos recebidos neste ciclo")
    # Available comes first, in reading order and on screen.
    assert available.bounding_box()["y"] < page.locator("#renewal").bounding_box()["y"]
    shot(page, "counter")


def test_the_modals_mention_the_renewal(page, site, ana, shot):
    push_to_alert(ana)
    sign_in(page, site)
    alert = page.locator("#alert-modal")
    alert.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "alert-title"
    assert f"Renova em {renewal_days(ana)} dias: +100.000; 15.000 vencem." in alert.inner_text()
    shot(page, "alert-renewal")
    spend_all(ana)
    page.reload()
    blocked = page.locator("#blocked-modal")
    blocked.wait_for(state="visible")
    assert (
        f"ou aguarde a renovação em {renewal_days(ana)} dias (+100.000 créditos)"
        in blocked.inner_text()
    )


# --- 2. a pending order ---


def test_a_pending_order_is_at_the_top_and_in_the_modal_with_how_to_pay(
    page, site, ana, package, shot
):
    push_to_alert(ana)
    purchase = purchase_request(user=ana, package=package, idempotency_key="ask-1")
    sign_in(page, site)
    title = f"Pedido #{purchase.pk} · R$ 49,90 · aguardando pagamento"
    top = page.locator("#pending-order")
    assert title in top.inner_text()
    assert top.get_by_role("link", name="Como pagar").get_attribute("href") == (
        f"/conta/pedidos/{purchase.pk}/"
    )
    modal = page.locator("#alert-modal")
    modal.wait_for(state="visible")
    assert title in modal.inner_text()
    assert "compras@solaris.example" in modal.locator("[data-order]").inner_text()  # how to pay
    assert modal.locator(".packages").count() == 0  # not every package again
    assert modal.get_by_role("link", name="Escolher outro pacote").is_visible()
    shot(page, "pending-order")


# --- 3. tables on a phone ---


def test_tables_fit_the_screen_and_stack_on_a_phone(page, size, site, month, package, shot):
    purchase_request(user=month, package=package, idempotency_key="ask-1")
    sign_in(page, site, next_path=f"/conta/?{period_query()}")
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page
    for table in ("#movements", ".calls", "#grants", "#purchases"):
        locator = page.locator(table)
        box = locator.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, table
        assert locator.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth + 1"), table
        row = locator.locator("tbody tr").first
        what, amount = row.locator(".what"), row.locator(".amount")
        assert what.is_visible() and amount.is_visible()
        if size == "mobile":
            # What on the left, credits on the right, on the same first line.
            assert (
                amount.bounding_box()["x"]
                > what.bounding_box()["x"] + what.bounding_box()["width"] - 1
            )
            assert locator.locator("thead").evaluate("h => h.getBoundingClientRect().height <= 1")
        if row.locator(".status .pill").count():
            assert row.locator(".status .pill").is_visible()
    calls = page.locator(".calls tbody tr").first
    assert calls.locator(".when").is_visible() and calls.locator(".status .pill").is_visible()
    assert "aguardando pagamento" in page.locator("#purchases .pill").first.inner_text()
    page.locator("#chamadas").scroll_into_view_if_needed()
    shot(page, "tables")


# --- 6. the period, the model filter and the chart ---


def test_a_model_filter_applies_to_the_chart_and_says_what_the_statement_counts(
    page, size, site, month, shot
):
    sign_in(page, site, next_path=f"/conta/?{period_query()}&model=claude-sonnet")
    assert page.locator("#chart-title").inner_text() == "Consumo diário — claude-sonnet"
    assert page.locator("#calls-title").inner_text() == "Chamadas — claude-sonnet"
    assert page.locator("#statement-scope").is_visible()
    chart = page.locator("svg.chart")
    assert chart.get_attribute("preserveAspectRatio") is None  # labels are never stretched
    labels = page.locator(".chart-labels span")
    assert labels.count() == 2
    assert float(labels.first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 12
    page.locator("details.data summary").click()
    rows = page.locator("#daily-table tbody tr")
    assert rows.count() == 7
    per_call = 1_000 * 3 + 500 * 6
    assert rows.first.locator("td").nth(1).inner_text() == credits_text(per_call)
    shot(page, "chart-model")


def test_an_invalid_period_is_a_visible_error_and_the_page_still_works(page, site, ana, shot):
    sign_in(page, site, next_path="/conta/?start=2026-05-10&end=2026-05-01")
    error = page.get_by_role("alert")
    assert "A data inicial não pode ser depois da data final." in error.inner_text()
    assert "Mostrando de" in error.inner_text()
    assert page.locator("#id_start").get_attribute("aria-invalid") == "true"
    assert page.locator("#available").is_visible()
    shot(page, "period-error")


# --- 7. accessibility ---


def test_pages_meet_wcag_contrast_as_rendered(page, size, site, month, package, mercadopago):
    """Colours are read from the page as painted (getComputedStyle), not from the CSS file."""
    push_to_alert(month)
    sign_in(page, site, next_path=f"/conta/?{period_query()}")
    page.locator("#alert-modal").wait_for(state="visible")
    checked = {"/conta/ + alert": contrast_failures(page)}
    bar = page.evaluate(
        """() => { const c = (s) => getComputedStyle(document.querySelector(s)).fill;
          return [c('.bar .track'), c('.bar .fill')]; }"""
    )
    page.keyboard.press("Escape")
    for path in ("/conta/comprar/", "/conta/chaves/", "/conta/pedidos/999/"):
        page.goto(site.url + path)
        checked[path] = contrast_failures(page)
    page.goto(site.url + "/conta/comprar/")
    page.get_by_role("button", name=re.compile("^Pagar com PIX")).first.click()
    page.locator("[data-order]").wait_for()
    checked["order"] = contrast_failures(page)
    page.context.clear_cookies()
    page.goto(site.url + "/entrar/")
    page.fill("#id_username", "ana@example.com")
    page.fill("#id_password", "errada")
    page.click("button[type=submit].primary")
    page.locator("#login-error").wait_for()
    checked["login error"] = contrast_failures(page)
    assert {path: found for path, found in checked.items() if found} == {}
    # The used-percent bar against its track: 3:1 for what is not text.
    assert (
        page.evaluate(
            """([track, fill]) => {
          const rgb = (c) => c.match(/\\d+/g).map(Number);
          const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            const [r, g, b] = rgb(c); return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
          const a = lum(track), b = lum(fill);
          return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        }""",
            bar,
        )
        >= 3
    )


def test_the_widget_meets_wcag_contrast_as_rendered(page, size, ana, librechat):
    spend_all(ana)
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    page.locator("#solaris-widget [role=alertdialog]").wait_for()
    assert contrast_failures(page) == []
    page.keyboard.press("Escape")
    page.locator("#solaris-widget .c").click()
    assert contrast_failures(page) == []


def test_skip_link_headings_and_a_login_error_tied_to_its_fields(page, size, site, ana):
    page.goto(site.url + "/entrar/")
    page.fill("#id_username", "ana@example.com")
    page.fill("#id_password", "errada")
    page.click("button[type=submit].primary")
    error = page.locator("#login-error")
    error.wait_for()
    for field in ("#id_username", "#id_password"):
        assert page.locator(field).get_attribute("aria-invalid") == "true"
        assert page.locator(field).get_attribute("aria-describedby") == "login-error"
    assert error.get_attribute("role") == "alert" and error.inner_text().strip()
    sign_in(page, site)
    page.keyboard.press("Tab")  # the first stop of every page skips the navigation
    skip = page.get_by_role("link", name="Pular para o conteúdo")
    assert page.evaluate("document.activeElement.textContent") == "Pular para o conteúdo"
    assert skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for path in ("/conta/", "/conta/chaves/", "/conta/comprar/", "/conta/extrato/imprimir/"):
        page.goto(site.url + path)
        assert page.locator("h1").count() == 1, path


# --- 8. language and errors ---


def test_error_pages_are_branded_in_both_languages(page, size, site, ana, shot):
    response = page.goto(site.url + "/conta/nao-existe/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Página não encontrada"
    assert "Not Found" not in page.content() and "IA SOLARIS" in page.title()
    shot(page, "404")
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": site.url}])
    page.goto(site.url + "/conta/nao-existe/")
    assert page.locator("h1").inner_text() == "Page not found"
    page.context.clear_cookies()
    page.goto(site.url + "/entrar/")
    page.context.clear_cookies()  # the form's CSRF cookie is gone: its POST is refused
    page.fill("#id_username", "ana@example.com")
    page.fill("#id_password", "senha-forte-123")
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "O formulário expirou"
    assert "DEBUG" not in page.content() and "CSRF" not in page.locator("main").inner_text()
    shot(page, "403-csrf")


def test_reasons_are_translated_when_shown_and_no_calls_reads_naturally(
    page, site, ana, package, shot
):
    with translation.override("en"):  # written while English was active: "Purchase #N"
        purchase = purchase_request(user=ana, package=package, idempotency_key="ask-1")
        purchase_confirm(purchase=purchase, confirmed_by=None)
    assert Grant.objects.get(purchase=purchase).reason == f"Purchase #{purchase.pk}"
    sign_in(page, site)
    movements = page.locator("#movements").inner_text()
    assert f"Compra #{purchase.pk}" in movements and "Purchase" not in movements
    assert "Franquia do plano Profissional" in movements
    assert page.locator("#extrato").get_by_text("Consumo (nenhuma chamada)").is_visible()
    shot(page, "movements")


def test_pt_br_pages_have_no_english_ui_words(page, site, month, package, mercadopago, librechat):
    vocabulary = english_words()
    assert {"statement", "purchase", "available", "balance"} <= vocabulary  # the check can bite
    seen: dict[str, set[str]] = {}
    page.goto(site.url + "/entrar/")
    seen["/entrar/"] = english_in(visible_words(page), vocabulary=vocabulary)
    for path in ("/entrar/link/", "/senha/", "/conta/nao-existe/"):
        page.goto(site.url + path)
        seen[path] = english_in(visible_words(page), vocabulary=vocabulary)
    push_to_alert(month)
    sign_in(page, site, next_path=f"/conta/?{period_query()}")
    page.locator("#alert-modal").wait_for(state="visible")
    page.locator("#alert-modal").get_by_role(
        "button", name=re.compile("^Pagar com PIX")
    ).first.click()
    page.locator("#alert-modal [data-order]").wait_for()
    seen["/conta/"] = english_in(visible_words(page), vocabulary=vocabulary)
    order = Purchase.objects.get(user=month)
    for path in (
        "/conta/chaves/",
        "/conta/comprar/",
        f"/conta/pedidos/{order.pk}/",
        f"/conta/extrato/imprimir/?{period_query()}",
        "/conta/?start=2026-05-10&end=2026-05-01",
    ):
        page.goto(site.url + path)
        seen[path] = english_in(visible_words(page), vocabulary=vocabulary)
    spend_all(month)
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    dialog = page.locator("#solaris-widget [role=alertdialog]")
    dialog.wait_for()
    seen["widget dialog"] = english_in(visible_words(page), vocabulary=vocabulary)
    dialog.get_by_role("button", name="Fechar").click()
    page.locator("#solaris-widget .c").click()
    seen["widget panel"] = english_in(visible_words(page), vocabulary=vocabulary)
    assert {path: words for path, words in seen.items() if words} == {}


# --- 9. exports ---


def test_the_statement_exports_as_csv_and_prints(page, size, site, month, shot):
    sign_in(page, site, next_path=f"/conta/?{period_query()}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Extrato (CSV)").click()
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Data", "Lançamento", "Descrição", "Créditos", "Saldo"]
    assert rows[1][1] == "Saldo inicial" and rows[-1][1] == "Saldo final"
    movements = [int(row[3]) for row in rows[2:-1]]
    assert int(rows[1][4]) + sum(movements) == int(rows[-1][4])  # it reconciles
    assert len(movements) == 2 + 14  # the two grants and every call
    page.get_by_role("link", name="Extrato para imprimir").click()
    page.wait_for_url("**/conta/extrato/imprimir/**")
    closing = page.locator("#print-closing").inner_text()
    assert closing == credits_text(account_summary(user_id=month.pk).balance)
    assert "Consumo (2 chamadas)" in page.locator(".print-table").inner_text()
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden() and page.locator("[data-print]").is_hidden()
    assert page.locator(".print-table").is_visible()
    shot(page, "statement-print")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = page.pdf(path=str(ARTIFACTS / f"statement-{size}.pdf"))
    assert pdf.startswith(b"%PDF")
