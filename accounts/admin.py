from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiKey, Integration, LoginLink, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "language", "is_suspended", "is_staff"]
    list_filter = ["is_suspended", "is_staff", "is_active", "language"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["name", "language", "librechat_id"]}),
        (
            _("Access"),
            {"fields": ["is_active", "is_suspended", "is_staff", "is_superuser", "groups"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "name", "user__email"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False  # keys are created by the service, which shows the plaintext once


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "auto_provision", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False


@admin.register(LoginLink)
class LoginLinkAdmin(admin.ModelAdmin):
    """Read-only audit of sign-in links; the token itself is never stored."""

    list_display = ["user", "channel", "created_at", "expires_at", "used_at"]
    list_filter = ["channel"]
    search_fields = ["user__email"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
