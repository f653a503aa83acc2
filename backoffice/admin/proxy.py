from django.contrib import admin
from django.utils.translation import gettext_lazy

from backoffice.admin_tools import CsvExportAdmin, ReadOnlyAdmin, number_column
from proxy.models import CallRecord


@admin.register(CallRecord)
class CallRecordAdmin(CsvExportAdmin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "user",
        "model",
        "answered_model",
        "prompt_tokens_display",
        "completion_tokens_display",
        "credits_display",
        "status_code",
        "end_reason",
        "stream",
        "duration_ms",
    ]
    list_filter = ["end_reason", "stream", "status_code", "model"]
    search_fields = ["request_id", "user__email", "model", "conversation_id"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    fields = [
        "request_id",
        "created_at",
        "user",
        "model",
        "answered_model",
        "stream",
        "prompt_tokens_display",
        "completion_tokens_display",
        "credits_display",
        "held_display",
        "status_code",
        "end_reason",
        "error_code",
        "duration_ms",
        "conversation_id",
        "api_key",
        "integration",
    ]
    prompt_tokens_display = number_column("prompt_tokens", gettext_lazy("prompt tokens"))
    completion_tokens_display = number_column(
        "completion_tokens", gettext_lazy("completion tokens")
    )
    credits_display = number_column("credits", gettext_lazy("credits"))
    held_display = number_column("held", gettext_lazy("credits held"))
    csv_columns = [
        (gettext_lazy("request id"), lambda call: call.request_id),
        (gettext_lazy("created at"), lambda call: call.created_at.isoformat()),
        (gettext_lazy("user"), lambda call: call.user.email if call.user else ""),
        (gettext_lazy("model"), lambda call: call.model),
        (gettext_lazy("answered by"), lambda call: call.answered_model),
        (gettext_lazy("prompt tokens"), lambda call: call.prompt_tokens),
        (gettext_lazy("completion tokens"), lambda call: call.completion_tokens),
        (gettext_lazy("credits"), lambda call: call.credits),
        (gettext_lazy("HTTP status"), lambda call: call.status_code),
        (gettext_lazy("end reason"), lambda call: call.end_reason),
        (gettext_lazy("stream"), lambda call: call.stream),
        (gettext_lazy("duration (ms)"), lambda call: call.duration_ms),
        (gettext_lazy("conversation id"), lambda call: call.conversation_id),
    ]
