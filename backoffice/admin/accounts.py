from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ApiKey, Integration, LoginLink, User
from accounts.services import api_key_create, user_reactivate, user_suspend
from backoffice.admin_tools import email_cell, form_page, require, state_badge, tone_badge
from backoffice.forms import (
    AddCreditsForm,
    ApiKeyForm,
    ChangePlanForm,
    IntegrationForm,
    SuspendForm,
)
from backoffice.models import GrantRequest
from backoffice.roles import PRIVILEGE_FIELDS, may_change_account
from backoffice.selectors import (
    purchases_open,
    used_percent_of,
    user_overview,
    users_with_credits,
)
from backoffice.services import staff_grant
from credits.models import Account
from credits.selectors import account_summary, grant_already_made, member_plan
from credits.services import subscription_change_plan
from kernel.formats import credits_text

GRANT_RIGHT = "backoffice.grant_credits"
CONFIRM_RIGHT = "backoffice.confirm_purchase"
MANAGE_RIGHT = "accounts.change_user"


def approval_note() -> str:
    threshold = settings.SOLARIS_GRANT_APPROVAL_ABOVE
    if threshold is None:
        return ""
    return _("Above %(count)s credits the grant waits for another staff member's approval.") % {
        "count": credits_text(threshold)
    }


class PeopleFilter(admin.SimpleListFilter):
    """Customers by default: staff accounts are not customers, and are one click away."""

    title = gettext_lazy("people")
    parameter_name = "people"

    def lookups(self, request, model_admin):
        return [("staff", _("Staff")), ("all", _("Everyone"))]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Customers"),
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        if self.value() == "staff":
            return queryset.filter(is_staff=True)
        return queryset.filter(is_staff=False)


class CreditStateFilter(admin.SimpleListFilter):
    title = gettext_lazy("credit state")
    parameter_name = "credit_state"

    def lookups(self, request, model_admin):
        return Account.State.choices

    def queryset(self, request, queryset):
        if self.value() in Account.State.values:
            # Users without a credit account (staff) are not customers in any state.
            return queryset.filter(account__isnull=False, credit_state=self.value())
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    # The top-up first, so it is never the column a narrow screen cuts off.
    list_display = [
        "add_credits_link",
        "person",
        "plan",
        "available",
        "used_percent",
        "state",
        "last_call",
    ]
    list_display_links = ["person"]
    list_filter = [PeopleFilter, CreditStateFilter, "subscription__plan", "is_suspended"]
    search_fields = ["email", "name"]
    list_select_related = ["subscription__plan"]
    list_per_page = 50
    actions = ["suspend_selected", "reactivate_selected"]
    change_form_template = "backoffice/user_change_form.html"
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (gettext_lazy("Profile"), {"fields": ["name", "language", "librechat_id"]}),
        (
            gettext_lazy("Access"),
            {"fields": ["is_active", "is_suspended", "is_staff", "is_superuser", "groups"]},
        ),
        (gettext_lazy("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def get_queryset(self, request):
        return users_with_credits(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.extend(PRIVILEGE_FIELDS)
        return fields

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_change_account(actor=request.user, user=obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_change_account(actor=request.user, user=obj))

    @admin.display(description=gettext_lazy("user"), ordering="email")
    def person(self, user):
        """The e-mail (the link) with the name under it: one column, so the list fits."""
        email = email_cell(user.email)
        if not user.name:
            return email
        return format_html('{}<br><span class="quiet">{}</span>', email, user.name)

    @admin.display(description=gettext_lazy("plan"), ordering="subscription__plan__name")
    def plan(self, user):
        plan = member_plan(subscription=getattr(user, "subscription", None))
        return plan.name if plan else "—"

    @admin.display(description=gettext_lazy("available"), ordering="credits_available")
    def available(self, user):
        return credits_text(user.credits_available)

    @admin.display(description=gettext_lazy("used %"), ordering="used_bp")
    def used_percent(self, user):
        return f"{number_format(used_percent_of(user.used_bp), decimal_pos=2)} %"

    @admin.display(description=gettext_lazy("state"), ordering="used_bp")
    def state(self, user):
        badge = state_badge(user.credit_state, str(Account.State(user.credit_state).label))
        if user.is_suspended:
            return format_html("{} {}", badge, tone_badge("bad", _("suspended")))
        return badge

    @admin.display(description=gettext_lazy("last call"), ordering=F("last_call_at").desc())
    def last_call(self, user):
        return date_format(user.last_call_at, "SHORT_DATETIME_FORMAT") if user.last_call_at else "—"

    @admin.display(description=gettext_lazy("top-up"))
    def add_credits_link(self, user):
        return format_html(
            '<a class="button add-credits" href="{}">{}</a>',
            reverse("admin:accounts_user_add_credits", args=[user.pk]),
            _("+ credits"),
        )

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if not request.user.has_perm(GRANT_RIGHT):
            columns.remove("add_credits_link")
        return columns

    # --- per-user pages ---

    def get_urls(self):
        def view(function, name):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(function),
                name=f"accounts_user_{name.replace('-', '_')}",
            )

        return [
            view(self.add_credits_view, "add-credits"),
            view(self.change_plan_view, "change-plan"),
            view(self.suspend_view, "suspend"),
            view(self.reactivate_view, "reactivate"),
            view(self.api_key_view, "api-key"),
            *super().get_urls(),
        ]

    def _user(self, request, object_id, *, change: bool = False) -> User:
        user = get_object_or_404(User, pk=object_id)
        if not self.has_view_permission(request, user):
            raise PermissionDenied
        if change and not may_change_account(actor=request.user, user=user):
            raise PermissionDenied
        return user

    def _back(self, user: User):
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))

    def add_credits_view(self, request, object_id):
        require(request, GRANT_RIGHT)
        user = self._user(request, object_id)
        pending = purchases_open(user_id=user.pk)
        form = AddCreditsForm(request.POST if request.method == "POST" else None, pending=pending)
        if request.method == "POST" and form.is_valid():
            key = f"admin:{form.cleaned_data['idempotency_key']}"
            already = grant_already_made(idempotency_key=key) or (
                GrantRequest.objects.filter(idempotency_key=key).exists()
            )
            try:
                result = staff_grant(
                    actor=request.user,
                    user=user,
                    amount=form.cleaned_data["amount"],
                    idempotency_key=key,
                    expires_at=form.expires_at(),
                    reason=form.ledger_reason(),
                    acknowledged_purchases=form.acknowledged_purchases(),
                )
            except ValidationError as error:
                self._grant_refused(form, error)
            else:
                if isinstance(result, GrantRequest):
                    return self._grant_requested(request, user, result, again=already)
                if already:
                    messages.warning(
                        request,
                        _("This form was already submitted: the credits were granted once."),
                    )
                else:
                    self.log_change(
                        request,
                        user,
                        _("Added %(amount)s credits (grant #%(grant)s): %(reason)s")
                        % {
                            "amount": result.amount,
                            "grant": result.pk,
                            "reason": result.reason,
                        },
                    )
                    messages.success(
                        request,
                        _("%(amount)s credits added to %(user)s.")
                        % {"amount": credits_text(result.amount), "user": user.email},
                    )
                changelist = reverse("admin:accounts_user_changelist")
                return HttpResponseRedirect(f"{changelist}?{urlencode({'q': user.email})}")
        return form_page(
            request,
            self,
            title=_("Add credits to %(user)s") % {"user": user.email},
            form=form,
            subject=user,
            submit_label=_("Add credits"),
            summary=account_summary(user_id=user.pk),
            note=approval_note(),
            pending=pending,
            can_confirm=request.user.has_perm(CONFIRM_RIGHT),
        )

    @staticmethod
    def _grant_refused(form: AddCreditsForm, error: ValidationError) -> None:
        """A purchase waiting for payment is answered on its own box; anything else on top."""
        unknown = (
            (error.params or {}).get("purchases", []) if error.code == "pending_purchase" else []
        )
        fields = [form.acknowledge_field(pk) for pk in unknown]
        if fields and all(field in form.fields for field in fields):
            for field in fields:
                form.add_error(field, error)
        else:
            form.add_error(None, error)

    def _grant_requested(self, request, user: User, grant_request: GrantRequest, *, again: bool):
        if not again:
            self.log_change(
                request,
                user,
                _("Asked for %(amount)s credits (request #%(request)s): %(reason)s")
                % {
                    "amount": grant_request.amount,
                    "request": grant_request.pk,
                    "reason": grant_request.reason,
                },
            )
        messages.warning(
            request,
            _(
                "%(amount)s credits for %(user)s wait for another staff member's approval: "
                "nothing was granted yet."
            )
            % {"amount": credits_text(grant_request.amount), "user": user.email},
        )
        return HttpResponseRedirect(
            reverse("admin:backoffice_grantrequest_change", args=[grant_request.pk])
        )

    def change_plan_view(self, request, object_id):
        require(request, MANAGE_RIGHT)
        user = self._user(request, object_id, change=True)
        form = ChangePlanForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            plan = form.cleaned_data["plan"]
            subscription_change_plan(user=user, plan=plan, changed_by=request.user)
            self.log_change(request, user, _("Plan changed to %(plan)s.") % {"plan": plan.name})
            messages.success(
                request, _("%(user)s is now on %(plan)s.") % {"user": user, "plan": plan}
            )
            return self._back(user)
        return form_page(
            request,
            self,
            title=_("Change the plan of %(user)s") % {"user": user.email},
            form=form,
            subject=user,
            submit_label=_("Change plan"),
            note=_("The credits left from the current plan expire now and a new cycle starts."),
        )

    def suspend_view(self, request, object_id):
        return self._suspension_view(
            request,
            object_id,
            change=user_suspend,
            log=_("Suspended: %(reason)s"),
            done=_("%(user)s is suspended."),
            title=_("Suspend %(user)s"),
            submit_label=_("Suspend"),
            note=_("A suspended user's calls are refused until the account is reactivated."),
        )

    def reactivate_view(self, request, object_id):
        return self._suspension_view(
            request,
            object_id,
            change=user_reactivate,
            log=_("Reactivated: %(reason)s"),
            done=_("%(user)s is active again."),
            title=_("Reactivate %(user)s"),
            submit_label=_("Reactivate"),
        )

    def _suspension_view(self, request, object_id, *, change, log, done, title, **page):
        """Suspend or reactivate: a reason is asked, the change logged in the admin history."""
        require(request, MANAGE_RIGHT)
        user = self._user(request, object_id, change=True)
        form = SuspendForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            if change(user=user):
                self.log_change(request, user, log % form.cleaned_data)
                messages.success(request, done % {"user": user})
            return self._back(user)
        return form_page(
            request, self, title=title % {"user": user.email}, form=form, subject=user, **page
        )

    def api_key_view(self, request, object_id):
        require(request, "accounts.add_apikey")
        # A key for another staff member would let its holder act as them.
        user = self._user(request, object_id, change=True)
        form = ApiKeyForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            key, raw = api_key_create(user=user, name=form.cleaned_data["name"])
            self.log_change(
                request, user, _("API key %(prefix)s… created.") % {"prefix": key.prefix}
            )
            # Rendered, not redirected: the plaintext must never pass through a cookie or session.
            return TemplateResponse(
                request,
                "backoffice/api_key_created.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("API key created"),
                    "opts": self.model._meta,
                    "subject": user,
                    "key": key,
                    "raw_key": raw,
                },
            )
        return form_page(
            request,
            self,
            title=_("New API key for %(user)s") % {"user": user.email},
            form=form,
            subject=user,
            submit_label=_("Create key"),
        )

    # --- bulk actions on the list ---

    def _set_suspended(self, request, queryset, service, message):
        require(request, MANAGE_RIGHT)
        allowed = [user for user in queryset if may_change_account(actor=request.user, user=user)]
        if len(allowed) < len(queryset):
            self.message_user(
                request,
                _("Only a superuser changes another staff member's account: those were skipped."),
                messages.WARNING,
            )
        changed = [user for user in allowed if service(user=user)]
        for user in changed:
            self.log_change(request, user, message)
        self.message_user(request, _("%(count)d user(s) changed.") % {"count": len(changed)})

    @admin.action(description=gettext_lazy("Suspend the selected users"), permissions=["change"])
    def suspend_selected(self, request, queryset):
        self._set_suspended(request, queryset, user_suspend, _("Suspended from the user list."))

    @admin.action(description=gettext_lazy("Reactivate the selected users"), permissions=["change"])
    def reactivate_selected(self, request, queryset):
        self._set_suspended(
            request, queryset, user_reactivate, _("Reactivated from the user list.")
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        user = self.get_object(request, object_id)
        if user is not None:
            changeable = may_change_account(actor=request.user, user=user)
            extra_context.update(
                overview=(overview := user_overview(user_id=user.pk)),
                summary_state_label=Account.State(overview.summary.state).label,
                can_grant=request.user.has_perm(GRANT_RIGHT) and user.pk != request.user.pk,
                can_confirm=request.user.has_perm(CONFIRM_RIGHT) and user.pk != request.user.pk,
                can_manage=request.user.has_perm(MANAGE_RIGHT) and changeable,
                can_create_key=request.user.has_perm("accounts.add_apikey") and changeable,
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "name", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False  # keys are created from the user page, which shows the plaintext once


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = [
        "prefix",
        "name",
        "auto_provision",
        "domains",
        "provision_plan",
        "notices_in_band",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description=gettext_lazy("e-mail domains provisioned"))
    def domains(self, integration):
        return ", ".join(integration.provision_domains) or _("any")

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
