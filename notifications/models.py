"""The notification outbox (docs/notifications.md).

A row is written in the same transaction as the credit change that caused it, so a notification
exists exactly when its cause committed; Celery delivers it afterwards, at least once.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    class Kind(models.TextChoices):
        CREDITS_ALERT = "credits_alert", _("credits alert")
        CREDITS_BLOCKED = "credits_blocked", _("credits exhausted")
        PURCHASE_REQUESTED = "purchase_requested", _("purchase requested")
        PURCHASE_CONFIRMED = "purchase_confirmed", _("purchase receipt")
        CYCLE_RENEWED = "cycle_renewed", _("cycle renewed")

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    recipient = models.EmailField(_("recipient"))
    language = models.CharField(_("language"), max_length=8)
    account = models.ForeignKey(
        "credits.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("account"),
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    # Not tried before this moment: the lease of a delivery in progress or the backoff after a failure.
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(sent_at__isnull=True),
                name="notification_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient}"

    @property
    def state(self) -> str:
        if self.sent_at is not None:
            return self.State.SENT
        if self.attempts >= settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS:
            return self.State.FAILED
        return self.State.PENDING
