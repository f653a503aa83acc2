"""Credits: plans, grants, holds and the append-only ledger (docs/credits.md).

Amounts are integer credits; only weights and prices are decimals. Every change to an account goes
through credits.services, which locks the account row first.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from kernel.formats import credits_text, signed_credits_text


class Plan(models.Model):
    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    monthly_allowance = models.BigIntegerField(
        _("monthly allowance"),
        default=0,
        help_text=_("Credits granted at the start of each cycle."),
    )
    all_models = models.BooleanField(
        _("all models"), default=True, help_text=_("Allow every priced model.")
    )
    allowed_models = models.JSONField(
        _("allowed models"),
        default=list,
        blank=True,
        help_text=_("Model names allowed when 'all models' is off."),
    )
    requests_per_minute = models.PositiveIntegerField(
        _("requests per minute"), default=60, help_text=_("0 means no limit.")
    )
    default_max_tokens = models.PositiveIntegerField(
        _("default max output tokens"),
        default=4096,
        help_text=_("Output limit assumed when a request does not set max_tokens."),
    )
    is_default = models.BooleanField(
        _("default plan"), default=False, help_text=_("New and auto-provisioned users get it.")
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_allowance__gte=0), name="plan_allowance_not_negative"
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="plan_single_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def allows(self, model_name: str) -> bool:
        return self.all_models or model_name in self.allowed_models


class Account(models.Model):
    """One per user: the cached balance (sum of ledger entries) and the credits held by open calls."""

    class State(models.TextChoices):
        NORMAL = "normal", _("normal")
        ALERT = "alert", _("alert")
        BLOCKED = "blocked", _("blocked")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="account",
        verbose_name=_("user"),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    held = models.BigIntegerField(_("held"), default=0)
    debt = models.BigIntegerField(
        _("debt"),
        default=0,
        help_text=_("Usage booked beyond the grants (an upstream ignored max_tokens)."),
    )
    notified_state = models.CharField(
        _("last notified state"), max_length=10, choices=State.choices, default=State.NORMAL
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("credit account")
        verbose_name_plural = _("credit accounts")
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_not_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="account_debt_not_negative"),
        ]

    def __str__(self) -> str:
        return str(self.user)

    @property
    def available(self) -> int:
        """credits.rules.available once every due expiry is booked, as the services do first."""
        return self.balance - self.held


class Subscription(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="subscription",
        verbose_name=_("user"),
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan")
    )
    cycle_start = models.DateTimeField(_("cycle start"))
    cycle_end = models.DateTimeField(_("cycle end"), db_index=True)
    # Cycles are counted from here, not from the previous end: a plan started on the 31st renews on
    # the last day of shorter months and on the 31st again after them.
    cycle_anchor = models.DateTimeField(
        _("cycle anchor"),
        help_text=_(
            "Each cycle starts on this day and time of the month (or the month's last day)."
        ),
    )

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.CheckConstraint(
                condition=Q(cycle_end__gt=F("cycle_start")), name="subscription_cycle_ordered"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.plan}"


class CreditPackage(models.Model):
    name = models.CharField(_("name"), max_length=100)
    credits = models.BigIntegerField(_("credits"))
    price_cents = models.PositiveIntegerField(_("price (BRL cents)"))
    validity_days = models.PositiveIntegerField(
        _("validity (days)"), null=True, blank=True, help_text=_("Empty: the credits never expire.")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("credit package")
        verbose_name_plural = _("credit packages")
        ordering = ["credits"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="package_credits_positive")
        ]

    def __str__(self) -> str:
        return self.name


class Purchase(models.Model):
    class Method(models.TextChoices):
        MANUAL = "manual", _("manual")
        ONLINE = "online", _("online")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        PAID = "paid", _("paid")
        CREDITED = "credited", _("credited")
        CANCELLED = "cancelled", _("cancelled")
        REFUNDED = "refunded", _("refunded")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="purchases",
        verbose_name=_("user"),
    )
    package = models.ForeignKey(
        CreditPackage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("package"),
    )
    credits = models.BigIntegerField(_("credits"))
    price_cents = models.PositiveIntegerField(_("price (BRL cents)"))
    validity_days = models.PositiveIntegerField(_("validity (days)"), null=True, blank=True)
    method = models.CharField(
        _("method"), max_length=10, choices=Method.choices, default=Method.MANUAL
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    payment_reference = models.CharField(_("payment reference"), max_length=200, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="purchase_credits_positive"),
            # A purchase paid online (PIX) is confirmed by its payment, never by a person as well.
            models.CheckConstraint(
                condition=Q(method="manual") | Q(confirmed_by__isnull=True),
                name="purchase_online_not_confirmed_by_hand",
            ),
        ]

    def __str__(self) -> str:
        return gettext("#%(id)s %(user)s · %(credits)s credits") % {
            "id": self.pk,
            "user": self.user,
            "credits": credits_text(self.credits),
        }

    def save(self, *args, **kwargs):
        if self.method == self.Method.ONLINE and self.confirmed_by_id is not None:
            raise ValidationError(
                _("This purchase is paid by PIX: its payment confirms it, not a person."),
                code="online",
            )
        super().save(*args, **kwargs)


class Grant(models.Model):
    class Source(models.TextChoices):
        PLAN_CYCLE = "plan_cycle", _("plan cycle")
        PURCHASE = "purchase", _("purchase")
        MANUAL = "manual", _("manual top-up")
        PROMO = "promo", _("promotion")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="grants", verbose_name=_("account")
    )
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    amount = models.BigIntegerField(_("amount"))
    remaining = models.BigIntegerField(_("remaining"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    purchase = models.OneToOneField(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grant",
        verbose_name=_("purchase"),
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        indexes = [models.Index(fields=["account", "expires_at"], name="grant_account_expiry")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="grant_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0), name="grant_remaining_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(remaining__lte=F("amount")), name="grant_remaining_within_amount"
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(source)s: %(remaining)s of %(amount)s credits left") % {
            "source": self.get_source_display(),
            "remaining": credits_text(self.remaining),
            "amount": credits_text(self.amount),
        }


class Hold(models.Model):
    """Credits reserved for one call's worst case until it is settled or released."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        SETTLED = "settled", _("settled")
        RELEASED = "released", _("released")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="holds", verbose_name=_("account")
    )
    request_id = models.CharField(_("request id"), max_length=128, unique=True)
    model = models.CharField(_("model"), max_length=200)
    amount = models.BigIntegerField(_("amount"))
    # The weights quoted at admission: the call is billed at the price it was admitted with.
    input_weight = models.DecimalField(_("input weight"), max_digits=14, decimal_places=6)
    output_weight = models.DecimalField(_("output weight"), max_digits=14, decimal_places=6)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        indexes = [models.Index(fields=["status", "created_at"], name="hold_status_created")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive")
        ]

    def __str__(self) -> str:
        return pgettext("hold", "%(request)s: %(amount)s credits held, %(status)s") % {
            "request": self.request_id,
            "amount": credits_text(self.amount),
            "status": self.get_status_display(),
        }


class LedgerQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError(_("Ledger entries are append-only: they cannot be updated."))

    def delete(self):
        raise ValidationError(_("Ledger entries are append-only: they cannot be deleted."))


class LedgerEntry(models.Model):
    """Append-only: never updated, never deleted (refused here and, on PostgreSQL, by a trigger)."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("grant")
        USAGE = "usage", _("usage")
        EXPIRY = "expiry", _("expiry")
        REFUND = "refund", _("refund")
        ADJUSTMENT = "adjustment", _("adjustment")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    amount = models.BigIntegerField(_("amount"))
    balance_after = models.BigIntegerField(_("balance after"))
    grant = models.ForeignKey(
        Grant, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    hold = models.OneToOneField(
        Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entry"
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    flagged = models.BooleanField(
        _("flagged"), default=False, help_text=_("Usage above its hold: the upstream overran.")
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "id"], name="ledger_account_id")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {signed_credits_text(self.amount)}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Ledger entries are append-only: they cannot be updated."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Ledger entries are append-only: they cannot be deleted."))


class ModelPrice(models.Model):
    model = models.CharField(_("model"), max_length=200, unique=True)
    input_weight = models.DecimalField(
        _("input weight"),
        max_digits=14,
        decimal_places=6,
        help_text=_("Credits per prompt token."),
    )
    output_weight = models.DecimalField(
        _("output weight"),
        max_digits=14,
        decimal_places=6,
        help_text=_("Credits per completion token."),
    )
    max_output_tokens = models.PositiveIntegerField(
        _("max output tokens"),
        null=True,
        blank=True,
        help_text=_("The model's own output limit; empty when unknown."),
    )
    active = models.BooleanField(_("active"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")
        ordering = ["model"]
        constraints = [
            models.CheckConstraint(
                condition=Q(input_weight__gt=0) & Q(output_weight__gt=0),
                name="model_price_weights_positive",
            )
        ]

    def __str__(self) -> str:
        return self.model
