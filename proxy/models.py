from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CallRecord(models.Model):
    """One row per proxied request, whatever its outcome (docs/proxy.md)."""

    class EndReason(models.TextChoices):
        COMPLETED = "completed", _("completed")
        CLIENT_DISCONNECTED = "client_disconnected", _("client disconnected")
        UPSTREAM_ERROR = "upstream_error", _("upstream error")
        TIMEOUT = "timeout", _("timeout")
        REFUSED = "refused", _("refused")

    request_id = models.CharField(_("request id"), max_length=128, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("user"),
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    integration = models.ForeignKey(
        "accounts.Integration", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.CharField(_("model"), max_length=200, db_index=True)
    answered_model = models.CharField(
        _("answered by"),
        max_length=200,
        blank=True,
        help_text=_("The model that answered, when LiteLLM fell back to another one."),
    )
    stream = models.BooleanField(_("stream"), default=False)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    credits = models.BigIntegerField(_("credits"), default=0)
    held = models.BigIntegerField(_("credits held"), default=0)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"))
    end_reason = models.CharField(_("end reason"), max_length=24, choices=EndReason.choices)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    conversation_id = models.CharField(_("conversation id"), max_length=128, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="call_user_created")]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.end_reason}"
