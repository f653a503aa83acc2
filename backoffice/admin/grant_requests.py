"""Grants waiting for a second staff member's approval (docs/admin.md, "Grants above the
approval threshold")."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.admin_tools import ReadOnlyAdmin, form_page, require, tone_badge
from backoffice.forms import ApproveGrantForm, RejectGrantForm
from backoffice.models import GrantRequest
from backoffice.services import GRANT_RIGHT, grant_request_approve, grant_request_reject
from kernel.formats import credits_text

STATUS_TONES = {"pending": "warn", "approved": "ok", "rejected": "bad"}


@admin.register(GrantRequest)
class GrantRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "amount_display",
        "source",
        "reason",
        "status_badge",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "source"]
    search_fields = ["user__email", "requested_by__email", "reason"]
    list_select_related = ["user", "requested_by", "decided_by"]
    date_hierarchy = "requested_at"
    actions = ["approve_selected", "reject_selected"]
    change_form_template = "backoffice/grantrequest_change_form.html"

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_display(self, grant_request):
        return credits_text(grant_request.amount)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, grant_request):
        return tone_badge(
            STATUS_TONES.get(grant_request.status, "muted"),
            grant_request.get_status_display(),
            extra_class=f"grant-request-{grant_request.status}",
        )

    def has_grant_permission(self, request) -> bool:
        return request.user.has_perm(GRANT_RIGHT)

    def _each(self, request, queryset, decide, message) -> None:
        done, failed = 0, []
        for grant_request in queryset.order_by("pk"):
            try:
                decided = decide(grant_request)
            except ValidationError as error:
                failed.append(f"#{grant_request.pk}: {'; '.join(error.messages)}")
                continue
            self.log_change(request, decided, message)
            done += 1
        if done:
            self.message_user(request, _("%(count)d request(s) done.") % {"count": done})
        if failed:
            self.message_user(request, " ".join(failed), messages.ERROR)

    @admin.action(
        description=gettext_lazy("Approve the selected requests (grants the credits)"),
        permissions=["grant"],
    )
    def approve_selected(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda one: grant_request_approve(grant_request=one, approver=request.user),
            _("Approved: the credits were granted."),
        )

    @admin.action(description=gettext_lazy("Reject the selected requests"), permissions=["grant"])
    def reject_selected(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda one: grant_request_reject(grant_request=one, decided_by=request.user),
            _("Rejected."),
        )

    def get_urls(self):
        def view(function, name):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(function),
                name=f"backoffice_grantrequest_{name}",
            )

        return [
            view(self.approve_view, "approve"),
            view(self.reject_view, "reject"),
            *super().get_urls(),
        ]

    def _decision_page(self, request, object_id, *, form_class, decide, done, **page):
        require(request, GRANT_RIGHT)
        grant_request = get_object_or_404(
            GrantRequest.objects.select_related("user", "requested_by"), pk=object_id
        )
        form = form_class(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                decided = decide(grant_request, form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.log_change(request, decided, done)
                messages.success(request, done)
                return HttpResponseRedirect(
                    reverse("admin:backoffice_grantrequest_change", args=[decided.pk])
                )
        return form_page(
            request,
            self,
            form=form,
            subject=grant_request,
            note=_("%(amount)s credits for %(user)s, asked by %(by)s: %(reason)s")
            % {
                "amount": credits_text(grant_request.amount),
                "user": grant_request.user.email,
                "by": grant_request.requested_by.email,
                "reason": grant_request.reason,
            },
            **page,
        )

    def approve_view(self, request, object_id):
        return self._decision_page(
            request,
            object_id,
            form_class=ApproveGrantForm,
            decide=lambda one, _data: grant_request_approve(
                grant_request=one, approver=request.user
            ),
            done=_("Approved: the credits were granted."),
            title=_("Approve grant request #%(id)s") % {"id": object_id},
            submit_label=_("Approve and grant"),
        )

    def reject_view(self, request, object_id):
        return self._decision_page(
            request,
            object_id,
            form_class=RejectGrantForm,
            decide=lambda one, data: grant_request_reject(
                grant_request=one, decided_by=request.user, note=data["note"]
            ),
            done=_("Rejected."),
            title=_("Reject grant request #%(id)s") % {"id": object_id},
            submit_label=_("Reject"),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        grant_request = self.get_object(request, object_id)
        may_decide = may_approve = False
        if grant_request is not None and grant_request.status == GrantRequest.Status.PENDING:
            may_decide = self.has_grant_permission(request)
            # Neither who asked nor whom the credits are for (backoffice.services says why).
            others = request.user.pk not in (grant_request.requested_by_id, grant_request.user_id)
            may_approve = may_decide and others
        extra_context = {
            **(extra_context or {}),
            "can_approve": may_approve,
            "can_reject": may_decide,
        }
        return super().change_view(request, object_id, form_url, extra_context)
