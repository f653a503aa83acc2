from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from backoffice.admin_tools import (
    CsvExportAdmin,
    ReadOnlyAdmin,
    credits_text,
    form_page,
    money,
    require,
)
from backoffice.forms import (
    ConfirmPurchaseForm,
    CreditPackageAdminForm,
    ModelPriceAdminForm,
    PlanAdminForm,
    RefundPurchaseForm,
)
from backoffice.services import staff_purchase_confirm, staff_purchase_refund
from credits.models import (
    Account,
    CreditPackage,
    Grant,
    Hold,
    LedgerEntry,
    ModelPrice,
    Plan,
    Purchase,
    Subscription,
)
from credits.services import model_price_set, model_prices_import, purchase_cancel
from proxy import upstream

CONFIRM_RIGHT = "backoffice.confirm_purchase"
CANCEL_RIGHT = "backoffice.cancel_purchase"
REFUND_RIGHT = "backoffice.refund_purchase"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(CsvExportAdmin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "kind",
        "amount",
        "balance_after",
        "created_by",
        "reason",
        "flagged",
    ]
    list_filter = [
        "kind",
        "flagged",
        "grant__source",
        ("created_by", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["account__user__email", "idempotency_key", "reason"]
    list_select_related = ["account__user", "created_by"]
    date_hierarchy = "created_at"
    csv_columns = [
        (gettext_lazy("id"), lambda entry: entry.pk),
        (gettext_lazy("created at"), lambda entry: entry.created_at.isoformat()),
        (gettext_lazy("user"), lambda entry: entry.account.user.email),
        (gettext_lazy("kind"), lambda entry: entry.kind),
        (gettext_lazy("amount"), lambda entry: entry.amount),
        (gettext_lazy("balance after"), lambda entry: entry.balance_after),
        (
            gettext_lazy("created by"),
            lambda entry: entry.created_by.email if entry.created_by else "",
        ),
        (gettext_lazy("reason"), lambda entry: entry.reason),
        (gettext_lazy("flagged"), lambda entry: entry.flagged),
    ]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "source",
        "amount",
        "remaining",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_filter = ["source"]
    search_fields = ["account__user__email", "reason"]
    list_select_related = ["account__user", "created_by"]
    date_hierarchy = "created_at"


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "account", "model", "amount", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["request_id", "account__user__email"]
    list_select_related = ["account__user"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "held", "debt", "notified_state", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["user", "plan", "cycle_start", "cycle_end"]
    list_filter = ["plan"]
    search_fields = ["user__email"]
    list_select_related = ["user", "plan"]


@admin.register(Purchase)
class PurchaseAdmin(CsvExportAdmin, ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "credits_display",
        "price",
        "status_badge",
        "method",
        "payment_reference",
        "created_at",
        "paid_at",
        "confirmed_by",
    ]
    list_filter = ["status", "method", "package"]
    search_fields = ["user__email", "payment_reference", "idempotency_key"]
    list_select_related = ["user", "confirmed_by", "package"]
    date_hierarchy = "created_at"
    actions = ["confirm_selected", "cancel_selected"]
    change_form_template = "backoffice/purchase_change_form.html"
    csv_columns = [
        (gettext_lazy("id"), lambda purchase: purchase.pk),
        (gettext_lazy("user"), lambda purchase: purchase.user.email),
        (gettext_lazy("credits"), lambda purchase: purchase.credits),
        (gettext_lazy("price (BRL cents)"), lambda purchase: purchase.price_cents),
        (gettext_lazy("status"), lambda purchase: purchase.status),
        (gettext_lazy("payment reference"), lambda purchase: purchase.payment_reference),
        (gettext_lazy("created at"), lambda purchase: purchase.created_at.isoformat()),
        (
            gettext_lazy("paid at"),
            lambda purchase: purchase.paid_at.isoformat() if purchase.paid_at else "",
        ),
    ]

    @admin.display(description=gettext_lazy("credits"), ordering="credits")
    def credits_display(self, purchase):
        return credits_text(purchase.credits)

    @admin.display(description=gettext_lazy("price"), ordering="price_cents")
    def price(self, purchase):
        return money(purchase.price_cents)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, purchase):
        colours = {"requested": "#b8860b", "paid": "#0d6efd", "credited": "#1e7e34"}
        return format_html(
            '<span class="purchase-status-{}" style="color:{};font-weight:bold">{}</span>',
            purchase.status,
            colours.get(purchase.status, "#555"),
            purchase.get_status_display(),
        )

    def has_confirm_permission(self, request):
        return request.user.has_perm(CONFIRM_RIGHT)

    def has_cancel_permission(self, request):
        return request.user.has_perm(CANCEL_RIGHT)

    def _each(self, request, queryset, service, message, **kwargs):
        done, failed = 0, []
        for purchase in queryset.order_by("pk"):
            try:
                result = service(purchase=purchase, **kwargs)
            except ValidationError as error:
                failed.append(f"#{purchase.pk}: {'; '.join(error.messages)}")
                continue
            self.log_change(request, result, message)
            done += 1
        if done:
            self.message_user(request, _("%(count)d purchase(s) done.") % {"count": done})
        if failed:
            self.message_user(request, " ".join(failed), messages.ERROR)

    @admin.action(
        description=gettext_lazy("Confirm payment of the selected purchases"),
        permissions=["confirm"],
    )
    def confirm_selected(self, request, queryset):
        self._each(
            request, queryset, staff_purchase_confirm, _("Payment confirmed."), actor=request.user
        )

    @admin.action(description=gettext_lazy("Cancel the selected purchases"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        self._each(request, queryset, purchase_cancel, _("Cancelled."), cancelled_by=request.user)

    def get_urls(self):
        def view(function, name):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(function),
                name=f"credits_purchase_{name}",
            )

        return [
            view(self.confirm_view, "confirm"),
            view(self.cancel_view, "cancel"),
            view(self.refund_view, "refund"),
            *super().get_urls(),
        ]

    def _purchase(self, request, object_id) -> Purchase:
        return get_object_or_404(Purchase.objects.select_related("user"), pk=object_id)

    def _back(self, purchase):
        return HttpResponseRedirect(reverse("admin:credits_purchase_change", args=[purchase.pk]))

    def _run(self, request, form, purchase, action, log_message):
        try:
            result = action()
        except ValidationError as error:
            form.add_error(None, error)
            return None
        self.log_change(request, result, log_message)
        messages.success(request, log_message)
        return self._back(result)

    def confirm_view(self, request, object_id):
        require(request, CONFIRM_RIGHT)
        purchase = self._purchase(request, object_id)
        form = ConfirmPurchaseForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            reference = form.cleaned_data["payment_reference"]
            done = self._run(
                request,
                form,
                purchase,
                lambda: staff_purchase_confirm(
                    actor=request.user, purchase=purchase, payment_reference=reference
                ),
                _("Payment confirmed: %(credits)s credits granted.")
                % {"credits": credits_text(purchase.credits)},
            )
            if done:
                return done
        return form_page(
            request,
            self,
            title=_("Confirm payment of purchase #%(id)s") % {"id": purchase.pk},
            form=form,
            subject=purchase,
            submit_label=_("Confirm payment"),
            note=_("%(user)s receives %(credits)s credits for %(price)s.")
            % {
                "user": purchase.user.email,
                "credits": credits_text(purchase.credits),
                "price": money(purchase.price_cents),
            },
        )

    def cancel_view(self, request, object_id):
        require(request, CANCEL_RIGHT)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        purchase = self._purchase(request, object_id)
        try:
            purchase = purchase_cancel(purchase=purchase, cancelled_by=request.user)
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            self.log_change(request, purchase, _("Cancelled."))
            messages.success(request, _("Purchase #%(id)s cancelled.") % {"id": purchase.pk})
        return self._back(purchase)

    def refund_view(self, request, object_id):
        require(request, REFUND_RIGHT)
        purchase = self._purchase(request, object_id)
        form = RefundPurchaseForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            done = self._run(
                request,
                form,
                purchase,
                lambda: staff_purchase_refund(actor=request.user, purchase=purchase, reason=reason),
                _("Refunded: %(reason)s") % {"reason": reason},
            )
            if done:
                return done
        remaining = getattr(getattr(purchase, "grant", None), "remaining", 0)
        return form_page(
            request,
            self,
            title=_("Refund purchase #%(id)s") % {"id": purchase.pk},
            form=form,
            subject=purchase,
            submit_label=pgettext("action", "Refund"),
            note=_("%(credits)s credits still unspent are taken back; what was spent stays spent.")
            % {"credits": credits_text(remaining)},
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        purchase = self.get_object(request, object_id)
        # Staff never confirm or refund a purchase of their own account (backoffice.services).
        others = purchase is not None and purchase.user_id != request.user.pk
        extra_context = {
            **(extra_context or {}),
            "can_confirm": others and request.user.has_perm(CONFIRM_RIGHT),
            "can_cancel": request.user.has_perm(CANCEL_RIGHT),
            "can_refund": others and request.user.has_perm(REFUND_RIGHT),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = [
        "name",
        "slug",
        "monthly_allowance",
        "requests_per_minute",
        "default_max_tokens",
        "all_models",
        "is_default",
        "active",
    ]
    list_filter = ["active", "is_default"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(CreditPackage)
class CreditPackageAdmin(admin.ModelAdmin):
    form = CreditPackageAdminForm
    list_display = ["name", "credits", "price", "validity_days", "active"]
    list_filter = ["active"]

    @admin.display(description=gettext_lazy("price"), ordering="price_cents")
    def price(self, package):
        return money(package.price_cents)


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceAdminForm
    list_display = [
        "model",
        "input_weight",
        "output_weight",
        "max_output_tokens",
        "active",
        "updated_at",
    ]
    list_filter = ["active"]
    search_fields = ["model"]
    actions = ["activate_selected", "deactivate_selected"]
    change_list_template = "backoffice/modelprice_change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return ["model"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        saved = model_price_set(
            model=obj.model,
            input_weight=obj.input_weight,
            output_weight=obj.output_weight,
            max_output_tokens=obj.max_output_tokens,
            active=obj.active,
        )
        obj.pk = saved.pk

    @admin.action(description=gettext_lazy("Activate the selected prices"), permissions=["change"])
    def activate_selected(self, request, queryset):
        count = queryset.update(active=True)
        self.message_user(request, _("%(count)d price(s) activated.") % {"count": count})

    @admin.action(
        description=gettext_lazy("Deactivate the selected prices"), permissions=["change"]
    )
    def deactivate_selected(self, request, queryset):
        count = queryset.update(active=False)
        self.message_user(request, _("%(count)d price(s) deactivated.") % {"count": count})

    def get_urls(self):
        importer = self.admin_site.admin_view(self.import_view)
        return [path("import/", importer, name="credits_modelprice_import"), *super().get_urls()]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        back = HttpResponseRedirect(reverse("admin:credits_modelprice_changelist"))
        try:
            names = async_to_sync(upstream.models_list)()
        except (upstream.UpstreamUnavailable, upstream.UpstreamTimeout) as error:
            messages.error(
                request, _("LiteLLM did not answer the model list: %(error)s") % {"error": error}
            )
            return back
        created = model_prices_import(models=names)
        messages.success(
            request,
            _("%(found)d model(s) at LiteLLM, %(new)d new: set their weights and activate them.")
            % {"found": len(names), "new": len(created)},
        )
        return HttpResponseRedirect(
            reverse("admin:credits_modelprice_changelist") + "?active__exact=0"
        )
