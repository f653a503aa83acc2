from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LedgerCheck(models.Model):
    """One run of the periodic ledger check: in the database, so /metrics on any process reads it."""

    checked_at = models.DateTimeField(_("checked at"), default=timezone.now, db_index=True)
    violations = models.PositiveIntegerField(_("violations"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))

    class Meta:
        verbose_name = _("ledger check")
        verbose_name_plural = _("ledger checks")
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M}: {self.violations}"
