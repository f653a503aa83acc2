from django.contrib import admin

from credits.models import CreditPackage, Grant, LedgerEntry, ModelPrice, Plan, Purchase


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is never rewritten from admin, not even by a superuser."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "kind",
        "amount",
        "balance_after",
        "created_by",
        "reason",
    ]
    list_filter = ["kind", "flagged"]
    search_fields = ["account__user__email", "idempotency_key", "reason"]
    date_hierarchy = "created_at"


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ["account", "source", "amount", "remaining", "expires_at", "created_at"]
    list_filter = ["source"]
    search_fields = ["account__user__email"]


admin.site.register(Plan)
admin.site.register(CreditPackage)
admin.site.register(ModelPrice)
admin.site.register(Purchase, ReadOnlyAdmin)
