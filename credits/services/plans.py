"""Plans and their monthly cycles: a subscription's allowance is granted at each cycle start and
expires with the cycle. A plan is created and changed here only (the admin, the admin API and the
commands call these), so its rules are checked in one place."""

import calendar
import logging
from datetime import datetime
from typing import Any

from django.apps import apps as global_apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from credits.models import Grant, Plan, Subscription
from credits.services.grants import expire_due, grant_create
from credits.services.ledger import AccountBook, account_lock
from credits.services.outbox import notification_cycle_renewed

logger = logging.getLogger(__name__)


# The plan a fresh database starts with: every priced model, no allowance (credits are granted).
DEFAULT_PLAN = {
    "slug": "padrao",
    "name": "Padrão",
    "monthly_allowance": 0,
    "all_models": True,
    "allowed_models": [],
    "requests_per_minute": 60,
    "default_max_tokens": 4096,
    "is_default": True,
    "active": True,
}
PLAN_FIELDS = tuple(DEFAULT_PLAN)
# Sane upper bounds (the columns hold more): what no real plan needs is a typing mistake.
MAX_ALLOWANCE = 10**12
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_DEFAULT_TOKENS = 1_000_000
MAX_ALLOWED_MODELS = 1_000


def plan_default_ensure(*, apps=global_apps) -> None:
    """Create the default plan when no plan is the default, so a fresh database can serve calls
    right after `migrate` (run by a migration and after every migrate; `apps` is the migration's)."""
    try:
        model = apps.get_model("credits", "Plan")
    except LookupError:  # a migrate that has not reached credits yet
        return
    if model.objects.filter(is_default=True).exists():
        return
    if model.objects.filter(slug=DEFAULT_PLAN["slug"]).exists():
        logger.warning("no default plan, and the slug %s is taken", DEFAULT_PLAN["slug"])
        return
    model.objects.create(**DEFAULT_PLAN)


def plan_default_ensure_after_migrate(sender, apps=global_apps, **kwargs) -> None:
    plan_default_ensure(apps=apps)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def plan_validate(*, plan: Plan) -> None:
    """Every rule of a plan, on an unsaved candidate: ValidationError with the broken fields."""
    errors: dict[str, list[ValidationError]] = {}

    def refuse(field: str, message: str, code: str = "invalid") -> None:
        errors.setdefault(field, []).append(ValidationError(message, code=code))

    for field in ("slug", "name"):
        if "\x00" in str(getattr(plan, field)):
            refuse(field, _("NUL characters are not allowed."))
    allowance = plan.monthly_allowance
    if not _whole(allowance, 0, MAX_ALLOWANCE):
        if isinstance(allowance, int) and not isinstance(allowance, bool) and allowance < 0:
            refuse("monthly_allowance", _("The allowance cannot be negative."))
        else:
            refuse(
                "monthly_allowance",
                _("The allowance is a whole number of credits, at most %(max)s.")
                % {"max": MAX_ALLOWANCE},
            )
    names = plan.allowed_models
    if (
        not isinstance(names, list)
        or len(names) > MAX_ALLOWED_MODELS
        or not all(
            isinstance(name, str) and name.strip() and len(name) <= 200 and "\x00" not in name
            for name in names
        )
    ):
        refuse("allowed_models", _('Write a list of model names, like ["gpt-4o"].'))
    for field in ("all_models", "is_default", "active"):
        if not isinstance(getattr(plan, field), bool):
            refuse(field, _("Give true or false."))
    if plan.all_models is False and isinstance(names, list) and not names:
        refuse("allowed_models", _("Name at least one model, or allow every model."))
    if not _whole(plan.requests_per_minute, 0, MAX_REQUESTS_PER_MINUTE):
        refuse(
            "requests_per_minute",
            _("The per-minute limit is 0 (no limit) to %(max)s.")
            % {"max": MAX_REQUESTS_PER_MINUTE},
        )
    if not _whole(plan.default_max_tokens, 1, MAX_DEFAULT_TOKENS):
        refuse(
            "default_max_tokens",
            _("The default output limit is 1 to %(max)s tokens.") % {"max": MAX_DEFAULT_TOKENS},
        )
    if plan.is_default is True:
        if plan.active is False:
            refuse("active", _("The default plan must be active."))
        other = Plan.objects.filter(is_default=True).exclude(pk=plan.pk).first()
        if other is not None:
            refuse(
                "is_default",
                _("“%(plan)s” is already the default plan: unset it first.") % {"plan": other.name},
            )
    if not errors:
        try:
            # Slug format and uniqueness (code "unique"), lengths; the default flag is checked above.
            plan.full_clean(validate_constraints=False)
        except ValidationError as invalid:
            for field, problems in invalid.error_dict.items():
                errors.setdefault(field, []).extend(problems)
    if errors:
        raise ValidationError(errors)


def _plan_save(plan: Plan) -> None:
    """Save a validated plan, its name trimmed and its model names each once, sorted."""
    plan.name = plan.name.strip()
    plan.allowed_models = sorted({name.strip() for name in plan.allowed_models})
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError:
        # Validated just before: only a concurrent save of the same slug or default gets here.
        raise ValidationError(
            {
                "slug": ValidationError(
                    _("Another plan with this slug, or another default plan, was just saved."),
                    code="unique",
                )
            }
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
    """A new plan, once its rules hold (plan_validate). It makes no one's subscription change."""
    plan = Plan(
        slug=slug,
        name=name,
        monthly_allowance=monthly_allowance,
        all_models=all_models,
        allowed_models=[] if allowed_models is None else allowed_models,
        requests_per_minute=requests_per_minute,
        default_max_tokens=default_max_tokens,
        is_default=is_default,
        active=active,
    )
    plan_validate(plan=plan)
    _plan_save(plan)
    logger.info("plan created", extra={"plan": plan.slug})
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, **changes: Any) -> Plan:
    """Change some of a plan's fields (PLAN_FIELDS), once its rules hold. An allowance change
    counts from each subscription's next cycle; models and limits from the next call."""
    unknown = set(changes) - set(PLAN_FIELDS)
    if unknown:
        raise ValidationError(
            {field: [_("This field cannot be changed.")] for field in sorted(unknown)}
        )
    candidate = Plan.objects.select_for_update().get(pk=plan.pk)
    for field, value in changes.items():
        setattr(candidate, field, value)
    plan_validate(plan=candidate)
    _plan_save(candidate)
    logger.info("plan updated", extra={"plan": candidate.slug, "fields": sorted(changes)})
    return candidate


@transaction.atomic
def plan_default_set(*, plan: Plan) -> Plan:
    """Make this (active) plan the default: new users, and users without a subscription, are on
    it from now on; the former default plan stays as it is for its subscribers."""
    if not plan.active:
        raise ValidationError({"active": [_("The default plan must be active.")]})
    Plan.objects.filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
    return plan_update(plan=plan, is_default=True)


def add_months(moment: datetime, months: int = 1) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def cycle_boundary(*, anchor: datetime, months: int) -> datetime:
    """Where the cycle `months` after the anchor's starts: the anchor's day and time of that month,
    or the month's last day when it is shorter, in the server's time zone (as people read dates)."""
    return add_months(timezone.localtime(anchor), months)


def cycle_bounds(*, anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The monthly cycle [start, end) of a subscription anchored at `anchor` that holds `moment`."""
    first, last = timezone.localtime(anchor), timezone.localtime(moment)
    months = (last.year - first.year) * 12 + last.month - first.month
    while cycle_boundary(anchor=anchor, months=months) > moment:
        months -= 1
    while cycle_boundary(anchor=anchor, months=months + 1) <= moment:
        months += 1
    return (
        cycle_boundary(anchor=anchor, months=months),
        cycle_boundary(anchor=anchor, months=months + 1),
    )


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
        user=user,
        plan=plan,
        cycle_anchor=now,
        cycle_start=now,
        cycle_end=cycle_boundary(anchor=now, months=1),
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
    subscription.cycle_anchor = subscription.cycle_start = now
    subscription.cycle_end = cycle_boundary(anchor=now, months=1)
    subscription.save()
    _grant_cycle(book, subscription, now, created_by=changed_by)
    book.flush()
    logger.info(
        "plan changed",
        extra={"user_id": user.pk, "plan": plan.slug, "by": getattr(changed_by, "pk", None)},
    )
    return subscription


def cycles_renew(*, now: datetime | None = None) -> int:
    """Start the cycle that holds `now` for every subscription whose cycle ended: the anchor's day
    of this month, or its last day (Jan 31 → Feb 28 → Mar 31). Safe to run concurrently: each
    subscription is re-read under its account's lock, and the cycle grant's key is unique."""
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
            # Counted from the anchor (missed cycles are skipped, not back-paid).
            start, end = cycle_bounds(anchor=subscription.cycle_anchor, moment=now)
            subscription.cycle_start = max(start, subscription.cycle_end)
            subscription.cycle_end = end
            subscription.save(update_fields=["cycle_start", "cycle_end"])
            _grant_cycle(book, subscription, now)
            book.flush()
            notification_cycle_renewed(subscription=subscription)
            renewed += 1
    return renewed
