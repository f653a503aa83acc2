from django.db import models
from django.utils.translation import gettext_lazy as _


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
