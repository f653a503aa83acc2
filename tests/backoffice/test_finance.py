"""The finance screens through Django's test client: no double credit without saying so, cancel as
a step with a reason, a user's purchases on their page, numbers and money as people read them,
prices typed in reais, customers without staff."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.services import api_key_create
from credits.models import CreditPackage, Grant, LedgerEntry, Purchase
from credits.selectors import account_summary
from credits.services import purchase_confirm, purchase_request
from tests.backoffice.conftest import spend
from tests.factories import CreditPackageFactory, UserFactory

USERS = reverse("admin:accounts_user_changelist")


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com", name="Carla Cliente")


@pytest.fixture
def waiting(customer):
    """Carla asked to buy 100 000 credits for R$ 49,90 and has not paid yet."""
    package = CreditPackageFactory(name="Pacote 100 mil", credits=100_000, price_cents=4_990)
    return purchase_request(user=customer, idempotency_key="carla-1", package=package)


def add_credits_url(user) -> str:
    return reverse("admin:accounts_user_add_credits", args=[user.pk])


def top_up(client, user, **fields):
    page = client.get(add_credits_url(user))
    data = {
        "amount": "100000",
        "reason": "PIX recebido",
        "idempotency_key": page.context["form"].initial["idempotency_key"],
        **fields,
    }
    return client.post(add_credits_url(user), data)


def manual_grants(user) -> list[int]:
    return list(
        Grant.objects.filter(account_id=user.pk, source="manual").values_list("amount", flat=True)
    )


# --- the double credit needs an explicit acknowledgement ---


def test_the_top_up_form_shows_the_pending_purchase_and_how_to_confirm_it(
    finance_client, customer, waiting
):
    page = finance_client.get(add_credits_url(customer))
    assert page.status_code == 200
    pending = page.text[page.text.index('id="pending-purchases"') :]
    assert f"#{waiting.pk}" in pending and "100.000 créditos" in pending
    assert "R$ 49,90" in pending
    confirm = reverse("admin:credits_purchase_confirm", args=[waiting.pk])
    assert f'href="{confirm}">confirmar a compra #{waiting.pk} em vez disso</a>' in pending
    assert f"Estou ciente da compra pendente #{waiting.pk}" in page.text
    assert f'name="acknowledge_purchase_{waiting.pk}"' in page.text


def test_a_top_up_while_a_purchase_waits_is_refused_without_the_acknowledgement(
    finance_client, customer, waiting
):
    refused = top_up(finance_client, customer)
    assert refused.status_code == 200
    errors = refused.context["form"].errors[f"acknowledge_purchase_{waiting.pk}"]
    assert f"#{waiting.pk}" in errors[0] and "confirme essa compra em vez disso" in errors[0]
    assert manual_grants(customer) == []
    done = top_up(finance_client, customer, **{f"acknowledge_purchase_{waiting.pk}": "on"})
    assert done.status_code == 302
    assert manual_grants(customer) == [100_000]


def test_the_acknowledgement_names_each_purchase_not_any(finance_client, customer, waiting):
    """Knowing of #1 says nothing of a #2 asked for while the form was open."""
    page = finance_client.get(add_credits_url(customer))
    second = purchase_request(user=customer, idempotency_key="carla-2", credits=10, price_cents=1)
    data = {
        "amount": "5000",
        "reason": "PIX recebido",
        "idempotency_key": page.context["form"].initial["idempotency_key"],
        f"acknowledge_purchase_{waiting.pk}": "on",
    }
    refused = finance_client.post(add_credits_url(customer), data)
    assert refused.status_code == 200
    assert set(refused.context["form"].errors) == {f"acknowledge_purchase_{second.pk}"}
    assert manual_grants(customer) == []
    done = finance_client.post(
        add_credits_url(customer), {**data, f"acknowledge_purchase_{second.pk}": "on"}
    )
    assert done.status_code == 302 and manual_grants(customer) == [5_000]


def test_without_a_pending_purchase_nothing_is_asked(finance_client, customer, waiting):
    purchase_confirm(purchase=waiting, confirmed_by=None)
    page = finance_client.get(add_credits_url(customer))
    assert "pending-purchases" not in page.text and "acknowledge_purchase" not in page.text
    assert top_up(finance_client, customer).status_code == 302
    assert manual_grants(customer) == [100_000]


def test_a_grant_request_above_the_threshold_needs_it_too(
    finance_client, customer, waiting, settings
):
    from backoffice.models import GrantRequest

    settings.SOLARIS_GRANT_APPROVAL_ABOVE = 10_000
    assert top_up(finance_client, customer).status_code == 200
    assert not GrantRequest.objects.exists()
    top_up(finance_client, customer, **{f"acknowledge_purchase_{waiting.pk}": "on"})
    assert GrantRequest.objects.get().amount == 100_000


@pytest.fixture
def api(client, finance_user):
    _key, raw = api_key_create(user=finance_user, name="automation")

    def call(method, path, body=None):
        return getattr(client, method)(
            f"/api/v1/admin/{path}",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )

    return call


def test_the_api_answers_409_pending_purchase_unless_acknowledged(api, customer, waiting):
    body = {"user": customer.email, "amount": 100_000, "reason": "PIX", "idempotency_key": "k1"}
    refused = api("post", "grants", body)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("pending_purchase", "acknowledge_pending_purchase")
    assert f"#{waiting.pk}" in error["message"]
    assert manual_grants(customer) == []
    assert (
        api("post", "grants", {**body, "acknowledge_pending_purchase": "talvez"}).status_code == 400
    )
    done = api("post", "grants", {**body, "acknowledge_pending_purchase": True})
    assert done.status_code == 201
    # The same key again is the same grant, acknowledged or not.
    assert api("post", "grants", body).status_code == 200
    assert manual_grants(customer) == [100_000]


def test_a_pix_charge_waiting_counts_as_a_pending_purchase(api, customer):
    purchase = purchase_request(
        user=customer, idempotency_key="pix-1", credits=100_000, price_cents=4_990, method="online"
    )
    body = {"user": customer.pk, "amount": 1_000, "reason": "PIX", "idempotency_key": "k2"}
    assert api("post", "grants", body).json()["error"]["code"] == "pending_purchase"
    purchase.status = Purchase.Status.CANCELLED
    purchase.save()
    assert api("post", "grants", body).status_code == 201


# --- cancel: a step, a reason, never a PIX charge that can still be paid ---


def test_the_api_cancel_keeps_the_reason(api, customer, waiting):
    done = api("post", f"purchases/{waiting.pk}/cancel", {"reason": "Pedido em dobro"})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    log = LogEntry.objects.get(object_id=str(waiting.pk))
    assert "Pedido em dobro" in log.get_change_message()


# --- the user's page lists their purchases, the waiting ones first ---


def test_the_user_page_lists_purchases_waiting_first(finance_client, customer, waiting):
    old = purchase_request(user=customer, idempotency_key="old", credits=5_000, price_cents=990)
    purchase_confirm(purchase=old, confirmed_by=None)
    newest = purchase_request(user=customer, idempotency_key="new", credits=7_000, price_cents=1)
    newest.status = Purchase.Status.CANCELLED
    newest.save()
    page = finance_client.get(reverse("admin:accounts_user_change", args=[customer.pk]))
    table = page.text[page.text.index('id="user-purchases"') :]
    table = table[: table.index("</table>")]
    order = [table.index(f">#{purchase.pk}<") for purchase in (waiting, newest, old)]
    assert order == sorted(order)
    assert "100.000" in table and "R$ 49,90" in table and "R$ 9,90" in table
    confirm = reverse("admin:credits_purchase_confirm", args=[waiting.pk])
    assert table.count('class="button confirm-purchase"') == 1 and confirm in table


# --- numbers and money as people read them ---


def test_purchase_pages_show_credits_and_reais(admin_client, waiting):
    page = admin_client.get(reverse("admin:credits_purchase_change", args=[waiting.pk])).text
    assert "100.000" in page and "R$ 49,90" in page
    assert "100000" not in page and "4990" not in page
    assert f"#{waiting.pk} cliente@example.com · 100.000 créditos" in page
    listing = admin_client.get(reverse("admin:credits_purchase_changelist")).text
    assert "100.000" in listing and "R$ 49,90" in listing and "badge-warn" in listing


def test_ledger_grants_accounts_and_calls_are_grouped(admin_client, customer, price):
    spend(customer, price, request_id="c1", prompt=12_000, completion=3_000)
    entry = LedgerEntry.objects.filter(account_id=customer.pk, kind="grant").get()
    ledger = admin_client.get(reverse("admin:credits_ledgerentry_changelist")).text
    assert "+100.000" in ledger
    detail = admin_client.get(reverse("admin:credits_ledgerentry_change", args=[entry.pk])).text
    assert "+100.000" in detail and "100000" not in detail
    grants = admin_client.get(reverse("admin:credits_grant_changelist")).text
    assert "100.000" in grants
    accounts = admin_client.get(reverse("admin:credits_account_changelist")).text
    assert "100000" not in accounts
    calls = admin_client.get(reverse("admin:proxy_callrecord_changelist")).text
    assert "12.000" in calls


def test_the_dashboard_groups_tokens(admin_client, customer, price):
    spend(customer, price, request_id="d1", prompt=12_000, completion=3_000)
    page = admin_client.get(reverse("admin-dashboard")).text
    assert "12.000 / 3.000" in page


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("14,90", 1_490), ("R$ 14,90", 1_490), ("1.490,00", 149_000), ("14.90", 1_490), ("0", 0)],
)
def test_a_package_price_is_typed_in_reais_and_stored_in_cents(admin_client, db, typed, cents):
    add = reverse("admin:credits_creditpackage_add")
    response = admin_client.post(
        add, {"name": "Pacote", "credits": "100000", "price": typed, "active": "on"}
    )
    assert response.status_code == 302
    assert CreditPackage.objects.get().price_cents == cents


@pytest.mark.parametrize("typed", ["14,999", "abc", "-1", "1e3", "14,9,0", "1.4900", "", "١٤"])
def test_a_bad_price_is_refused_and_saves_nothing(admin_client, db, typed):
    add = reverse("admin:credits_creditpackage_add")
    response = admin_client.post(add, {"name": "Pacote", "credits": "100000", "price": typed})
    assert response.status_code == 200
    assert "price" in response.context["adminform"].form.errors
    assert not CreditPackage.objects.exists()


def test_the_package_form_shows_reais_in_each_language(admin_client, db):
    package = CreditPackageFactory(credits=100_000, price_cents=149_000)
    change = reverse("admin:credits_creditpackage_change", args=[package.pk])
    assert 'value="1490,00"' in admin_client.get(change).text
    english = admin_client.get(change, HTTP_ACCEPT_LANGUAGE="en").text
    assert 'value="1490.00"' in english
    admin_client.post(
        change,
        {"name": package.name, "credits": "100000", "price": "14.90", "active": "on"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    package.refresh_from_db()
    assert package.price_cents == 1_490
    listing = admin_client.get(reverse("admin:credits_creditpackage_changelist")).text
    assert "R$ 14,90" in listing and "100.000" in listing


def test_credits_inputs_carry_the_preview_words(finance_client, customer):
    page = finance_client.get(add_credits_url(customer)).text
    assert 'data-credits-other="= %(amount)s créditos"' in page
    assert 'data-credits-one="= %(amount)s crédito"' in page
    assert "/static/backoffice/admin.js" in page and "<script>" not in page


# --- the users list: customers first, the top-up first ---


def test_staff_are_hidden_by_default_and_one_filter_away(finance_client, customer, admin_user):
    listing = finance_client.get(USERS)
    shown = list(listing.context["cl"].result_list)
    assert shown == [customer]
    staff_only = finance_client.get(USERS, {"people": "staff"})
    assert customer not in staff_only.context["cl"].result_list
    assert admin_user in staff_only.context["cl"].result_list
    everyone = finance_client.get(USERS, {"people": "all"}).context["cl"].result_list
    assert {customer, admin_user} <= set(everyone)
    assert "Clientes" in listing.text and "Equipe" in listing.text


def test_the_top_up_is_the_first_column(finance_client, customer):
    listing = finance_client.get(USERS).text
    row = listing[listing.index("<tbody>") :]
    assert row.index("add-credits") < row.index("cliente@")


def test_a_suspended_customer_shows_it_in_the_state_column(admin_client, customer):
    customer.is_suspended = True
    customer.save()
    listing = admin_client.get(USERS).text
    assert "badge-bad" in listing and "suspenso" in listing


# --- words: app names and the alert badge ---


def test_the_admin_home_names_apps_in_portuguese(admin_client, db):
    page = admin_client.get(reverse("admin:index")).text
    for name in ("Contas", "Notificações", "Chamadas", "Pagamentos", "Créditos"):
        assert f">{name}</a>" in page, name
    for english in (">Accounts<", ">Notifications<", ">Proxy<"):
        assert english not in page


def test_the_alert_badge_uses_the_readable_amber(admin_client, customer, price, settings):
    settings.SOLARIS_ALERT_THRESHOLD = 1
    spend(customer, price, request_id="a1", prompt=1_000, completion=1_000)
    assert account_summary(user_id=customer.pk).state == "alert"
    listing = admin_client.get(USERS).text
    assert 'class="badge badge-warn credit-state credit-state-alert"' in listing
    assert "style=" not in listing[listing.index('id="result_list"') :]
