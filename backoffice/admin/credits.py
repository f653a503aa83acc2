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
    date_column,
    email_cell,
    form_page,
    money_column,
    number_column,
    require,
    tone_badge,
)
from backoffice.forms import (
    CancelPurchaseForm,
    ConfirmPurchaseForm,
    CreditPackageAdminForm,
    ModelPriceAdminForm,
    PlanAdminForm,
    RefundPaymentForm,
    RefundPurchaseForm,
)
from backoffice.services import staff_purchase_cancel, staff_purchase_confirm, staff_purchase_refund
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
from credits.services import model_price_set, model_prices_import
from kernel.formats import credits_text, money_text
from payments.models import Payment, PaymentRefund
from payments.selectors import payment_of, refund_quote
from payments.services import PaymentUnavailable
from proxy import upstream

CONFIRM_RIGHT = "backoffice.confirm_purchase"
CANCEL_RIGHT = "backoffice.cancel_purchase"
REFUND_RIGHT = "backoffice.refund_purchase"
PURCHASE_TONES = {"requested": "warn", "paid": "info", "credited": "ok"}
PAYMENT_TONES = {"pending": "warn", "paid": "ok", "review": "bad", "refunded": "info"}


def purchase_status_badge(purchase: Purchase):
    return tone_badge(
        PURCHASE_TONES.get(purchase.status, "muted"),
        purchase.get_status_display(),
        extra_class=f"purchase-status-{purchase.status}",
    )


def payment_status_badge(payment: Payment):
    return tone_badge(
        PAYMENT_TONES.get(payment.status, "muted"),
        payment.get_status_display(),
        extra_class=f"payment-status-{payment.status}",
    )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(CsvExportAdmin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "kind",
        "amount_display",
        "balance_after_display",
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
    fields = [
        "created_at",
        "account",
        "kind",
        "amount_display",
        "balance_after_display",
        "grant",
        "purchase",
        "hold",
        "reason",
        "created_by",
        "flagged",
        "idempotency_key",
    ]
    amount_display = number_column("amount", gettext_lazy("amount"), signed=True)
    balance_after_display = number_column("balance_after", gettext_lazy("balance after"))
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
        "amount_display",
        "remaining_display",
        "expires_at",
        "created_by",
        "created_at",
    ]
    list_filter = ["source"]
    search_fields = ["account__user__email", "reason"]
    list_select_related = ["account__user", "created_by"]
    date_hierarchy = "created_at"
    fields = [
        "account",
        "source",
        "amount_display",
        "remaining_display",
        "expires_at",
        "purchase",
        "reason",
        "created_by",
        "created_at",
    ]
    amount_display = number_column("amount", gettext_lazy("amount"))
    remaining_display = number_column("remaining", gettext_lazy("remaining"))


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "request_id",
        "account",
        "model",
        "amount_display",
        "status",
        "created_at",
        "closed_at",
    ]
    list_filter = ["status"]
    search_fields = ["request_id", "account__user__email"]
    list_select_related = ["account__user"]
    fields = [
        "request_id",
        "account",
        "model",
        "amount_display",
        "input_weight",
        "output_weight",
        "status",
        "created_at",
        "closed_at",
    ]
    amount_display = number_column("amount", gettext_lazy("credits held"))


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "balance_display",
        "held_display",
        "debt_display",
        "notified_state",
        "updated_at",
    ]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = [
        "user",
        "balance_display",
        "held_display",
        "debt_display",
        "notified_state",
        "updated_at",
    ]
    balance_display = number_column("balance", gettext_lazy("balance"))
    held_display = number_column("held", gettext_lazy("held"))
    debt_display = number_column("debt", gettext_lazy("debt"))


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["user", "plan", "cycle_start", "cycle_end"]
    list_filter = ["plan"]
    search_fields = ["user__email"]
    list_select_related = ["user", "plan"]


@admin.register(Purchase)
class PurchaseAdmin(CsvExportAdmin, ReadOnlyAdmin):
    # Fits 1366 px beside the navigation and the filters: the payment time and who confirmed
    # it are on the purchase's page.
    list_display = [
        "id",
        "user_display",
        "credits_display",
        "price",
        "status_badge",
        "payment_display",
        "created_display",
    ]
    list_filter = ["status", "method", "package"]
    search_fields = ["user__email", "payment_reference", "idempotency_key"]
    list_select_related = ["user", "confirmed_by", "package", "payment"]
    date_hierarchy = "created_at"
    # Cancelling asks for a reason, one purchase at a time (the purchase's Cancel page).
    actions = ["confirm_selected"]
    change_form_template = "backoffice/purchase_change_form.html"
    fields = [
        "user",
        "package",
        "credits_display",
        "price",
        "validity_days",
        "method",
        "status_badge",
        "payment_reference",
        "confirmed_by",
        "created_at",
        "paid_at",
        "updated_at",
        "idempotency_key",
    ]
    credits_display = number_column("credits", gettext_lazy("credits"))
    price = money_column("price_cents", gettext_lazy("price"))
    created_display = date_column("created_at", gettext_lazy("created at"))
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

    @admin.display(description=gettext_lazy("user"), ordering="user__email")
    def user_display(self, purchase):
        return email_cell(purchase.user.email)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, purchase):
        return purchase_status_badge(purchase)

    @admin.display(description=gettext_lazy("payment"), ordering="method")
    def payment_display(self, purchase):
        """Manual (with its reference) or PIX with its charge's status."""
        payment = payment_of(purchase)
        if payment is None:
            method = purchase.get_method_display()
        else:
            method = tone_badge(
                PAYMENT_TONES.get(payment.status, "muted"),
                f"PIX · {payment.get_status_display()}",
                extra_class=f"payment-status-{payment.status}",
            )
        if not purchase.payment_reference:
            return method
        return format_html(
            '{}<br><span class="quiet">{}</span>', method, purchase.payment_reference
        )

    def has_confirm_permission(self, request):
        return request.user.has_perm(CONFIRM_RIGHT)

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
        return get_object_or_404(
            Purchase.objects.select_related("user", "package", "payment"), pk=object_id
        )

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
                "price": money_text(purchase.price_cents),
            },
        )

    def cancel_view(self, request, object_id):
        """Cancelling is a step of its own, with a reason (never one click on the purchase)."""
        require(request, CANCEL_RIGHT)
        purchase = self._purchase(request, object_id)
        form = CancelPurchaseForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            done = self._run(
                request,
                form,
                purchase,
                lambda: staff_purchase_cancel(actor=request.user, purchase=purchase),
                _("Cancelled: %(reason)s") % {"reason": reason},
            )
            if done:
                return done
        return form_page(
            request,
            self,
            title=_("Cancel purchase #%(id)s") % {"id": purchase.pk},
            form=form,
            subject=purchase,
            submit_label=_("Cancel this purchase"),
            danger=True,
            back_label=_("Keep the purchase"),
            note=_(
                "%(user)s asked for %(credits)s credits for %(price)s. Once cancelled, the "
                "purchase can no longer be confirmed: nothing is granted."
            )
            % {
                "user": purchase.user.email,
                "credits": credits_text(purchase.credits),
                "price": money_text(purchase.price_cents),
            },
        )

    def refund_view(self, request, object_id):
        require(request, REFUND_RIGHT)
        purchase = self._purchase(request, object_id)
        payment = payment_of(purchase)
        if payment is not None:
            return self._payment_refund_view(request, purchase, payment)
        form = RefundPurchaseForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            done = self._run(
                request,
                form,
                purchase,
                lambda: (
                    staff_purchase_refund(
                        actor=request.user, purchase=purchase, reason=reason
                    ).purchase
                ),
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
            danger=True,
            note=_("%(credits)s credits still unspent are taken back; what was spent stays spent.")
            % {"credits": credits_text(remaining)},
        )

    def _payment_refund_view(self, request, purchase: Purchase, payment: Payment):
        """A PIX purchase: the money goes back through Mercado Pago first, pro rata or in full;
        the credits are taken back once it confirms."""
        quote = refund_quote(payment=payment)
        form = RefundPaymentForm(request.POST if request.method == "POST" else None, quote=quote)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            try:
                refund = staff_purchase_refund(
                    actor=request.user,
                    purchase=purchase,
                    reason=reason,
                    full=form.cleaned_data["full"],
                ).payment_refund
            except ValidationError as error:
                form.add_error(None, error)
            except PaymentUnavailable:
                form.add_error(
                    None,
                    _(
                        "Mercado Pago did not answer. The refund is asked again by itself "
                        "within a minute, with the same key; nothing is taken back before "
                        "Mercado Pago confirms it."
                    ),
                )
            else:
                assert refund is not None  # a PIX purchase is refunded through its payment
                self._refund_done(request, purchase, refund, reason)
                return self._back(purchase)
        return form_page(
            request,
            self,
            title=_("Refund purchase #%(id)s through Mercado Pago") % {"id": purchase.pk},
            form=form,
            subject=purchase,
            submit_label=_("Refund through Mercado Pago"),
            danger=True,
            note=_(
                "%(user)s paid %(price)s by PIX for %(credits)s credits; %(left)s are not "
                "spent yet. The money goes back first; the credits are taken back once "
                "Mercado Pago confirms."
            )
            % {
                "user": purchase.user.email,
                "price": money_text(payment.amount_cents),
                "credits": credits_text(quote.credits),
                "left": credits_text(quote.credits_left),
            },
        )

    def _refund_done(self, request, purchase, refund: PaymentRefund, reason: str) -> None:
        values = {
            "money": money_text(refund.amount_cents),
            "credits": credits_text(purchase.credits if refund.full else refund.credits_quoted),
            "reason": reason,
        }
        self.log_change(
            request,
            purchase,
            _("Refund of %(money)s asked of Mercado Pago (%(credits)s credits): %(reason)s")
            % values,
        )
        if refund.status == PaymentRefund.Status.BOOKED:
            messages.success(
                request,
                _("%(money)s refunded through Mercado Pago; %(credits)s credits taken back.")
                % values,
            )
        else:
            messages.warning(
                request,
                _(
                    "Mercado Pago is processing the refund of %(money)s: the %(credits)s "
                    "credits are taken back once it confirms."
                )
                % values,
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        purchase = self.get_object(request, object_id)
        payment = payment_of(purchase) if purchase is not None else None
        # Staff never confirm or refund a purchase of their own account (backoffice.services).
        others = purchase is not None and purchase.user_id != request.user.pk
        manual = purchase is not None and purchase.method == Purchase.Method.MANUAL
        refundable = purchase is not None and purchase.status == Purchase.Status.CREDITED
        if payment is not None:
            refundable = (
                payment.status == Payment.Status.PAID
                and not payment.refunds.filter(
                    status__in=[PaymentRefund.Status.REQUESTED, PaymentRefund.Status.CONFIRMED]
                ).exists()
            )
        extra_context = {
            **(extra_context or {}),
            "payment": payment,
            "payment_status": payment_status_badge(payment) if payment else None,
            "refunds": list(payment.refunds.select_related("requested_by")) if payment else [],
            "can_confirm": others and manual and request.user.has_perm(CONFIRM_RIGHT),
            "can_cancel": request.user.has_perm(CANCEL_RIGHT)
            and (payment is None or payment.status != Payment.Status.PENDING),
            "can_refund": others and refundable and request.user.has_perm(REFUND_RIGHT),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = [
        "name",
        "slug",
        "allowance_display",
        "requests_per_minute",
        "default_max_tokens",
        "all_models",
        "is_default",
        "active",
    ]
    list_filter = ["active", "is_default"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    allowance_display = number_column("monthly_allowance", gettext_lazy("monthly allowance"))


@admin.register(CreditPackage)
class CreditPackageAdmin(admin.ModelAdmin):
    form = CreditPackageAdminForm
    list_display = ["name", "credits_display", "price_display", "validity_days", "active"]
    list_filter = ["active"]
    credits_display = number_column("credits", gettext_lazy("credits"))
    price_display = money_column("price_cents", gettext_lazy("price"))


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
