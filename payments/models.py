"""Payments (docs/payments.md): one provider charge per purchase, its refunds, and the log of the
provider's webhook deliveries. Credits move only through credits/services.py; these rows say what
the money did and keep the provider's own words for finance.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from credits.models import Purchase
from kernel.formats import money_text


class Provider(models.TextChoices):
    MERCADOPAGO = "mercadopago", "Mercado Pago"


class Payment(models.Model):
    """The PIX charge of one purchase, and where its money stands in Solaris's terms."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("payment", "pending")
        PAID = "paid", pgettext_lazy("payment", "paid")
        EXPIRED = "expired", pgettext_lazy("payment", "expired")
        CANCELLED = "cancelled", pgettext_lazy("payment", "cancelled")
        REFUNDED = "refunded", pgettext_lazy("payment", "refunded")
        REVIEW = "review", pgettext_lazy("payment", "review")

    class ReviewReason(models.TextChoices):
        AMOUNT = "amount", _("approved for another amount or currency")
        FOREIGN = "foreign", _("another provider payment names this purchase")
        LATE = "late", _("paid after the purchase was closed")
        DISPUTED = "disputed", _("charged back or in mediation")
        PARTIAL_REFUND = "partial_refund", _("refunded in part at the provider")

    purchase = models.OneToOneField(
        Purchase, on_delete=models.PROTECT, related_name="payment", verbose_name=_("purchase")
    )
    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    provider_payment_id = models.CharField(
        _("provider payment id"),
        max_length=64,
        blank=True,
        help_text=_("Empty until the provider has answered the charge's creation."),
    )
    reference = models.CharField(
        _("reference"),
        max_length=64,
        unique=True,
        help_text=_(
            "Sent to the provider as the external reference; it comes back with the payment."
        ),
    )
    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=64,
        unique=True,
        help_text=_(
            "Sent with every attempt to create this charge, so the provider makes it once."
        ),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    provider_outcome = models.CharField(
        _("provider outcome"),
        max_length=10,
        blank=True,
        help_text=_("What the provider last said, in Solaris's terms (pending, approved, …)."),
    )
    provider_status = models.CharField(_("provider status"), max_length=32, blank=True)
    provider_status_detail = models.CharField(
        _("provider status detail"), max_length=64, blank=True
    )
    amount_cents = models.PositiveIntegerField(_("amount (BRL cents)"))
    refunded_cents = models.PositiveIntegerField(
        _("refunded (BRL cents)"), default=0, help_text=_("As the provider last reported it.")
    )
    qr_code = models.TextField(_("PIX copy-and-paste code"), blank=True)
    qr_code_base64 = models.TextField(_("QR code (PNG, base64)"), blank=True)
    ticket_url = models.URLField(_("payment page"), max_length=500, blank=True)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    review_reason = models.CharField(
        _("why in review"), max_length=20, choices=ReviewReason.choices, blank=True
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    synced_at = models.DateTimeField(
        _("last read from the provider"), null=True, blank=True, db_index=True
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payment_provider_id_unique",
            ),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return gettext("PIX of purchase #%(purchase)s · %(amount)s · %(status)s") % {
            "purchase": self.purchase_id,
            "amount": money_text(self.amount_cents),
            "status": self.get_status_display(),
        }


class PaymentRefund(models.Model):
    """Money sent back through the provider; its credits are booked once the provider confirms."""

    class Status(models.TextChoices):
        REQUESTED = "requested", pgettext_lazy("refund", "requested")  # not confirmed yet
        CONFIRMED = "confirmed", pgettext_lazy("refund", "confirmed")  # credits not booked yet
        BOOKED = "booked", pgettext_lazy("refund", "booked")
        FAILED = "failed", pgettext_lazy("refund", "failed")

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED
    )
    amount_cents = models.PositiveIntegerField(_("amount (BRL cents)"))
    full = models.BooleanField(
        _("full refund"), default=False, help_text=_("Off: pro rata to the credits not yet spent.")
    )
    credits_quoted = models.BigIntegerField(
        _("credits not yet spent when asked"),
        help_text=_("What the refunded money pays back, when the refund was asked for."),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    provider_status = models.CharField(_("provider status"), max_length=32, blank=True)
    failure = models.CharField(_("failure"), max_length=300, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    booked_at = models.DateTimeField(_("booked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment refund")
        verbose_name_plural = _("payment refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_amount_positive"),
            # One refund in flight per payment: the second would be quoted on stale credits.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(status__in=["requested", "confirmed"]),
                name="refund_one_open_per_payment",
            ),
        ]

    def __str__(self) -> str:
        return gettext("Refund of %(amount)s, purchase #%(purchase)s · %(status)s") % {
            "amount": money_text(self.amount_cents),
            "purchase": self.payment.purchase_id,
            "status": self.get_status_display(),
        }


class WebhookDelivery(models.Model):
    """One signed notification as received, redacted: what it named, never who paid."""

    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True)
    topic = models.CharField(_("topic"), max_length=64, blank=True)
    action = models.CharField(_("action"), max_length=64, blank=True)
    resource_id = models.CharField(_("resource id"), max_length=64, blank=True)
    body = models.JSONField(_("body (redacted)"), default=dict, blank=True)
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("payment"),
    )
    outcome = models.CharField(_("outcome"), max_length=200, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.topic} {self.resource_id} {self.received_at:%Y-%m-%d %H:%M:%S}"


class PaymentInstructions(models.Model):
    """How to pay a manual purchase request, as finance writes it (one row, edited in admin).

    Shown to the person on the order page, in the modals, in the widget and by the purchases API;
    blank texts fall back to a generic note naming the purchase e-mail.
    """

    SINGLETON_ID = 1

    text_pt_br = models.TextField(
        _("instructions (Portuguese)"),
        blank=True,
        help_text=_(
            "E.g. the PIX key or bank account, the amount to pay and where to send the receipt."
        ),
    )
    text_en = models.TextField(
        _("instructions (English)"),
        blank=True,
        help_text=_("For people who read Solaris in English; blank shows the Portuguese text."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment instructions")
        verbose_name_plural = _("payment instructions")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="payment_instructions_singleton")
        ]

    def __str__(self) -> str:
        return str(_("Payment instructions for manual purchases"))
