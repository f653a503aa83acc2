"""Every admin action against every role: who may, who gets 403, and that a refusal writes nothing."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.models import ApiKey, User
from credits.models import Grant, LedgerEntry, ModelPrice, Plan, Purchase, Subscription
from credits.services import purchase_confirm, purchase_request
from tests.factories import CreditPackageFactory, PlanFactory, UserFactory


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com")


USER_ACTIONS = [
    ("add_credits", {"amount": "5", "reason": "x", "idempotency_key": "k" * 32}),
    ("change_plan", {"plan": "PLAN"}),
    ("suspend", {"reason": "x"}),
    ("reactivate", {"reason": "x"}),
    ("api_key", {"name": "x"}),
]


@pytest.mark.parametrize(("action", "data"), USER_ACTIONS)
def test_support_gets_403_on_every_user_action(support_client, customer, action, data):
    other = PlanFactory(slug="outro")
    data = {k: (other.pk if v == "PLAN" else v) for k, v in data.items()}
    url = reverse(f"admin:accounts_user_{action}", args=[customer.pk])
    assert support_client.get(url).status_code == 403
    assert support_client.post(url, data).status_code == 403
    assert not Grant.objects.filter(source=Grant.Source.MANUAL).exists()
    assert Subscription.objects.get(user=customer).plan.slug == "basico"
    assert not User.objects.get(pk=customer.pk).is_suspended
    assert not ApiKey.objects.exists() and not LogEntry.objects.exists()


def test_support_bulk_actions_are_not_offered_nor_run(support_client, customer):
    changelist = reverse("admin:accounts_user_changelist")
    assert "suspend_selected" not in support_client.get(changelist).text
    support_client.post(
        changelist, {"action": "suspend_selected", "_selected_action": [customer.pk]}
    )
    assert not User.objects.get(pk=customer.pk).is_suspended


@pytest.mark.parametrize("client_name", ["support_client", "finance_client"])
def test_catalogue_is_read_only_for_both_roles(request, client_name, plan, price):
    client = request.getfixturevalue(client_name)
    package = CreditPackageFactory()
    pages = [
        ("credits_plan", plan.pk, {"name": "X", "slug": "x", "monthly_allowance": "1"}),
        ("credits_modelprice", price.pk, {"input_weight": "9", "output_weight": "9"}),
        ("credits_creditpackage", package.pk, {"name": "X", "credits": "1", "price_cents": "1"}),
    ]
    for name, pk, data in pages:
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:{name}_add")).status_code == 403
        assert client.post(reverse(f"admin:{name}_change", args=[pk]), data).status_code == 403
    assert Plan.objects.get(pk=plan.pk).monthly_allowance == 100_000
    assert ModelPrice.objects.get(pk=price.pk).input_weight == Decimal("1.5")


def test_finance_confirms_and_refunds(finance_client, finance_user, customer):
    purchase = purchase_request(user=customer, idempotency_key="f", credits=1_000, price_cents=1)
    confirm = reverse("admin:credits_purchase_confirm", args=[purchase.pk])
    finance_client.post(confirm, {"payment_reference": "TED-7"})
    refund = reverse("admin:credits_purchase_refund", args=[purchase.pk])
    finance_client.post(refund, {"reason": "Desistência"})
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.REFUNDED and purchase.confirmed_by == finance_user
    entries = LedgerEntry.objects.filter(purchase=purchase).order_by("id")
    assert [(e.kind, e.created_by) for e in entries] == [
        ("grant", finance_user),
        ("refund", finance_user),
    ]
    assert [log.user for log in LogEntry.objects.filter(object_id=str(purchase.pk))] == [
        finance_user,
        finance_user,
    ]


def test_support_cannot_refund(support_client, customer, admin_user):
    purchase = purchase_request(user=customer, idempotency_key="s", credits=1_000, price_cents=1)
    purchase_confirm(purchase=purchase, confirmed_by=admin_user)
    url = reverse("admin:credits_purchase_refund", args=[purchase.pk])
    assert support_client.post(url, {"reason": "x"}).status_code == 403
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.CREDITED


def test_non_staff_cannot_open_admin(client, customer):
    client.force_login(customer)
    url = reverse("admin:accounts_user_add_credits", args=[customer.pk])
    assert client.get(url).status_code == 302  # to the admin login
