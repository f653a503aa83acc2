"""The pages' server side through Django's test client: the order page and its panel, the balance
API's new fields, renewal words, entries described in the reader's language, the statement
exports, the error pages, the instructions finance edits, and the one CSV guard."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from backoffice.roles import FINANCE, roles_sync
from credits.models import LedgerEntry, Subscription
from credits.selectors import account_summary
from credits.services import credits_grant, purchase_confirm, purchase_request
from kernel.spreadsheet import csv_cell
from payments.models import PaymentInstructions
from portal.labels import entry_text
from portal.selectors import Renewal, renewal_outlook
from portal.templatetags.portal_tags import renewal_line, renewal_wait
from tests.factories import CreditPackageFactory, ModelPriceFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(db):
    PlanFactory(slug="pro", name="Profissional", monthly_allowance=100_000, is_default=True)
    return UserFactory(email="ana@example.com", name="Ana")


@pytest.fixture
def package(db):
    return CreditPackageFactory(name="Pacote 100 mil", credits=100_000, price_cents=4_990)


@pytest.fixture
def signed_in(client, ana):
    client.force_login(ana)
    return client


def spend(user, amount: int) -> None:
    from credits.services import hold_create, hold_settle

    unit = ModelPriceFactory(model="gpt-unit", input_weight="1", output_weight="1")
    request_id = f"r-{LedgerEntry.objects.count()}"
    hold_create(
        user=user, request_id=request_id, price=unit, prompt_tokens=amount - 1, max_tokens=1
    )
    hold_settle(request_id=request_id, prompt_tokens=amount - 1, completion_tokens=1)


# --- the one CSV guard ---


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("=1+1", "'=1+1"),
        ("a;=HYPERLINK(1)", "a;'=HYPERLINK(1)"),
        ("a; +1", "a; '+1"),
        ("a,-2", "a,'-2"),
        ("a|@SUM(1)", "a|'@SUM(1)"),
        ("line\n=1", "line\n'=1"),
        ("\tx", "'\tx"),
        (-5_000, -5_000),
        (True, 1),
        (None, ""),
    ],
)
def test_a_cell_never_starts_a_formula_after_any_separator(value, cell):
    assert csv_cell(value) == cell


def test_the_back_office_exports_use_the_same_guard(client, ana):
    from proxy.models import CallRecord

    admin = User.objects.create_superuser("chefe@solaris.test", "senha-forte-123", name="Chefe")
    CallRecord.objects.create(
        request_id="ok;=cmd|' /C calc'!A0",
        user=ana,
        model="m",
        status_code=200,
        end_reason="completed",
    )
    client.force_login(admin)
    response = client.get(reverse("admin:proxy_callrecord_export_csv"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][0] == "ok;'=cmd|' /C calc'!A0"


# --- renewal, pending order, the balance API ---


def test_renewal_outlook_is_the_plan_allowance_and_what_of_it_expires(ana):
    spend(ana, 31_376)
    summary = account_summary(user_id=ana.pk)
    renewal = renewal_outlook(user_id=ana.pk, summary=summary)
    ends = Subscription.objects.get(user=ana).cycle_end
    assert renewal == Renewal(
        ends, (timezone.localdate(ends) - timezone.localdate()).days, 100_000, 68_624
    )
    credits_grant(user=ana, amount=20_000, idempotency_key="promo")  # no expiry: not counted
    assert renewal_outlook(user_id=ana.pk, summary=summary).expiring == 68_624


def test_no_renewal_without_a_plan_that_grants(db):
    PlanFactory(slug="vazio", monthly_allowance=0, is_default=True)
    user = UserFactory(email="bia@example.com")
    assert renewal_outlook(user_id=user.pk, summary=account_summary(user_id=user.pk)) is None


@pytest.mark.parametrize(
    ("days", "credits", "expiring", "line", "wait"),
    [
        (
            3,
            100_000,
            68_624,
            "Renova em 3 dias: +100.000; 68.624 vencem",
            "ou aguarde a renovação em 3 dias (+100.000 créditos)",
        ),
        (
            1,
            100_000,
            1,
            "Renova amanhã: +100.000; 1 vence",
            "ou aguarde a renovação amanhã (+100.000 créditos)",
        ),
        (0, 100_000, 0, "Renova hoje: +100.000", "ou aguarde a renovação hoje (+100.000 créditos)"),
        (5, 0, 40, "Renova em 5 dias: 40 vencem", ""),
    ],
)
def test_renewal_words(days, credits, expiring, line, wait):
    renewal = Renewal(timezone.now(), days, credits, expiring)
    with translation.override("pt-br"):
        assert renewal_line(renewal) == line
        assert renewal_wait(renewal) == wait
    with translation.override("en"):
        assert renewal_line(Renewal(timezone.now(), 3, 100_000, 68_624)) == (
            "Renews in 3 days: +100,000; 68,624 expire"
        )


def test_the_balance_api_tells_the_widget_the_renewal_base_and_pending_order(
    signed_in, ana, package, settings
):
    settings.SOLARIS_PUBLIC_URL = "https://solaris.example.com"
    body = signed_in.get(reverse("portal:api-balance")).json()
    assert body["granted"] == 100_000 and body["payment_method"] == "manual"
    assert body["renewal"]["credits"] == 100_000 and body["renewal"]["expiring"] == 100_000
    assert body["pending_purchase"] is None
    purchase = purchase_request(user=ana, package=package, idempotency_key="ask")
    body = signed_in.get(reverse("portal:api-balance")).json()
    pending = body["pending_purchase"]
    assert (pending["id"], pending["status"], pending["price_cents"]) == (
        purchase.pk,
        "pending",
        4_990,
    )
    assert pending["url"] == f"https://solaris.example.com/conta/pedidos/{purchase.pk}/"
    assert pending["instructions"] and pending["pix"] is None
    purchase_confirm(purchase=purchase, confirmed_by=None)
    assert signed_in.get(reverse("portal:api-balance")).json()["pending_purchase"] is None


def test_the_order_page_is_only_its_owners(signed_in, ana, package, client):
    purchase = purchase_request(user=ana, package=package, idempotency_key="ask")
    page = signed_in.get(reverse("portal:order", args=[purchase.pk]))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    panel = signed_in.get(reverse("portal:order-panel", args=[purchase.pk]))
    assert panel.content.decode().lstrip().startswith('<div class="order" data-order')
    assert f"Pedido #{purchase.pk} · R$ 49,90 · aguardando pagamento" in panel.content.decode()
    other = UserFactory(email="bia@example.com")
    client.force_login(other)
    for name in ("portal:order", "portal:order-panel"):
        assert client.get(reverse(name, args=[purchase.pk])).status_code == 404
        assert client.get(reverse(name, args=[10**12])).status_code == 404
        assert client.get(reverse(name, args=[10**30])).status_code == 404  # not a 500
    assert client.get(reverse("portal:purchase-confirm", args=[10**30])).status_code == 404
    assert client.post(reverse("portal:purchase-confirm", args=[10**30])).status_code == 404


# --- the instructions finance edits ---


def test_finance_edits_the_payment_instructions_people_read(client, ana, package):
    roles_sync()
    finance = User.objects.create_user(
        "financeiro@solaris.test", "senha-forte-123", is_staff=True, name="Fin"
    )
    finance.groups.add(Group.objects.get(name=FINANCE))
    client.force_login(finance)
    listing = client.get(reverse("admin:payments_paymentinstructions_changelist"))
    assert listing.status_code == 302
    assert client.get(reverse("admin:payments_paymentinstructions_add")).status_code == 403
    change = listing["Location"]
    saved = client.post(
        change,
        {
            "text_pt_br": "Chave PIX: financeiro@solaris.example",
            "text_en": "PIX key: finance@solaris.example",
        },
    )
    assert saved.status_code == 302
    assert PaymentInstructions.objects.get().text_pt_br == "Chave PIX: financeiro@solaris.example"
    purchase = purchase_request(user=ana, package=package, idempotency_key="ask")
    client.force_login(ana)
    order = reverse("portal:order", args=[purchase.pk])
    assert "Chave PIX: financeiro@solaris.example" in client.get(order).content.decode()
    ana.language = "en"
    ana.save(update_fields=["language"])
    assert "PIX key: finance@solaris.example" in client.get(order).content.decode()


# --- entries in the reader's language ---


def test_entries_are_described_from_what_they_point_at(ana, package):
    with translation.override("en"):
        purchase = purchase_request(user=ana, package=package, idempotency_key="ask")
        purchase_confirm(purchase=purchase, confirmed_by=None)
    credits_grant(user=ana, amount=500, idempotency_key="gift", reason="Boas-vindas")
    entries = {
        e.kind + (e.grant.source if e.grant else ""): e
        for e in LedgerEntry.objects.select_related("grant")
    }
    with translation.override("pt-br"):
        assert entry_text(entries["grantpurchase"]) == f"Compra #{purchase.pk}"
        assert entry_text(entries["grantplan_cycle"]) == "Franquia do plano Profissional"
        assert entry_text(entries["grantmanual"]) == "Recarga — Boas-vindas"
    with translation.override("en"):
        assert entry_text(entries["grantpurchase"]) == f"Purchase #{purchase.pk}"


# --- exports ---


def test_the_statement_csv_reconciles_and_the_print_page_sums_calls_per_day(signed_in, ana):
    spend(ana, 1_000)
    spend(ana, 2_000)
    today = timezone.localdate().isoformat()
    response = signed_in.get(reverse("portal:statement-csv"), {"start": today, "end": today})
    assert response.status_code == 200 and "extrato" in response["Content-Disposition"]
    raw = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw), delimiter=";"))
    assert rows[0] == ["Data", "Lançamento", "Descrição", "Créditos", "Saldo"]
    assert [row[1] for row in rows[1:]] == [
        "Saldo inicial",
        "Créditos adicionados",
        "Consumo",
        "Consumo",
        "Saldo final",
    ]
    assert rows[2][2] == "Franquia do plano Profissional" and rows[3][2] == "gpt-unit"
    assert int(rows[1][4]) + sum(int(row[3]) for row in rows[2:-1]) == int(rows[-1][4]) == 97_000
    printed = signed_in.get(reverse("portal:statement-print"), {"start": today, "end": today})
    html = printed.content.decode()
    assert "Consumo (2 chamadas)" in html and 'id="print-closing">97.000<' in html
    bad = signed_in.get(
        reverse("portal:statement-csv"), {"start": "2026-05-10", "end": "2026-05-01"}
    )
    assert bad.status_code == 400


def test_exports_need_a_login(client, db):
    for name in ("portal:statement-csv", "portal:statement-print", "portal:calls-csv"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith("/entrar/")


# --- error pages ---


def test_error_pages_are_branded_and_never_mention_debug(client, settings, ana):
    settings.DEBUG = False
    missing = client.get("/nada-aqui/")
    assert missing.status_code == 404
    body = missing.content.decode()
    assert "<h1>Página não encontrada</h1>" in body and "IA SOLARIS" in body
    english = Client(headers={"accept-language": "en"}).get("/nada-aqui/")
    assert "<h1>Page not found</h1>" in english.content.decode()
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post(reverse("portal:login"), {"username": "a@b.c", "password": "x"})
    assert refused.status_code == 403
    assert "O formulário expirou" in refused.content.decode()
    assert "DEBUG" not in refused.content.decode() and "CSRF" not in refused.content.decode()


def test_a_server_error_shows_the_branded_page(rf, settings):
    from django.views.defaults import server_error

    with translation.override("pt-br"):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Algo deu errado" in response.content.decode()


# --- e-mails ---


@pytest.mark.parametrize(
    "kind",
    [
        "credits_alert",
        "credits_blocked",
        "purchase_requested",
        "purchase_confirmed",
        "cycle_renewed",
    ],
)
def test_pt_br_emails_have_no_english_ui_words(kind, settings):
    from notifications.models import Notification
    from notifications.services import notification_message
    from tests.notifications.test_texts import CONTEXTS
    from tests.pages.rendered import english_in, english_words

    settings.SOLARIS_PUBLIC_URL = "https://solaris.example.com.br"
    notification = Notification(
        kind=kind,
        recipient="ana@example.com",
        language="pt-br",
        context=CONTEXTS[kind],
        dedupe_key=kind,
    )
    message = notification_message(notification=notification)
    html = message.alternatives[0][0]
    vocabulary = english_words()
    for text in (message.subject, message.body, html):
        assert english_in(text, vocabulary=vocabulary) == set(), text
