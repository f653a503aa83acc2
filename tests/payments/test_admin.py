"""PIX in admin and the admin API, through Django's test client and Mercado Pago's stand-in:
refunds go through Mercado Pago first (pro rata or full), a PIX purchase is never confirmed,
cancelled or refunded by hand, and finance sees payments, the webhook log and the reconciliation
report."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.services import api_key_create
from backoffice.roles import FINANCE, SUPPORT
from credits.models import Account, LedgerEntry, Purchase
from credits.services import hold_create, hold_settle, purchase_request
from payments.models import Payment, PaymentRefund, WebhookDelivery
from payments.services import payments_reconcile
from tests.backoffice.conftest import staff
from tests.factories import ModelPriceFactory


def spend(user, amount: int) -> None:
    price = ModelPriceFactory(model=f"unit-{uuid.uuid4().hex[:6]}", input_weight=1, output_weight=1)
    request_id = f"req-{uuid.uuid4().hex}"
    hold_create(user=user, request_id=request_id, price=price, prompt_tokens=0, max_tokens=amount)
    hold_settle(request_id=request_id, prompt_tokens=0, completion_tokens=amount)


@pytest.fixture
def finance(db):
    return staff("financeiro@solaris.test", group=FINANCE)


@pytest.fixture
def finance_client(finance):
    client = Client()
    client.force_login(finance)
    return client


@pytest.fixture
def finance_api(finance):
    _key, raw = api_key_create(user=finance, name="automation")
    client = Client()

    def call(path, body):
        return client.post(
            f"/api/v1/admin/{path}",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )

    return call


def refund_url(purchase_id) -> str:
    return reverse("admin:credits_purchase_refund", args=[purchase_id])


def purchase_page(purchase_id) -> str:
    return reverse("admin:credits_purchase_change", args=[purchase_id])


def account(user) -> Account:
    return Account.objects.get(pk=user.pk)


def refunds_booked(user) -> list[int]:
    return list(
        LedgerEntry.objects.filter(account_id=user.pk, kind="refund").values_list(
            "amount", flat=True
        )
    )


# --- refunds from admin: the money first, through Mercado Pago ---


def test_finance_refunds_pro_rata_from_the_purchase_page(
    paid, buyer, finance, finance_client, mercadopago
):
    spend(buyer, 30_000)
    page = finance_client.get(purchase_page(paid.purchase_id))
    assert refund_url(paid.purchase_id) in page.text
    assert "Estornar pelo Mercado Pago" in page.text
    form = finance_client.get(refund_url(paid.purchase_id))
    assert form.status_code == 200
    assert "Proporcional: devolve R$ 34,93; os 70.000 créditos ainda não gastos" in form.text
    assert "Integral: devolve R$ 49,90; todos os 100.000 créditos" in form.text
    assert 'class="danger"' in form.text
    done = finance_client.post(
        refund_url(paid.purchase_id), {"reason": "Pediu cancelamento", "full": "pro_rata"}
    )
    assert done.status_code == 302
    assert mercadopago.refunds_asked() == [{"amount": Decimal("34.93")}]
    assert refunds_booked(buyer) == [-70_000]
    entry = LedgerEntry.objects.get(account_id=buyer.pk, kind="refund")
    assert (entry.created_by, entry.reason) == (finance, "Pediu cancelamento")
    assert (account(buyer).balance, account(buyer).debt) == (0, 0)
    shown = finance_client.get(purchase_page(paid.purchase_id), follow=True).text
    refunds = shown[shown.index('id="purchase-refunds"') :]
    assert "R$ 34,93" in refunds and "proporcional" in refunds and "70.000" in refunds
    assert "estornada" in shown  # the purchase's status
    assert refund_url(paid.purchase_id) not in shown  # refunded once: no second button
    assert LogEntry.objects.filter(object_id=str(paid.purchase_id)).exists()


def test_a_full_refund_from_admin_books_the_spent_part_as_debt(
    paid, buyer, finance_client, mercadopago
):
    spend(buyer, 40_000)
    finance_client.post(refund_url(paid.purchase_id), {"reason": "Fraude", "full": "full"})
    assert mercadopago.refunds_asked() == [{}]
    assert refunds_booked(buyer) == [-100_000]
    assert (account(buyer).balance, account(buyer).debt) == (-40_000, 40_000)


def test_no_credit_is_taken_back_unless_mercado_pago_returns_the_money(
    paid, buyer, finance_client, mercadopago
):
    mercadopago.fail_next(400)
    refused = finance_client.post(refund_url(paid.purchase_id), {"reason": "x", "full": "full"})
    assert refused.status_code == 200
    assert "Mercado Pago recusou" in " ".join(refused.context["form"].non_field_errors())
    mercadopago.fail_next(502, after_work=True)
    lost = finance_client.post(refund_url(paid.purchase_id), {"reason": "x", "full": "full"})
    assert lost.status_code == 200
    assert "não respondeu" in " ".join(lost.context["form"].non_field_errors())
    assert refunds_booked(buyer) == [] and account(buyer).balance == 100_000
    payments_reconcile()  # the lost answer is asked again with the same key, then booked
    assert refunds_booked(buyer) == [-100_000]
    assert len(mercadopago.payments[paid.provider_payment_id]["refunds"]) == 1


def test_a_refund_mercado_pago_is_still_processing_waits_for_it(
    paid, buyer, finance_client, mercadopago, deliver
):
    mercadopago.refund_status = "in_process"
    done = finance_client.post(
        refund_url(paid.purchase_id), {"reason": "x", "full": "pro_rata"}, follow=True
    )
    assert "está processando o estorno de R$ 49,90" in done.text
    assert refunds_booked(buyer) == []
    refund = PaymentRefund.objects.get()
    again = finance_client.post(refund_url(paid.purchase_id), {"reason": "x", "full": "full"})
    assert "Já há um estorno deste pagamento em andamento" in " ".join(
        again.context["form"].non_field_errors()
    )
    mercadopago.confirm_refund(paid.provider_payment_id, refund.provider_refund_id)
    deliver(paid.provider_payment_id)
    assert refunds_booked(buyer) == [-100_000]


def test_a_pix_purchase_is_never_confirmed_or_cancelled_by_hand(
    buy, package, mercadopago, finance_client, finance_api
):
    purchase = Purchase.objects.get(pk=buy(package).json()["id"])
    page = finance_client.get(purchase_page(purchase.pk)).text
    assert "confirm-purchase" not in page and "cancel-purchase" not in page
    assert "quem a confirma é o pagamento, não uma pessoa" in page
    confirm = reverse("admin:credits_purchase_confirm", args=[purchase.pk])
    assert finance_client.post(confirm, {"payment_reference": "x"}).status_code == 200
    cancel = reverse("admin:credits_purchase_cancel", args=[purchase.pk])
    refused = finance_client.post(cancel, {"reason": "desistiu"})
    assert "ainda pode ser paga até" in " ".join(refused.context["form"].non_field_errors())
    answer = finance_api(f"purchases/{purchase.pk}/cancel", {"reason": "x"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "pix_charge_pending")
    answer = finance_api(f"purchases/{purchase.pk}/refund", {"reason": "x"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "purchase_not_refundable")
    purchase.refresh_from_db()
    assert (purchase.status, purchase.confirmed_by) == ("requested", None)


# --- refunds through the admin API ---


def test_the_api_refunds_a_pix_purchase_pro_rata_or_in_full(paid, buyer, finance_api, mercadopago):
    spend(buyer, 25_000)
    done = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "Pedido do cliente"})
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "refunded"
    refund = body["refund"]
    assert (refund["status"], refund["amount_cents"], refund["full"], refund["credits"]) == (
        "booked",
        3_742,
        False,
        75_000,
    )
    assert refunds_booked(buyer) == [-75_000]
    again = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "x", "full": True})
    assert (again.status_code, again.json()["error"]["code"]) == (400, "purchase_not_refundable")


def test_the_api_answers_202_while_mercado_pago_processes_and_503_when_it_is_down(
    paid, buyer, finance_api, mercadopago
):
    mercadopago.fail_next(502, after_work=True)
    down = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "x", "full": True})
    assert down.status_code == 503 and down["Retry-After"] == "60"
    assert down.json()["error"]["code"] == "payment_provider_unavailable"
    busy = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "x", "full": True})
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "refund_in_progress")
    assert refunds_booked(buyer) == []
    payments_reconcile()
    assert refunds_booked(buyer) == [-100_000]


def test_the_api_refund_in_process_is_202(paid, finance_api, mercadopago):
    mercadopago.refund_status = "in_process"
    answer = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "x", "full": True})
    assert answer.status_code == 202
    assert (answer.json()["status"], answer.json()["refund"]["status"]) == (
        "credited",
        "requested",
    )


def test_the_api_says_when_nothing_is_left_to_refund_pro_rata(paid, buyer, finance_api):
    spend(buyer, 100_000)
    answer = finance_api(f"purchases/{paid.purchase_id}/refund", {"reason": "x"})
    error = answer.json()["error"]
    assert (answer.status_code, error["code"], error["param"]) == (400, "nothing_to_refund", "full")


def test_a_manual_purchase_keeps_todays_refund(buyer, finance_api, mercadopago):
    from credits.services import purchase_confirm

    manual = purchase_request(user=buyer, idempotency_key="m", credits=1_000, price_cents=100)
    purchase_confirm(purchase=manual, confirmed_by=None)
    spend(buyer, 300)
    full = finance_api(f"purchases/{manual.pk}/refund", {"reason": "x", "full": True})
    assert (full.status_code, full.json()["error"]["param"]) == (400, "full")
    done = finance_api(f"purchases/{manual.pk}/refund", {"reason": "x"})
    assert done.status_code == 200 and done.json()["refund"] is None
    assert refunds_booked(buyer) == [-700]
    assert mercadopago.refunds_asked() == []


# --- what finance sees ---


def test_the_payments_list_shows_mercado_pagos_status_next_to_solaris(paid, finance_client):
    listing = finance_client.get(reverse("admin:payments_payment_changelist"))
    assert listing.status_code == 200
    assert "approved (accredited)" in listing.text and "R$ 49,90" in listing.text
    assert "badge-ok payment-status-paid" in listing.text
    detail = finance_client.get(reverse("admin:payments_payment_change", args=[paid.pk])).text
    assert "Segundo o Mercado Pago" in detail and "Entregas do webhook" in detail
    assert 'name="_save"' not in detail


def test_the_webhook_log_is_read_only_and_keeps_no_payer(paid, finance_client, admin_client):
    delivery = WebhookDelivery.objects.filter(payment=paid).first()
    assert delivery is not None
    change = reverse("admin:payments_webhookdelivery_change", args=[delivery.pk])
    page = admin_client.get(change).text
    assert "payment.updated" in page and "user_id" not in page and "x-signature" not in page
    assert admin_client.post(change, {"outcome": "forged"}).status_code == 403
    assert admin_client.get(reverse("admin:payments_webhookdelivery_add")).status_code == 403
    delete = reverse("admin:payments_webhookdelivery_delete", args=[delivery.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert WebhookDelivery.objects.get(pk=delivery.pk).outcome == "paid"
    assert (
        finance_client.get(reverse("admin:payments_webhookdelivery_changelist")).status_code == 200
    )


def test_the_reconciliation_report_sorts_what_needs_a_person(
    buy, deliver, package, mercadopago, finance_client, buyer, client
):
    def charge():
        mail.outbox.clear()
        return Payment.objects.get(purchase_id=buy(package).json()["id"])

    late = charge()  # closed, then paid anyway: money without credits
    mercadopago.set(late.provider_payment_id, status="cancelled", status_detail="expired")
    deliver(late.provider_payment_id)
    mercadopago.approve(late.provider_payment_id)
    deliver(late.provider_payment_id)
    disputed = charge()  # credited, then charged back
    mercadopago.approve(disputed.provider_payment_id)
    deliver(disputed.provider_payment_id)
    mercadopago.set(disputed.provider_payment_id, status="charged_back", status_detail="settled")
    deliver(disputed.provider_payment_id)
    fine = charge()
    mercadopago.approve(fine.provider_payment_id)
    deliver(fine.provider_payment_id)

    page = finance_client.get(reverse("admin:payments_payment_reconciliation")).text

    def section(key):
        start = page.index(f'id="report-{key}"')
        return page[start : page.index("</table>", start)]

    assert f">#{late.purchase_id}<" in section("paid-not-granted")
    assert f">#{disputed.purchase_id}<" in section("granted-not-paid")
    review = section("review")
    assert f">#{late.purchase_id}<" in review and f">#{disputed.purchase_id}<" in review
    assert "pago depois que a compra foi encerrada" in review
    assert "contestado pelo pagador (chargeback)" in review
    assert f">#{fine.purchase_id}<" not in page
    assert 'name="_reconcile"' in page
    home = finance_client.get(reverse("admin:index")).text
    assert reverse("admin:payments_payment_reconciliation") in home


def test_reconcile_now_needs_the_confirm_right(paid, finance_client, mercadopago):
    support = Client()
    support.force_login(staff("suporte@solaris.test", group=SUPPORT))
    url = reverse("admin:payments_payment_reconciliation")
    assert support.get(url).status_code == 200
    assert 'name="_reconcile"' not in support.get(url).text
    assert support.post(url).status_code == 403
    done = finance_client.post(url, follow=True)
    assert "Conciliado:" in done.text
    sync = reverse("admin:payments_payment_sync", args=[paid.pk])
    assert support.post(sync).status_code == 403
    assert "Lido no Mercado Pago: pago." in finance_client.post(sync, follow=True).text
