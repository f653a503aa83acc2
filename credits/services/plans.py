"""Plans and their monthly cycles: a subscription's allowance is granted at each cycle start and
expires with the cycle."""

import calendar
import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits.models import Grant, Plan, Subscription
from credits.services.grants import expire_due, grant_create
from credits.services.ledger import AccountBook, account_lock
from credits.services.outbox import notification_cycle_renewed

logger = logging.getLogger(__name__)


def add_months(moment: datetime, months: int = 1) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def new_member_plan(*, plan_slug: str | None) -> Plan | None:
    """The plan a new user is put on: the one named (ValidationError when none has that slug),
    else the default plan."""
    if plan_slug:
        try:
            return Plan.objects.get(slug=plan_slug)
        except Plan.DoesNotExist:
            raise ValidationError(
                _("Unknown plan: %(slug)s") % {"slug": plan_slug}, code="plan"
            ) from None
    return Plan.objects.filter(is_default=True, active=True).first()


def _grant_cycle(
    book: AccountBook, subscription: Subscription, now: datetime, created_by: User | None = None
) -> None:
    if subscription.plan.monthly_allowance <= 0:
        return
    grant_create(
        book,
        amount=subscription.plan.monthly_allowance,
        source=Grant.Source.PLAN_CYCLE,
        idempotency_key=f"plan:{book.account.pk}:{subscription.cycle_start.isoformat()}",
        expires_at=subscription.cycle_end,
        reason=subscription.plan.name,
        created_by=created_by,
        now=now,
    )


@transaction.atomic
def subscription_start(*, user: User, plan_slug: str | None = None) -> Subscription | None:
    """Open the user's account and put them on a plan (the default one unless named)."""
    book = AccountBook(account_lock(user_id=user.pk))
    existing = Subscription.objects.filter(user=user).first()
    if existing is not None:
        return existing
    plan = new_member_plan(plan_slug=plan_slug)
    if plan is None:
        return None
    now = timezone.now()
    subscription = Subscription.objects.create(
        user=user, plan=plan, cycle_start=now, cycle_end=add_months(now)
    )
    _grant_cycle(book, subscription, now)
    book.flush()
    return subscription


@transaction.atomic
def subscription_change_plan(
    *, user: User, plan: Plan, changed_by: User | None = None
) -> Subscription:
    """Move a user to another plan now: the old plan's credits expire, a new cycle starts."""
    book = AccountBook(account_lock(user_id=user.pk))
    now = timezone.now()
    subscription = Subscription.objects.filter(user=user).first()
    if subscription is None:
        subscription = Subscription(user=user)
    else:
        book.account.grants.filter(source=Grant.Source.PLAN_CYCLE, remaining__gt=0).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        ).update(expires_at=now)
        expire_due(book, now)
    subscription.plan = plan
    subscription.cycle_start = now
    subscription.cycle_end = add_months(now)
    subscription.save()
    _grant_cycle(book, subscription, now, created_by=changed_by)
    book.flush()
    logger.info(
        "plan changed",
        extra={"user_id": user.pk, "plan": plan.slug, "by": getattr(changed_by, "pk", None)},
    )
    return subscription


def cycles_renew(*, now: datetime | None = None) -> int:
    """Start the next cycle of every subscription whose cycle ended. Safe to run concurrently:
    each subscription is re-read under its account's lock, and the cycle grant's key is unique."""
    now = now or timezone.now()
    user_ids = list(
        Subscription.objects.filter(cycle_end__lte=now)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    renewed = 0
    for user_id in user_ids:
        with transaction.atomic():
            book = AccountBook(account_lock(user_id=user_id))
            subscription = Subscription.objects.select_related("plan").get(user_id=user_id)
            if subscription.cycle_end > now:
                continue  # another worker renewed it first
            # The old cycle's allowance ends with the cycle, whatever its grant says.
            book.account.grants.filter(source=Grant.Source.PLAN_CYCLE, remaining__gt=0).filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=subscription.cycle_end)
            ).update(expires_at=subscription.cycle_end)
            expire_due(book, now)
            while subscription.cycle_end <= now:
                subscription.cycle_start = subscription.cycle_end
                subscription.cycle_end = add_months(subscription.cycle_start)
            subscription.save(update_fields=["cycle_start", "cycle_end"])
            _grant_cycle(book, subscription, now)
            book.flush()
            notification_cycle_renewed(subscription=subscription)
            renewed += 1
    return renewed
