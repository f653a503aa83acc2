"""The person's path to credits by PIX, in Chromium: from the blocking modal (the page's and the
widget's) to "Pago — +100.000 créditos" with the counter moved, against Mercado Pago's stand-in
and a signed webhook."""

import re

import pytest
from playwright.sync_api import expect

from credits.models import Purchase
from credits.selectors import account_summary
from payments.models import Payment
from tests.pages.conftest import sign_in, spend_all, webhook_deliver, widget_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_pay_with_pix_from_the_blocking_modal_until_paid(page, site, ana, mercadopago, shot):
    spend_all(ana)
    sign_in(page, site)
    modal = page.locator("#blocked-modal")
    modal.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "blocked-title"  # not a buy button
    buy = modal.get_by_role("button", name="Pagar com PIX: Pacote 100 mil, R$ 49,90")
    buy.dblclick()
    order = modal.locator("[data-order]")
    order.wait_for()
    payment = Payment.objects.get()
    assert Purchase.objects.filter(user=ana).count() == 1  # one charge for a double click
    assert mercadopago.creations() and len(mercadopago.creations()) == 1
    text = order.inner_text()
    assert f"Pedido #{payment.purchase_id} · R$ 49,90 · aguardando pagamento" in text
    assert "Pague R$ 49,90 por PIX até" in text
    qr = order.get_by_role("img", name="QR code PIX para pagar R$ 49,90")
    assert qr.get_attribute("src") == f"data:image/png;base64,{payment.qr_code_base64}"
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    code = order.get_by_label("Código PIX copia e cola")
    assert code.input_value() == payment.qr_code
    order.get_by_role("button", name="Copiar código").click()
    order.get_by_role("button", name="Código copiado").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == payment.qr_code
    assert modal.locator(".packages").is_hidden()
    shot(page, "pix-modal-pending")

    mercadopago.approve(payment.provider_payment_id)
    assert webhook_deliver(site, payment.provider_payment_id) == 200
    paid = modal.get_by_text("Pago — +100.000 créditos")
    paid.wait_for(timeout=15_000)
    expect(page.locator("#available")).to_have_text("100.000")
    assert account_summary(user_id=ana.pk).available == 100_000
    shot(page, "pix-modal-paid")
    modal.get_by_role("button", name="Fechar").click()
    assert "state-normal" in page.locator("#state-banner").get_attribute("class")


def test_a_pending_pix_shows_at_the_top_and_in_the_modal_instead_of_every_package(
    page, site, ana, mercadopago, shot
):
    spend_all(ana)
    sign_in(page, site)
    page.locator("#blocked-modal").get_by_role("button", name=re.compile("^Pagar com PIX")).click()
    page.locator("#blocked-modal [data-order]").wait_for()
    purchase = Purchase.objects.get(user=ana)
    page.reload()
    title = f"Pedido #{purchase.pk} · R$ 49,90 · aguardando pagamento"
    assert title in page.locator("#pending-order").inner_text()
    modal = page.locator("#blocked-modal")
    modal.wait_for(state="visible")
    assert title in modal.inner_text() and "Pague o seu pedido abaixo" in modal.inner_text()
    assert modal.locator(".packages").count() == 0
    assert modal.get_by_role("img", name="QR code PIX para pagar R$ 49,90").is_visible()
    assert modal.get_by_role("link", name="Escolher outro pacote").is_visible()
    shot(page, "pix-pending-reload")
    # The order's own page: the same panel, and it also turns paid by polling.
    page.goto(f"{site.url}/conta/pedidos/{purchase.pk}/")
    mercadopago.approve(purchase.payment.provider_payment_id)
    assert webhook_deliver(site, purchase.payment.provider_payment_id) == 200
    page.get_by_text("Pago — +100.000 créditos").wait_for(timeout=15_000)
    expect(page.locator("#available")).to_have_text("100.000")


def test_pay_with_pix_inside_the_widget_until_the_counter_moves(
    page, site, ana, mercadopago, librechat, shot
):
    spend_all(ana)
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    dialog = page.locator("#solaris-widget [role=alertdialog]")
    dialog.wait_for()
    assert page.locator("#solaris-widget .c b").inner_text() == "0"
    dialog.get_by_role("button", name="Pagar com PIX: Pacote 100 mil, R$ 49,90").click()
    order = dialog.locator(".ord")
    order.wait_for()
    payment = Payment.objects.get()
    assert f"Pedido #{payment.purchase_id} · R$ 49,90 · aguardando pagamento" in order.inner_text()
    assert order.get_by_label("Código PIX copia e cola").input_value() == payment.qr_code
    image = order.get_by_role("img", name="QR code PIX para pagar R$ 49,90")
    assert image.get_attribute("src").endswith(payment.qr_code_base64)
    shot(page, "widget-pix-pending")
    mercadopago.approve(payment.provider_payment_id)
    assert webhook_deliver(site, payment.provider_payment_id) == 200
    dialog.get_by_text("Pago — +100.000 créditos").wait_for(timeout=15_000)
    expect(page.locator("#solaris-widget .c b").first).to_have_text("100.000")
    shot(page, "widget-pix-paid")


def test_without_mercado_pago_the_same_button_records_a_manual_order_with_finance_instructions(
    page, site, ana, shot
):
    from payments.models import PaymentInstructions

    PaymentInstructions.objects.update_or_create(
        pk=1,
        defaults={
            "text_pt_br": "PIX para a chave financeiro@solaris.example.\nEnvie o comprovante."
        },
    )
    spend_all(ana)
    sign_in(page, site)
    modal = page.locator("#blocked-modal")
    modal.get_by_role("button", name="Solicitar compra: Pacote 100 mil, R$ 49,90").click()
    order = modal.locator("[data-order]")
    order.wait_for()
    purchase = Purchase.objects.get(user=ana)
    assert purchase.method == Purchase.Method.MANUAL
    text = order.inner_text()
    assert f"Pedido #{purchase.pk} · R$ 49,90 · aguardando pagamento" in text
    assert "PIX para a chave financeiro@solaris.example." in text and "Envie o comprovante." in text
    shot(page, "manual-order")
