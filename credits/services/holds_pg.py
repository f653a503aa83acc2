"""Holds on PostgreSQL: the common admission, settlement and release in one round trip.

The SQL functions (credits/sql/holds.v1.pg.sql) lock the account first and decline, writing
nothing, whenever the call is not the common case; the ORM services in credits.services.holds then
handle it. The rules they share with Python (cost, grant due, grant totals, draw order) are
credits/sql/rules.v1.pg.sql, held to their Python twins by tests. These callers turn the
functions' RETURNING values into model instances.
"""

from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model

from credits import pricing
from credits.models import Account, Hold, LedgerEntry, ModelPrice, Subscription
from credits.selectors import (
    STATE_RANK,
    AccountSummary,
    GrantTotals,
    grant_totals,
    line_for,
    position_from,
    subscription_of,
    summary_from,
)
from credits.services.ledger import account_lock
from credits.services.outbox import notification_credit_state

_M = TypeVar("_M", bound=Model)


def fast_path() -> bool:
    return settings.SOLARIS_SQL_FAST_PATH and connection.vendor == "postgresql"


def _loaded(instance: _M) -> _M:
    """A model instance built from RETURNING values: a saved row, as if read from the database."""
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def hold_open_fast(
    *,
    user_id: int,
    request_id: str,
    price: ModelPrice,
    prompt_tokens: int,
    max_tokens: int,
    n: int,
    now: datetime,
    summary_of: Subscription | None,
    with_summary: bool,
) -> tuple[Hold, AccountSummary | None] | None:
    """The hold (and the summary after it, when asked) when the account exists, the request id is
    new, no grant is due to expire and the whole worst case fits; None, with nothing written,
    otherwise."""
    worst = pricing.cost(
        prompt_tokens=prompt_tokens,
        completion_tokens=max_tokens * n,
        input_weight=price.input_weight,
        output_weight=price.output_weight,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM solaris_hold_open(%s::bigint, %s::text, %s::text, %s::bigint, "
            "%s::numeric, %s::numeric, %s::timestamptz, %s::boolean)",
            [
                user_id,
                request_id,
                price.model,
                worst,
                Decimal(price.input_weight),
                Decimal(price.output_weight),
                now,
                with_summary,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    hold_id, balance, held, debt, notified, granted, left, expired_left = row
    hold = Hold(
        id=hold_id,
        account_id=user_id,
        request_id=request_id,
        model=price.model,
        amount=worst,
        input_weight=price.input_weight,
        output_weight=price.output_weight,
        status=Hold.Status.OPEN,
        created_at=now,
    )
    summary = None
    if with_summary:
        account = Account(
            user_id=user_id, balance=balance, held=held, debt=debt, notified_state=notified
        )
        summary = summary_from(
            account=_loaded(account),
            totals=GrantTotals(granted=granted, left=left, expired_left=expired_left),
            subscription=summary_of or subscription_of(user_id=user_id),
        )
    return _loaded(hold), summary


def hold_settle_fast(
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime,
    summary_of: Subscription | None,
) -> tuple[LedgerEntry | None, AccountSummary] | None:
    """The usage entry and the summary after the settlement of an open hold when no grant is due
    to expire, the cost is within the hold and the grants cover it (no flag, no debt); None, with
    nothing written, otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM solaris_hold_settle(%s::text, %s::bigint, %s::bigint, %s::timestamptz)",
            [request_id, prompt_tokens, completion_tokens, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    (
        hold_id,
        account_id,
        model,
        amount,
        input_weight,
        output_weight,
        created_at,
        charge,
        entry_id,
        balance,
        held,
        debt,
        notified,
        granted,
        left,
        expired_left,
    ) = row
    hold = _loaded(
        Hold(
            id=hold_id,
            account_id=account_id,
            request_id=request_id,
            model=model,
            amount=amount,
            input_weight=input_weight,
            output_weight=output_weight,
            status=Hold.Status.SETTLED,
            created_at=created_at,
            closed_at=now,
        )
    )
    entry = None
    if entry_id is not None:
        entry = LedgerEntry(
            id=entry_id,
            account_id=account_id,
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            balance_after=balance,
            idempotency_key=f"usage:{request_id}",
            hold=hold,
            flagged=False,
            reason=model,
            created_at=now,
        )
        entry = _loaded(entry)
    account = _loaded(
        Account(user_id=account_id, balance=balance, held=held, debt=debt, notified_state=notified)
    )
    totals = GrantTotals(granted=granted, left=left, expired_left=expired_left)
    subscription = summary_of or subscription_of(user_id=account_id)
    line = line_for(subscription=subscription)
    state = position_from(held=held, debt=debt, totals=totals, line=line).state
    if STATE_RANK[state] > STATE_RANK[notified]:
        _credit_state_catch_up(account_id=account_id, line=line, now=now)
    return entry, summary_from(account=account, totals=totals, subscription=subscription)


@transaction.atomic
def _credit_state_catch_up(*, account_id: int, line: int, now: datetime) -> None:
    """The notification a fast settlement crossed into, decided again under the account lock, so
    racing settlements notify once (rare: only when the state rises past the last notified)."""
    account = account_lock(user_id=account_id)
    totals = grant_totals(account_id=account_id, now=now)
    position = position_from(held=account.held, debt=account.debt, totals=totals, line=line)
    notification_credit_state(account=account, position=position)


def hold_release_fast(*, request_id: str, now: datetime) -> bool:
    """Whether the release is done: the hold was open with no grant due (or was already closed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT solaris_hold_release(%s::text, %s::timestamptz)", [request_id, now])
        return bool(cursor.fetchone()[0])
