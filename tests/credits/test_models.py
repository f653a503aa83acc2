"""Integrity the model and the database enforce on their own, whatever the caller does."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from credits.models import Account, Grant, Hold, LedgerEntry
from credits.services import credits_grant


@pytest.fixture
def entry(poor):
    credits_grant(user=poor, amount=10, idempotency_key="one")
    return LedgerEntry.objects.get(account=poor.account)


def test_ledger_entry_refuses_update_and_delete(entry):
    entry.amount = 1_000
    with pytest.raises(ValidationError, match="cannot be updated"):
        entry.save()
    with pytest.raises(ValidationError, match="cannot be deleted"):
        entry.delete()
    with pytest.raises(ValidationError, match="cannot be updated"):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=5)
    with pytest.raises(ValidationError, match="cannot be deleted"):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.amount == 10


@pytest.mark.parametrize(
    "change",
    [
        lambda account, grant: Grant.objects.filter(pk=grant.pk).update(remaining=-1),
        lambda account, grant: Grant.objects.filter(pk=grant.pk).update(remaining=11),
        lambda account, grant: Account.objects.filter(pk=account.pk).update(held=-1),
        lambda account, grant: Account.objects.filter(pk=account.pk).update(debt=-1),
        lambda account, grant: LedgerEntry.objects.create(
            account=account, kind="adjustment", amount=0, balance_after=10, idempotency_key="z"
        ),
        lambda account, grant: LedgerEntry.objects.create(
            account=account,
            kind="adjustment",
            amount=1,
            balance_after=11,
            idempotency_key="grant:one",
        ),
        lambda account, grant: Hold.objects.create(
            account=account, request_id="r", model="m", amount=0, input_weight=1, output_weight=1
        ),
        lambda account, grant: Grant.objects.create(
            account=account, source="manual", amount=0, remaining=0
        ),
    ],
    ids=[
        "grant-remaining-negative",
        "grant-remaining-above-amount",
        "held-negative",
        "debt-negative",
        "ledger-amount-zero",
        "ledger-key-duplicate",
        "hold-amount-zero",
        "grant-amount-zero",
    ],
)
def test_database_constraints_refuse_broken_rows(entry, change):
    account = entry.account
    with pytest.raises(IntegrityError), transaction.atomic():
        change(account, entry.grant)
    assert LedgerEntry.objects.filter(account=account).count() == 1


def test_plan_allows_all_or_listed_models(db):
    from tests.factories import PlanFactory

    assert PlanFactory(slug="all").allows("anything")
    listed = PlanFactory(slug="listed", all_models=False, allowed_models=["gpt-a"])
    assert (listed.allows("gpt-a"), listed.allows("gpt-b")) == (True, False)


def test_rows_describe_themselves_for_admin(user, unit_price):
    from credits.models import CreditPackage, Plan, Subscription
    from credits.services import hold_create, purchase_request

    hold = hold_create(user=user, request_id="r", price=unit_price, prompt_tokens=1, max_tokens=1)
    purchase = purchase_request(user=user, idempotency_key="k", credits=5, price_cents=1)
    grant = Grant.objects.get(account=user.account)
    entry = LedgerEntry.objects.get(account=user.account)
    texts = [
        str(Plan.objects.get(slug="basico")),
        str(user.account),
        str(Subscription.objects.get(user=user)),
        str(CreditPackage(name="Pacote 1")),
        str(purchase),
        str(grant),
        str(hold.hold),
        str(entry),
        str(unit_price),
    ]
    assert texts == [
        "Basico",
        "ana@example.com",
        "ana@example.com → Basico",
        "Pacote 1",
        f"#{purchase.pk} ana@example.com · 5 credits",
        f"{grant.get_source_display()}: 100,000 of 100,000 credits left",
        "r: 2 credits held, open",
        "grant +100,000",
        "unit",
    ]
