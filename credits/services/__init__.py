"""Every change to credits, one module per concept; this package lists the public services.

- ledger: the account lock and its book (draw, book, flush), the only writer of balance, debt, held
- grants: grants, adjustments and expiry
- holds: admission and settlement of calls; holds_pg: the same on PostgreSQL in one round trip
- purchases, plans (plans, subscriptions and cycles), prices (model weights)
- members: a user created with their account on a plan, an integration's end user provisioned
- outbox: the notifications a credit change writes, in its own transaction

Callers import from here: the concept modules may move, these names stay.
"""

from credits.services.grants import credits_adjust, credits_grant, grants_expire
from credits.services.holds import (
    Admission,
    InsufficientCredits,
    Settlement,
    hold_create,
    hold_release,
    hold_settle,
    hold_settle_summarised,
    holds_reap,
)
from credits.services.ledger import account_lock
from credits.services.members import (
    identity_preview,
    identity_resolve,
    provisioning_plan,
    user_create,
)
from credits.services.outbox import (
    notification_credit_state,
    notification_credits_refused,
    notification_cycle_renewed,
    notification_purchase_confirmed,
    notification_purchase_requested,
)
from credits.services.plans import (
    add_months,
    cycle_boundary,
    cycles_renew,
    new_member_plan,
    plan_create,
    plan_default_set,
    plan_update,
    plan_validate,
    subscription_change_plan,
    subscription_start,
)
from credits.services.prices import IMPORTED_WEIGHT, model_price_set, model_prices_import
from credits.services.purchases import (
    purchase_cancel,
    purchase_confirm,
    purchase_refund,
    purchase_refund_credits,
    purchase_request,
)

__all__ = [
    "IMPORTED_WEIGHT",
    "Admission",
    "InsufficientCredits",
    "Settlement",
    "account_lock",
    "add_months",
    "credits_adjust",
    "credits_grant",
    "cycle_boundary",
    "cycles_renew",
    "grants_expire",
    "hold_create",
    "hold_release",
    "hold_settle",
    "hold_settle_summarised",
    "holds_reap",
    "identity_preview",
    "identity_resolve",
    "model_price_set",
    "model_prices_import",
    "new_member_plan",
    "notification_credit_state",
    "notification_credits_refused",
    "notification_cycle_renewed",
    "notification_purchase_confirmed",
    "notification_purchase_requested",
    "plan_create",
    "plan_default_set",
    "plan_update",
    "plan_validate",
    "provisioning_plan",
    "purchase_cancel",
    "purchase_confirm",
    "purchase_refund",
    "purchase_refund_credits",
    "purchase_request",
    "subscription_change_plan",
    "subscription_start",
    "user_create",
]
