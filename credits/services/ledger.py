"""The locked account and its book: the only way the cached numbers of an account change.

Every service locks the account row first (`account_lock`), so concurrent calls and processes
serialise per account and spending can never exceed what was granted. While it holds the lock it
changes the account through an `AccountBook`: `draw` takes credits from the grants (the rest is
debt), `take` takes them back from one grant (the rest is debt), `book` appends a ledger entry, `hold`/`release` move what open calls reserve, `repay` clears
debt from a new grant; `flush` then writes balance, debt and held in one UPDATE, whatever the order
of the changes before it.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from credits.models import Account, Grant, LedgerEntry


def account_lock(*, user_id: int) -> Account:
    """The user's account row, created if missing, locked until the transaction ends.

    One SELECT … FOR UPDATE when the account exists (the common case)."""
    try:
        return Account.objects.select_for_update().get(user_id=user_id)
    except Account.DoesNotExist:
        Account.objects.get_or_create(user_id=user_id)
        return Account.objects.select_for_update().get(user_id=user_id)


def require_key(idempotency_key: str) -> None:
    if not idempotency_key or not idempotency_key.strip():
        raise ValidationError(_("An idempotency key is required."), code="idempotency_key")


class AccountBook:
    """A locked account's balance, debt and held while one service changes them, in memory until
    `flush`. Ledger entries and grant remainders are written as they happen; the account row once."""

    def __init__(self, account: Account):
        self.account = account
        self._written = self._numbers()

    def _numbers(self) -> tuple[int, int, int]:
        return self.account.balance, self.account.debt, self.account.held

    @property
    def available(self) -> int:
        return self.account.available

    def book(
        self,
        *,
        kind: str,
        amount: int,
        idempotency_key: str,
        now: datetime | None = None,
        **fields,
    ) -> LedgerEntry:
        """Append a ledger entry of `amount`; the balance moves with it."""
        self.account.balance += amount
        return LedgerEntry.objects.create(
            account=self.account,
            kind=kind,
            amount=amount,
            balance_after=self.account.balance,
            idempotency_key=idempotency_key,
            created_at=now or timezone.now(),
            **fields,
        )

    def draw(self, amount: int) -> None:
        """Take `amount` from the grants, the one that expires first first; the rest is debt.

        Called right after the due grants expired, so the only expired grants with a remainder
        left are the ones reserved for open holds, and those come first.
        """
        left = amount
        grants = self.account.grants.filter(remaining__gt=0).order_by(
            F("expires_at").asc(nulls_last=True), "id"
        )
        for grant in grants:
            take = min(grant.remaining, left)
            Grant.objects.filter(pk=grant.pk).update(remaining=F("remaining") - take)
            left -= take
            if left == 0:
                break
        self.account.debt += left

    def take(self, grant: Grant, amount: int) -> int:
        """Take `amount` back from this one grant (a refund of what it gave); what it no longer has
        (spent or expired) is debt, paid from the next grant. Returns that debt."""
        taken = min(grant.remaining, amount)
        if taken:
            Grant.objects.filter(pk=grant.pk).update(remaining=F("remaining") - taken)
            grant.remaining -= taken
        shortfall = amount - taken
        self.account.debt += shortfall
        return shortfall

    def repay(self, amount: int) -> int:
        """Pay debt (usage booked beyond the grants) from `amount` new credits; returns how much."""
        repaid = min(self.account.debt, amount)
        self.account.debt -= repaid
        return repaid

    def hold(self, amount: int) -> None:
        self.account.held += amount

    def release(self, amount: int) -> None:
        self.account.held -= amount

    def flush(self) -> None:
        """Write balance, debt and held in one UPDATE (none when nothing changed)."""
        numbers = self._numbers()
        if numbers == self._written:
            return
        balance, debt, held = numbers
        Account.objects.filter(pk=self.account.pk).update(balance=balance, debt=debt, held=held)
        self._written = numbers
