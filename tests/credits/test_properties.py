"""Random sequences of grant / adjust / buy / refund / hold / settle / release / reap / expire / renew,
with the invariants of docs/credits.md checked after every step, through the SQL fast path and
through the ORM. Every history starts with several live grants of different expiries, so each
settlement shows the draw order, checked against the rule: the grant that expires first, first."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from credits import pricing
from credits.models import Account, Grant, Hold, LedgerEntry, Subscription
from credits.selectors import account_summary, ledger_violations
from credits.services import (
    InsufficientCredits,
    credits_adjust,
    credits_grant,
    cycles_renew,
    grants_expire,
    hold_create,
    hold_release,
    hold_settle,
    holds_reap,
    purchase_confirm,
    purchase_refund,
    purchase_request,
    user_create,
)
from kernel.local_cache import lookups_changed
from tests.factories import ModelPriceFactory, PlanFactory

SERIAL = itertools.count()
NEVER = datetime.max.replace(tzinfo=UTC)


def drawn(remaining: dict[int, tuple[datetime | None, int]], amount: int) -> dict[int, int]:
    """The rule, on its own: `amount` taken from the grant that expires first first, grants without
    expiry last, ties by creation (id)."""
    left, after = amount, {}
    for pk, (_expires_at, grant_left) in sorted(
        remaining.items(), key=lambda item: (item[1][0] or NEVER, item[0])
    ):
        take = min(grant_left, left)
        after[pk] = grant_left - take
        left -= take
    return after


class CreditsMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown, so it starts from an empty ledger.
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        # The previous example's rows were rolled back without signals: a subscription or blocked
        # line cached from them must not decide this one (nor depend on how fast it ran).
        lookups_changed()
        number = next(SERIAL)
        self.user = user_create(email=f"prop{number}@example.com", plan_slug="prop")
        self.price = ModelPriceFactory(model="prop", input_weight="0.5", output_weight="2")
        self.serial = itertools.count()
        self.open: dict[str, int] = {}  # request id → max tokens admitted
        self.released: set[str] = set()
        self.purchases = []
        self.overran = False  # usage beyond a hold happened: only then may the balance go negative

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    def key(self, prefix: str) -> str:
        return f"{prefix}-{self.user.pk}-{next(self.serial)}"

    @initialize(
        grants=st.lists(
            st.tuples(st.integers(1, 2_000), st.none() | st.integers(1, 90)),
            min_size=2,
            max_size=4,
            unique_by=lambda grant: grant[1],
        )
    )
    def live_grants(self, grants):
        """Several live grants with different expiries (one may never expire): the draw-order case."""
        for amount, days in grants:
            self.grant(amount, days)

    @property
    def account(self) -> Account:
        return Account.objects.get(pk=self.user.pk)

    @rule(amount=st.integers(1, 3_000), days=st.none() | st.integers(1, 90))
    def grant(self, amount, days):
        expires = timezone.now() + timedelta(days=days) if days else None
        grant = credits_grant(
            user=self.user, amount=amount, idempotency_key=self.key("g"), expires_at=expires
        )
        assert grant.amount == amount

    @rule(amount=st.integers(1, 1_500))
    def adjust(self, amount):
        available = self.account.available
        try:
            entry = credits_adjust(
                user=self.user, amount=-amount, idempotency_key=self.key("a"), reason="fix"
            )
        except ValidationError as refused:
            assert refused.code == "available" and amount > available
        else:
            assert entry.amount == -amount <= -1 and amount <= available

    @rule(credits=st.integers(1, 3_000), validity=st.none() | st.integers(1, 30))
    def buy(self, credits, validity):
        purchase = purchase_request(
            user=self.user, idempotency_key=self.key("p"), credits=credits, price_cents=100
        )
        if validity:
            purchase.validity_days = validity
            purchase.save(update_fields=["validity_days"])
        purchase = purchase_confirm(purchase=purchase, confirmed_by=None)
        assert purchase_confirm(purchase=purchase, confirmed_by=None).status == "credited"
        self.purchases.append(purchase)

    @precondition(lambda self: self.purchases)
    @rule(data=st.data())
    def refund(self, data):
        purchase = data.draw(st.sampled_from(self.purchases))
        left = Grant.objects.get(purchase=purchase).remaining
        available = self.account.available
        try:
            purchase_refund(purchase=purchase, refunded_by=None)
        except ValidationError as refused:
            assert refused.code == "held" and left > available
        else:
            assert Grant.objects.get(purchase=purchase).remaining == 0

    @rule(prompt=st.integers(0, 800), max_tokens=st.integers(1, 1_500), n=st.integers(1, 2))
    def hold(self, prompt, max_tokens, n):
        request_id = self.key("r")
        available = self.account.available
        try:
            admission = hold_create(
                user=self.user,
                request_id=request_id,
                price=self.price,
                prompt_tokens=prompt,
                max_tokens=max_tokens,
                n=n,
            )
        except InsufficientCredits as refused:
            assert refused.available == max(available, 0)
            assert refused.needed > available
        else:
            assert 1 <= admission.max_tokens <= max_tokens
            assert admission.hold.amount <= available
            assert admission.clamped == (admission.max_tokens < max_tokens)
            self.open[request_id] = admission.max_tokens * n

    @precondition(lambda self: self.open or self.released)
    @rule(data=st.data(), overrun=st.integers(0, 300), twice=st.booleans())
    def settle(self, data, overrun, twice):
        request_id = data.draw(st.sampled_from(sorted(self.open) + sorted(self.released)))
        hold = Hold.objects.get(request_id=request_id)
        admitted = self.open.pop(request_id, None)
        self.released.discard(request_id)
        if admitted is None:  # reaped, yet the call did finish: charged and flagged
            completion = data.draw(st.integers(0, 50))
        else:
            completion = data.draw(st.integers(0, admitted)) + overrun
        before = {
            pk: (expires_at, remaining)
            for pk, expires_at, remaining in Grant.objects.filter(
                account_id=self.user.pk, remaining__gt=0
            ).values_list("pk", "expires_at", "remaining")
        }
        now = timezone.now()
        due = any(expires_at and expires_at <= now for expires_at, _left in before.values())
        entry = hold_settle(request_id=request_id, prompt_tokens=5, completion_tokens=completion)
        if entry is not None:
            if entry.flagged:
                self.overran = True
            assert entry.flagged == (admitted is None or -entry.amount > hold.amount)
            cost = pricing.cost(
                prompt_tokens=5,
                completion_tokens=completion,
                input_weight=hold.input_weight,
                output_weight=hold.output_weight,
            )
            assert -entry.amount == cost
            if not due and cost <= sum(left for _expires, left in before.values()):
                after = dict(Grant.objects.filter(pk__in=before).values_list("pk", "remaining"))
                assert after == drawn(before, cost)
        if twice:
            assert (
                hold_settle(
                    request_id=request_id, prompt_tokens=5, completion_tokens=completion + 1
                )
                == entry
            )

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data):
        request_id = data.draw(st.sampled_from(sorted(self.open)))
        hold_release(request_id=request_id)
        del self.open[request_id]
        assert Hold.objects.get(request_id=request_id).status == "released"

    @rule()
    def reap(self):
        holds_reap(max_age_seconds=0, now=timezone.now() + timedelta(seconds=1))
        self.released |= set(self.open)
        self.open.clear()

    @rule(data=st.data())
    def expire(self, data):
        grants = list(Grant.objects.filter(account_id=self.user.pk, remaining__gt=0))
        if grants:
            grant = data.draw(st.sampled_from(grants))
            Grant.objects.filter(pk=grant.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        grants_expire()

    @rule()
    def renew(self):
        end = timezone.now() - timedelta(seconds=1)
        Subscription.objects.filter(user=self.user).update(
            cycle_anchor=end, cycle_start=end - timedelta(days=30), cycle_end=end
        )
        lookups_changed()  # an update() sends no signal: the cached subscription would be stale
        assert cycles_renew() == 1

    @invariant()
    def ledger_is_consistent(self):
        assert ledger_violations() == []
        account = self.account
        total = LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))
        assert account.balance == (total["total"] or 0)
        open_held = Hold.objects.filter(account=account, status="open").aggregate(
            total=Sum("amount")
        )
        assert account.held == (open_held["total"] or 0)
        for amount, remaining in Grant.objects.filter(account=account).values_list(
            "amount", "remaining"
        ):
            assert 0 <= remaining <= amount
        entries = list(account.entries.order_by("id").values_list("amount", "balance_after"))
        running = 0
        for amount, balance_after in entries:
            running += amount
            assert balance_after == running

    @invariant()
    def never_overspent(self):
        account = self.account
        if not self.overran:
            assert account.available >= 0
            assert account.debt == 0
        assert account_summary(user_id=self.user.pk).available == account.available


@pytest.mark.slow
def test_random_sequences_keep_the_ledger_invariants(db, both_paths):
    PlanFactory(slug="prop", monthly_allowance=1_000)
    run_state_machine_as_test(
        CreditsMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
