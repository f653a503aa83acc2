import csv
import io
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from credits.models import Grant, LedgerEntry, ModelPrice, Plan, Purchase
from credits.selectors import account_summary
from credits.services import purchase_request
from proxy.models import CallRecord
from tests.backoffice.conftest import spend
from tests.factories import CreditPackageFactory, UserFactory

PURCHASES = reverse("admin:credits_purchase_changelist")


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com", name="Carla Cliente")


@pytest.fixture
def requested(customer):
    package = CreditPackageFactory(credits=500_000, price_cents=19_990)
    return purchase_request(user=customer, idempotency_key="req-1", package=package)


def url(name, purchase):
    return reverse(f"admin:credits_purchase_{name}", args=[purchase.pk])


# --- purchases ---


def test_queue_lists_requested_purchases(admin_client, requested, customer):
    other = purchase_request(user=customer, idempotency_key="req-2", credits=10, price_cents=100)
    admin_client.post(url("cancel", other), {"reason": "O cliente desistiu"})
    response = admin_client.get(PURCHASES, {"status__exact": "requested"})
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown == [requested]
    assert "R$ 199,90" in response.text


def test_confirm_payment_grants_once_and_records_who(admin_client, admin_user, requested):
    page = admin_client.get(url("confirm", requested))
    assert page.status_code == 200 and "500.000" in page.text
    admin_client.post(url("confirm", requested), {"payment_reference": "PIX-9"})
    admin_client.post(url("confirm", requested), {"payment_reference": "PIX-9"})
    requested.refresh_from_db()
    assert requested.status == Purchase.Status.CREDITED
    assert requested.confirmed_by == admin_user and requested.payment_reference == "PIX-9"
    assert Grant.objects.filter(purchase=requested).count() == 1
    entry = LedgerEntry.objects.get(purchase=requested, kind=LedgerEntry.Kind.GRANT)
    assert entry.created_by == admin_user
    assert account_summary(user_id=requested.user_id).available == 600_000
    assert LogEntry.objects.filter(object_id=str(requested.pk)).exists()


def test_bulk_confirm_and_no_bulk_cancel(finance_client, customer):
    one = purchase_request(user=customer, idempotency_key="b1", credits=100, price_cents=10)
    two = purchase_request(user=customer, idempotency_key="b2", credits=200, price_cents=20)
    finance_client.post(PURCHASES, {"action": "confirm_selected", "_selected_action": [one.pk]})
    one.refresh_from_db()
    assert one.status == Purchase.Status.CREDITED
    # Cancelling asks for a reason, purchase by purchase: there is no bulk cancel.
    assert "cancel_selected" not in finance_client.get(PURCHASES).text
    finance_client.post(PURCHASES, {"action": "cancel_selected", "_selected_action": [two.pk]})
    two.refresh_from_db()
    assert two.status == Purchase.Status.REQUESTED


def test_refund_takes_back_what_is_left(admin_client, admin_user, requested, price):
    admin_client.post(url("confirm", requested), {})
    spent = spend(requested.user, price, request_id="after-purchase", prompt=1_000, completion=0)
    page = admin_client.get(url("refund", requested))
    assert page.status_code == 200
    assert admin_client.post(url("refund", requested), {"reason": ""}).status_code == 200
    admin_client.post(url("refund", requested), {"reason": "Estorno pedido"})
    requested.refresh_from_db()
    assert requested.status == Purchase.Status.REFUNDED
    refund = LedgerEntry.objects.get(purchase=requested, kind=LedgerEntry.Kind.REFUND)
    # The plan grant expires first, so the usage came from it and the purchase is whole.
    assert refund.amount == -500_000 and refund.created_by == admin_user
    assert refund.reason == "Estorno pedido"
    assert account_summary(user_id=requested.user_id).available == 100_000 - spent


def test_refund_of_an_unconfirmed_purchase_is_refused(admin_client, requested):
    response = admin_client.post(url("refund", requested), {"reason": "x"})
    assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).exists()


def test_cancel_is_a_step_with_a_reason_in_danger_style(admin_client, requested):
    page = admin_client.get(reverse("admin:credits_purchase_change", args=[requested.pk]))
    # On the purchase: a link to the step, styled as danger, never a primary button.
    assert f'class="button danger cancel-purchase" href="{url("cancel", requested)}"' in page.text
    assert "formaction" not in page.text
    step = admin_client.get(url("cancel", requested))
    assert step.status_code == 200
    assert 'class="danger" name="_submit" value="Cancelar esta compra"' in step.text
    assert "Manter a compra" in step.text and "500.000 créditos" in step.text
    refused = admin_client.post(url("cancel", requested), {"reason": "  "})
    assert refused.status_code == 200 and refused.context["form"].errors["reason"]
    requested.refresh_from_db()
    assert requested.status == Purchase.Status.REQUESTED
    done = admin_client.post(url("cancel", requested), {"reason": "Pedido duplicado"})
    assert done.status_code == 302
    requested.refresh_from_db()
    assert requested.status == Purchase.Status.CANCELLED
    history = LogEntry.objects.get(object_id=str(requested.pk))
    assert history.get_change_message() == "Cancelada: Pedido duplicado"


def test_support_cannot_confirm_cancel_or_refund(support_client, requested):
    for name in ("confirm", "cancel", "refund"):
        assert support_client.post(url(name, requested), {"reason": "x"}).status_code == 403
    support_client.post(
        PURCHASES, {"action": "confirm_selected", "_selected_action": [requested.pk]}
    )
    requested.refresh_from_db()
    assert requested.status == Purchase.Status.REQUESTED
    page = support_client.get(reverse("admin:credits_purchase_change", args=[requested.pk]))
    assert page.status_code == 200 and "confirm-purchase" not in page.text


def test_finance_sees_the_confirm_button(finance_client, requested):
    page = finance_client.get(reverse("admin:credits_purchase_change", args=[requested.pk]))
    assert url("confirm", requested) in page.text


# --- ledger and calls: read-only for everyone ---


def test_ledger_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client, customer):
    entry = LedgerEntry.objects.filter(account_id=customer.pk).first()
    change = reverse("admin:credits_ledgerentry_change", args=[entry.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.text
    assert admin_client.post(change, {"amount": "999999"}).status_code == 403
    assert admin_client.get(reverse("admin:credits_ledgerentry_add")).status_code == 403
    delete = reverse("admin:credits_ledgerentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:credits_ledgerentry_changelist")
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [entry.pk]})
    after = LedgerEntry.objects.get(pk=entry.pk)
    assert (after.amount, after.balance_after) == (entry.amount, entry.balance_after)
    assert "delete_selected" not in admin_client.get(changelist).text


def test_calls_are_read_only(admin_client, customer, price):
    spend(customer, price, request_id="call-1")
    call = CallRecord.objects.get()
    assert admin_client.get(reverse("admin:proxy_callrecord_add")).status_code == 403
    change = reverse("admin:proxy_callrecord_change", args=[call.pk])
    assert admin_client.post(change, {"credits": "0"}).status_code == 403
    delete = reverse("admin:proxy_callrecord_delete", args=[call.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert CallRecord.objects.get().credits == call.credits


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_ledger_csv_export_follows_the_filters(admin_client, customer, price):
    spend(customer, price, request_id="c1")
    other = UserFactory(email="outro@example.com")
    spend(other, price, request_id="c2")
    export = reverse("admin:credits_ledgerentry_export_csv")
    page = admin_client.get(
        reverse("admin:credits_ledgerentry_changelist"), {"kind__exact": "usage"}
    )
    assert f"{export}?kind__exact=usage" in page.text
    response = admin_client.get(export, {"kind__exact": "usage", "q": "cliente@"})
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert len(rows) == 1
    row = rows[0]
    assert list(row.values())[2] == "cliente@example.com" and list(row.values())[3] == "usage"
    assert int(list(row.values())[4]) == LedgerEntry.objects.get(hold__request_id="c1").amount
    assert len(read_csv(admin_client.get(export))) == LedgerEntry.objects.count()


def test_calls_csv_export_and_formula_cells_are_escaped(admin_client, customer, price):
    spend(customer, price, request_id="=cmd|calc")
    rows = read_csv(admin_client.get(reverse("admin:proxy_callrecord_export_csv")))
    assert next(iter(rows[0].values())) == "'=cmd|calc"


def test_support_can_view_and_export_but_not_anonymous(support_client, client, customer):
    export = reverse("admin:credits_ledgerentry_export_csv")
    assert support_client.get(export).status_code == 200
    client.logout()
    assert client.get(export).status_code == 302  # to the admin login


# --- plans, packages and prices ---


def plan_data(**overrides):
    return {
        "name": "Empresa",
        "slug": "empresa",
        "monthly_allowance": "1000000",
        "all_models": "on",
        "allowed_models": "[]",
        "requests_per_minute": "60",
        "default_max_tokens": "4096",
        "active": "on",
        **overrides,
    }


def test_plan_validation(admin_client, plan):
    add = reverse("admin:credits_plan_add")
    response = admin_client.post(add, plan_data(monthly_allowance="-1"))
    assert "monthly_allowance" in response.context["adminform"].form.errors
    response = admin_client.post(add, plan_data(is_default="on"))
    assert "is_default" in response.context["adminform"].form.errors
    response = admin_client.post(add, plan_data(allowed_models='{"a": 1}'))
    assert "allowed_models" in response.context["adminform"].form.errors
    assert not Plan.objects.filter(slug="empresa").exists()
    assert admin_client.post(add, plan_data()).status_code == 302
    assert Plan.objects.get(slug="empresa").monthly_allowance == 1_000_000
    edit = reverse("admin:credits_plan_change", args=[plan.pk])
    response = admin_client.post(edit, plan_data(name="Básico", slug="basico", is_default="on"))
    assert response.status_code == 302  # the default plan may stay the default
    response = admin_client.post(
        edit, plan_data(name="Básico", slug="basico", is_default="on", active="")
    )
    assert "active" in response.context["adminform"].form.errors


def test_package_validation(admin_client, db):
    add = reverse("admin:credits_creditpackage_add")
    response = admin_client.post(add, {"name": "P", "credits": "0", "price": "1,00"})
    assert "credits" in response.context["adminform"].form.errors
    assert (
        admin_client.post(
            add, {"name": "P", "credits": "1000", "price": "1,00", "active": "on"}
        ).status_code
        == 302
    )


def test_price_validation_and_save_through_the_service(admin_client, db):
    add = reverse("admin:credits_modelprice_add")
    data = {"model": "gpt-x", "input_weight": "0", "output_weight": "2", "active": "on"}
    response = admin_client.post(add, data)
    assert "input_weight" in response.context["adminform"].form.errors
    response = admin_client.post(add, {**data, "input_weight": "-1", "output_weight": "0"})
    assert {"input_weight", "output_weight"} <= set(response.context["adminform"].form.errors)
    assert admin_client.post(add, {**data, "input_weight": "0.5"}).status_code == 302
    price = ModelPrice.objects.get(model="gpt-x")
    assert price.input_weight == Decimal("0.5") and price.active
    edit = reverse("admin:credits_modelprice_change", args=[price.pk])
    admin_client.post(edit, {"input_weight": "0.75", "output_weight": "2"})
    price.refresh_from_db()
    assert price.input_weight == Decimal("0.75") and not price.active


class ModelsHandler(BaseHTTPRequestHandler):
    status = 200
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(
            {"object": "list", "data": [{"id": "gpt-novo", "object": "model"}, {"id": "gpt-test"}]}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body if self.status == 200 else b'{"error": "down"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def litellm(settings):
    """A tiny local HTTP server that answers GET /v1/models like LiteLLM."""
    ModelsHandler.status, ModelsHandler.seen = 200, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ModelsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.LITELLM_API_KEY = "sk-master"
    yield ModelsHandler
    server.shutdown()
    server.server_close()


def test_import_models_from_litellm_as_inactive_prices(admin_client, price, litellm):
    importer = reverse("admin:credits_modelprice_import")
    assert admin_client.get(importer).status_code == 405
    response = admin_client.post(importer, follow=True)
    assert litellm.seen == [("/v1/models", "Bearer sk-master")]
    new = ModelPrice.objects.get(model="gpt-novo")
    assert not new.active
    price.refresh_from_db()
    assert price.active and price.input_weight == Decimal("1.5")  # priced models are untouched
    assert "gpt-novo" in response.text
    admin_client.post(importer)
    assert ModelPrice.objects.filter(model="gpt-novo").count() == 1


def test_import_reports_an_upstream_failure(admin_client, db, litellm):
    litellm.status = 500
    response = admin_client.post(reverse("admin:credits_modelprice_import"), follow=True)
    assert "LiteLLM" in response.text
    assert not ModelPrice.objects.exists()


def test_import_without_litellm_configured(admin_client, db, settings):
    settings.LITELLM_BASE_URL = ""
    response = admin_client.post(reverse("admin:credits_modelprice_import"), follow=True)
    assert "LITELLM_BASE_URL" in response.text


def test_support_cannot_import_or_activate(support_client, db, litellm):
    assert support_client.post(reverse("admin:credits_modelprice_import")).status_code == 403
    assert litellm.seen == []


def test_activate_and_deactivate_actions(admin_client, price):
    changelist = reverse("admin:credits_modelprice_changelist")
    admin_client.post(changelist, {"action": "deactivate_selected", "_selected_action": [price.pk]})
    assert not ModelPrice.objects.get().active
    admin_client.post(changelist, {"action": "activate_selected", "_selected_action": [price.pk]})
    assert ModelPrice.objects.get().active


def test_every_admin_page_renders(admin_client, requested, price):
    for name in ["grant", "hold", "account", "subscription", "plan", "creditpackage"]:
        assert admin_client.get(reverse(f"admin:credits_{name}_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:accounts_apikey_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:accounts_integration_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:proxy_callrecord_changelist")).status_code == 200
