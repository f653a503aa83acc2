from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from payments.models import PaymentInstructions


@admin.register(PaymentInstructions)
class PaymentInstructionsAdmin(admin.ModelAdmin):
    """One row (made by the migration): the list opens it; it is never added or deleted here."""

    fields = ["text_pt_br", "text_en", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row, _created = PaymentInstructions.objects.get_or_create(
            pk=PaymentInstructions.SINGLETON_ID
        )
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", row.pk)
