"""What an account may spend and the state it is in, each rule defined once (docs/credits.md).

Functions of numbers, like credits.pricing for the cost of a call. credits.selectors applies them to
an account's rows for every page, header, API and e-mail; backoffice.selectors builds its SQL column
from the same `available` (given SQL's least and greatest) and is tested against the rest; the SQL
fast path only runs where they reduce to `balance − held` (docs/credits.md, "The rule book").
"""

from collections.abc import Callable, Iterable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings

from credits import pricing
from credits.models import Account

HUNDRED = Decimal(100)


def expiry_reserve(
    *,
    held: Any,
    debt: Any,
    active_left: Any,
    expired_left: Any,
    least: Callable = min,
    greatest: Callable = max,
) -> Any:
    """How much of the expired grants' remainder must wait for open holds before it expires:
    the part of what is held that the active grants (net of debt) cannot cover."""
    return least(expired_left, greatest(0, held + debt - active_left))


def available(
    *,
    left: Any,
    expired_left: Any,
    held: Any,
    debt: Any,
    least: Callable = min,
    greatest: Callable = max,
) -> Any:
    """The one "spendable now" number: what is left on the active grants, plus what expired grants
    keep for open holds, minus debt, minus what open holds reserve.

    Once every due expiry is booked the expired grants keep exactly that reserve, so this equals
    `Account.available` (balance − held, as balance = grant remainders − debt); before, it already
    counts the expiry. With `least`/`greatest` of SQL it builds the same number as a column.
    """
    reserve = expiry_reserve(
        held=held,
        debt=debt,
        active_left=left,
        expired_left=expired_left,
        least=least,
        greatest=greatest,
    )
    return left + reserve - debt - held


def used_percent(*, granted: int, used: int, available: int) -> Decimal:
    """Spent from the active grants ÷ their original total, rounded down to hundredths."""
    if granted <= 0:
        return HUNDRED if available <= 0 else Decimal(0)
    return (Decimal(used) * HUNDRED / Decimal(granted)).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN
    )


def blocked_line(*, weights: Iterable[tuple[Decimal, Decimal]]) -> int:
    """The credits a short call costs on the cheapest of these models (input, output weights): a
    reference prompt (SOLARIS_BLOCKED_PROMPT_TOKENS) and the smallest answer admission lets through
    (SOLARIS_MIN_ANSWER_TOKENS). At least 1, and 1 when no model is allowed."""
    costs = [
        pricing.cost(
            prompt_tokens=settings.SOLARIS_BLOCKED_PROMPT_TOKENS,
            completion_tokens=settings.SOLARIS_MIN_ANSWER_TOKENS,
            input_weight=input_weight,
            output_weight=output_weight,
        )
        for input_weight, output_weight in weights
    ]
    return max(1, min(costs, default=1))


def blocked(*, available: int, blocked_line: int) -> bool:
    """What is available cannot pay a short call on the cheapest model the plan allows."""
    return available < blocked_line


def credit_state(*, available: int, used_percent: Decimal, blocked_line: int) -> str:
    """`blocked` (see `blocked`), else `alert` from SOLARIS_ALERT_THRESHOLD % used, else `normal`."""
    if blocked(available=available, blocked_line=blocked_line):
        return Account.State.BLOCKED
    if used_percent >= settings.SOLARIS_ALERT_THRESHOLD:
        return Account.State.ALERT
    return Account.State.NORMAL
