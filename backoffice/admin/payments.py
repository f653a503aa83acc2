"""Payments for finance (docs/payments.md): each PIX charge with what Mercado Pago says and what
Solaris made of it, the refunds, the webhook log (redacted, read-only), the reconciliation report,
and the payment instructions of manual purchases. Nothing here changes money by hand: reading a
payment again applies what the provider says, exactly as the webhook and the minute's
reconciliation do."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.admin.credits import payment_status_badge, purchase_status_badge
from backoffice.admin_tools import (
    ReadOnlyAdmin,
    date_column,
    email_cell,
    money_column,
    require,
    tone_badge,
)
from kernel.formats import credits_text
from payments.models import Payment, PaymentInstructions, PaymentRefund, WebhookDelivery
from payments.selectors import reconciliation_report
from payments.services import PaymentUnavailable, payment_sync, payments_reconcile

# Reading a payment again (or reconciling now) may grant or cancel, as confirming does.
SYNC_RIGHT = "backoffice.confirm_purchase"
REFUND_TONES = {"requested": "warn", "confirmed": "info", "booked": "ok", "failed": "bad"}


def purchase_link(purchase) -> str:
    return format_html(
        '<a href="{}">#{}</a>',
        reverse("admin:credits_purchase_change", args=[purchase.pk]),
        purchase.pk,
    )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    # Fits 1366 px beside the navigation and the filters; the rest is on the payment's page.
    list_display = [
        "purchase_number",
        "user_display",
        "amount_display",
        "status_display",
        "provider_status_display",
        "created_display",
        "paid_display",
    ]
    list_display_links = ["purchase_number"]
    list_filter = ["status", "review_reason", "provider_status"]
    search_fields = ["purchase__user__email", "provider_payment_id", "reference"]
    list_select_related = ["purchase__user"]
    date_hierarchy = "created_at"
    change_list_template = "backoffice/payment_change_list.html"
    change_form_template = "backoffice/payment_change_form.html"
    fields = [
        "purchase_display",
        "user_display",
        "status_display",
        "provider_status_display",
        "amount_display",
        "refunded_display",
        "expires_at",
        "paid_at",
        "synced_at",
        "created_at",
        "provider",
        "provider_payment_id",
        "reference",
        "idempotency_key",
        "ticket_url",
    ]
    amount_display = money_column("amount_cents", gettext_lazy("amount"))
    refunded_display = money_column("refunded_cents", gettext_lazy("amount refunded"))
    created_display = date_column("created_at", gettext_lazy("created at"))
    paid_display = date_column("paid_at", gettext_lazy("paid at"))

    @admin.display(description=gettext_lazy("purchase"), ordering="purchase_id")
    def purchase_number(self, payment):
        return f"#{payment.purchase_id}"

    @admin.display(description=gettext_lazy("purchase"), ordering="purchase_id")
    def purchase_display(self, payment):
        return purchase_link(payment.purchase)

    @admin.display(description=gettext_lazy("user"), ordering="purchase__user__email")
    def user_display(self, payment):
        return email_cell(payment.purchase.user.email)

    @admin.display(description=gettext_lazy("in Solaris"), ordering="status")
    def status_display(self, payment):
        badge = payment_status_badge(payment)
        if payment.review_reason:
            return format_html("{} {}", badge, payment.get_review_reason_display())
        return badge

    @admin.display(description=gettext_lazy("Mercado Pago says"), ordering="provider_status")
    def provider_status_display(self, payment):
        if not payment.provider_status:
            return _("no answer yet")
        if payment.provider_status_detail:
            return f"{payment.provider_status} ({payment.provider_status_detail})"
        return payment.provider_status

    def get_urls(self):
        return [
            path(
                "reconciliation/",
                self.admin_site.admin_view(self.reconciliation_view),
                name="payments_payment_reconciliation",
            ),
            path(
                "<path:object_id>/sync/",
                self.admin_site.admin_view(self.sync_view),
                name="payments_payment_sync",
            ),
            *super().get_urls(),
        ]

    def reconciliation_view(self, request):
        """What finance looks at: paid at Mercado Pago but not credited, credited but no longer
        paid there, and the payments waiting for a decision (review)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            require(request, SYNC_RIGHT)
            try:
                result = payments_reconcile()
            except PaymentUnavailable:
                messages.error(request, _("Mercado Pago did not answer; try again in a minute."))
            else:
                messages.success(
                    request,
                    _(
                        "Reconciled: %(read)d payment(s) read from Mercado Pago, %(failed)d "
                        "without an answer."
                    )
                    % {"read": result.read, "failed": result.failed},
                )
            return HttpResponseRedirect(reverse("admin:payments_payment_reconciliation"))
        report = reconciliation_report()
        sections = [
            (
                "paid-not-granted",
                _("Paid at Mercado Pago, not credited"),
                _(
                    "Mercado Pago says approved, yet the purchase was never credited: a late or "
                    "mismatched payment (review), or one not applied yet. Refund it at Mercado "
                    "Pago, or add the credits."
                ),
                report.paid_not_granted,
            ),
            (
                "granted-not-paid",
                _("Credited, no longer paid at Mercado Pago"),
                _(
                    "The credits were granted but Mercado Pago no longer says approved "
                    "(refunded or charged back there): decide whether to take them back."
                ),
                report.granted_not_paid,
            ),
            (
                "review",
                _("Waiting for finance (review)"),
                _("Solaris granted nothing by itself for these: each says why it is in review."),
                report.review,
            ),
        ]
        rows = [
            (
                key,
                title,
                help_text,
                [
                    (
                        payment,
                        self.status_display(payment),
                        purchase_status_badge(payment.purchase),
                        self.provider_status_display(payment),
                    )
                    for payment in payments
                ],
            )
            for key, title, help_text, payments in sections
        ]
        return TemplateResponse(
            request,
            "backoffice/reconciliation.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Reconciliation report"),
                "opts": self.model._meta,
                "sections": rows,
                "can_sync": request.user.has_perm(SYNC_RIGHT),
            },
        )

    def sync_view(self, request, object_id):
        require(request, SYNC_RIGHT)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        payment = get_object_or_404(Payment, pk=object_id)
        back = HttpResponseRedirect(reverse("admin:payments_payment_change", args=[payment.pk]))
        if not payment.provider_payment_id:
            messages.error(request, _("Mercado Pago never answered this charge's creation."))
            return back
        try:
            synced = payment_sync(provider_payment_id=payment.provider_payment_id)
        except PaymentUnavailable:
            messages.error(request, _("Mercado Pago did not answer; try again in a minute."))
            return back
        if synced is None:
            messages.error(request, _("Mercado Pago does not know this payment."))
        else:
            messages.success(
                request,
                _("Read from Mercado Pago: %(status)s.") % {"status": synced.get_status_display()},
            )
        return back

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "refunds": list(payment.refunds.select_related("requested_by")) if payment else [],
            "deliveries": list(payment.deliveries.all()[:20]) if payment else [],
            "can_sync": request.user.has_perm(SYNC_RIGHT),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "purchase_display",
        "user_display",
        "amount_display",
        "kind_display",
        "credits_display",
        "status_display",
        "requested_by",
        "booked_at",
    ]
    list_filter = ["status", "full"]
    search_fields = ["payment__purchase__user__email", "provider_refund_id", "reason"]
    list_select_related = ["payment__purchase__user", "requested_by"]
    date_hierarchy = "created_at"
    fields = [
        "purchase_display",
        "user_display",
        "amount_display",
        "kind_display",
        "credits_display",
        "status_display",
        "reason",
        "requested_by",
        "created_at",
        "confirmed_at",
        "booked_at",
        "provider_refund_id",
        "provider_status",
        "failure",
        "idempotency_key",
    ]
    amount_display = money_column("amount_cents", gettext_lazy("amount"))

    @admin.display(description=gettext_lazy("purchase"))
    def purchase_display(self, refund):
        return purchase_link(refund.payment.purchase)

    @admin.display(description=gettext_lazy("user"))
    def user_display(self, refund):
        return refund.payment.purchase.user.email

    @admin.display(description=gettext_lazy("kind"), ordering="full")
    def kind_display(self, refund):
        return _("full") if refund.full else _("pro rata")

    @admin.display(description=gettext_lazy("credits taken back"))
    def credits_display(self, refund):
        return credits_text(
            refund.payment.purchase.credits if refund.full else refund.credits_quoted
        )

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, refund):
        return tone_badge(REFUND_TONES.get(refund.status, "muted"), refund.get_status_display())


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The webhook log as received: only the notification's identifying fields were kept (never
    headers, the signature or anything about the payer)."""

    list_display = [
        "received_at",
        "topic",
        "action",
        "resource_id",
        "payment_display",
        "outcome",
        "processed_at",
    ]
    list_filter = ["topic", "outcome"]
    search_fields = ["resource_id", "request_id"]
    list_select_related = ["payment__purchase"]
    date_hierarchy = "received_at"
    fields = [
        "received_at",
        "provider",
        "request_id",
        "topic",
        "action",
        "resource_id",
        "payment_display",
        "outcome",
        "processed_at",
        "body",
    ]

    @admin.display(description=gettext_lazy("payment"))
    def payment_display(self, delivery):
        if delivery.payment is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:payments_payment_change", args=[delivery.payment_id]),
            _("purchase #%(id)s") % {"id": delivery.payment.purchase_id},
        )


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
