from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications import services
from notifications.models import Notification


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Notification.State.choices

    def queryset(self, request, queryset):
        exhausted = Q(attempts__gte=settings.SOLARIS_NOTIFICATION_MAX_ATTEMPTS)
        if self.value() == Notification.State.SENT:
            return queryset.filter(sent_at__isnull=False)
        if self.value() == Notification.State.FAILED:
            return queryset.filter(exhausted, sent_at__isnull=True)
        if self.value() == Notification.State.PENDING:
            return queryset.filter(~exhausted, sent_at__isnull=True)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The outbox is written by services only; admin reads it and can send a row again."""

    list_display = [
        "created_at",
        "kind",
        "recipient",
        "state_display",
        "attempts",
        "short_error",
        "sent_at",
    ]
    list_filter = ["kind", StateFilter]
    search_fields = ["recipient", "dedupe_key"]
    date_hierarchy = "created_at"
    actions = ["send_again"]
    readonly_fields = [
        "kind",
        "recipient",
        "language",
        "account",
        "context",
        "dedupe_key",
        "created_at",
        "attempts",
        "last_error",
        "next_attempt_at",
        "sent_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"))
    def state_display(self, obj: Notification) -> str:
        return str(Notification.State(obj.state).label)

    @admin.display(description=_("last error"))
    def short_error(self, obj: Notification) -> str:
        return obj.last_error[:120]

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("notifications.change_notification")

    @admin.action(description=_("Send again"), permissions=["resend"])
    def send_again(self, request, queryset):
        count = services.notifications_resend(
            notification_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d notification queued to be sent again.",
                "%(count)d notifications queued to be sent again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
