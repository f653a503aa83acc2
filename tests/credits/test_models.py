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
