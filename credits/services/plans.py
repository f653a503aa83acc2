"""Plans and their monthly cycles: a subscription's allowance is granted at each cycle start and
expires with the cycle."""

import calendar
import logging
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits.models import Grant, ModelPrice, Plan, Subscription
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


MAX_ALLOWANCE = 10**12
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_DEFAULT_TOKENS = 1_000_000
MAX_ALLOWED_MODELS = 1_000
_MODEL_NAME_LENGTH = ModelPrice._meta.get_field("model").max_length or 200


def _text(value, max_length: int) -> bool:
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= max_length
        and "\x00" not in value
    )


def _whole(value, *, low: int, high: int, code: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            _("Give a whole number from %(low)s to %(high)s.") % {"low": low, "high": high},
            code=code,
        )


def _plan_check(plan: Plan) -> None:
    """Every rule a plan must keep, each error coded with the field at fault."""
    slug_length = Plan._meta.get_field("slug").max_length or 50
    if not isinstance(plan.slug, str) or not 0 < len(plan.slug) <= slug_length:
        raise ValidationError(
            _("The slug is required (at most %(count)s characters).") % {"count": slug_length},
            code="slug",
        )
    try:
        validate_slug(plan.slug)
    except ValidationError:
        raise ValidationError(
            _("The slug may hold only letters, digits, hyphens and underscores."), code="slug"
        ) from None
    if not _text(plan.name, 100):
        raise ValidationError(_("The name is required (at most 100 characters)."), code="name")
    _whole(plan.monthly_allowance, low=0, high=MAX_ALLOWANCE, code="monthly_allowance")
    _whole(
        plan.requests_per_minute, low=0, high=MAX_REQUESTS_PER_MINUTE, code="requests_per_minute"
    )
    _whole(plan.default_max_tokens, low=1, high=MAX_DEFAULT_TOKENS, code="default_max_tokens")
    names = plan.allowed_models
    if (
        not isinstance(names, list)
        or len(names) > MAX_ALLOWED_MODELS
        or not all(_text(name, _MODEL_NAME_LENGTH) for name in names)
    ):
        raise ValidationError(
            _("Allowed models must be a list of model names (at most %(count)s).")
            % {"count": MAX_ALLOWED_MODELS},
            code="allowed_models",
        )
    for flag in ("all_models", "is_default", "active"):
        if not isinstance(getattr(plan, flag), bool):
            raise ValidationError(_("Give true or false."), code=flag)
    if plan.is_default:
        other = Plan.objects.filter(is_default=True).exclude(pk=plan.pk).first()
        if other is not None:
            raise ValidationError(
                _("“%(plan)s” is already the default plan: unset it first.") % {"plan": other.name},
                code="is_default",
            )
        if not plan.active:
            raise ValidationError(_("The default plan must be active."), code="active")


def _plan_save(plan: Plan) -> None:
    plan.name = plan.name.strip()
    plan.allowed_models = sorted({name.strip() for name in plan.allowed_models})
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError:
        # Checked just before; only a concurrent save of the same slug or default gets here.
        raise ValidationError(
            _("Another plan with this slug, or another default plan, was just saved."),
            code="duplicate",
        ) from None


@transaction.atomic
def plan_create(
    *,
    slug: str,
    name: str,
    monthly_allowance: int = 0,
    all_models: bool = True,
    allowed_models: list[str] | None = None,
    requests_per_minute: int = 60,
    default_max_tokens: int = 4096,
    is_default: bool = False,
    active: bool = True,
) -> Plan:
    """A new plan; refused (code "duplicate") when the slug is taken."""
    plan = Plan(
        slug=slug,
        name=name,
        monthly_allowance=monthly_allowance,
        all_models=all_models,
        allowed_models=allowed_models if allowed_models is not None else [],
        requests_per_minute=requests_per_minute,
        default_max_tokens=default_max_tokens,
        is_default=is_default,
        active=active,
    )
    _plan_check(plan)
    if Plan.objects.filter(slug=slug).exists():
        raise ValidationError(
            _("A plan with the slug %(slug)s already exists.") % {"slug": slug}, code="duplicate"
        )
    _plan_save(plan)
    return plan


@transaction.atomic
def plan_update(
    *,
    plan: Plan,
    name: str | None = None,
    monthly_allowance: int | None = None,
    all_models: bool | None = None,
    allowed_models: list[str] | None = None,
    requests_per_minute: int | None = None,
    default_max_tokens: int | None = None,
    is_default: bool | None = None,
    active: bool | None = None,
) -> Plan:
    """Change the given fields of a plan (None leaves a field as it is). Subscribers keep their
    current cycle: a new allowance is granted from their next cycle on."""
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    changes = {
        "name": name,
        "monthly_allowance": monthly_allowance,
        "all_models": all_models,
        "allowed_models": allowed_models,
        "requests_per_minute": requests_per_minute,
        "default_max_tokens": default_max_tokens,
        "is_default": is_default,
        "active": active,
    }
    for field, value in changes.items():
        if value is not None:
            setattr(plan, field, value)
    _plan_check(plan)
    _plan_save(plan)
    return plan
