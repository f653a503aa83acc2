from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from credits.models import Grant
from kernel.formats import credits_text


class BackofficeRights(models.Model):
    """No table: only carries the permissions of the credit actions done from admin or the API."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("back-office right")
        verbose_name_plural = _("back-office rights")
        permissions = [
            ("grant_credits", _("Can add credits to a user")),
            ("confirm_purchase", _("Can record and confirm purchases")),
            ("cancel_purchase", _("Can cancel purchases")),
            ("refund_purchase", _("Can refund purchases")),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class GrantRequest(models.Model):
    """A grant above SOLARIS_GRANT_APPROVAL_ABOVE asked for in admin or the admin API: it reaches
    the ledger only when another staff member with the grant right approves it (docs/admin.md)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("user"),
    )
    amount = models.BigIntegerField(_("amount"))
    source = models.CharField(
        _("source"),
        max_length=12,
        choices=[
            (Grant.Source.MANUAL, Grant.Source.MANUAL.label),
            (Grant.Source.PROMO, Grant.Source.PROMO.label),
        ],
    )
    reason = models.CharField(_("reason"), max_length=300)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.CharField(_("decision note"), max_length=300, blank=True)
    grant = models.OneToOneField(
        Grant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("grant"),
    )

    class Meta:
        verbose_name = _("grant request")
        verbose_name_plural = _("grant requests")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="grant_request_amount_positive"),
            # Two people, always: whoever asked for the credits never approves them.
            models.CheckConstraint(
                condition=~Q(status="approved", decided_by=F("requested_by")),
                name="grant_request_second_approver",
            ),
            models.CheckConstraint(
                condition=~Q(status="approved", grant__isnull=True),
                name="grant_request_approved_has_grant",
            ),
        ]

    def __str__(self) -> str:
        return gettext("#%(id)s %(user)s · %(credits)s credits") % {
            "id": self.pk,
            "user": self.user,
            "credits": credits_text(self.amount),
        }
