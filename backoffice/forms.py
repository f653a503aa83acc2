import copy
import uuid
from datetime import datetime, time

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Integration
from accounts.services import email_domains_clean
from credits.models import CreditPackage, ModelPrice, Plan
from credits.services import plan_validate

MAX_GRANT = 10**12


class AddCreditsForm(forms.Form):
    amount = forms.IntegerField(
        label=_("credits"),
        min_value=1,
        max_value=MAX_GRANT,
        help_text=_("Whole credits to add, for example 500000."),
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=200,
        help_text=_("Why: shown in the ledger and in the user's history."),
    )
    expires_on = forms.DateField(
        label=_("expires on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Optional: the credits expire at the end of this day."),
    )
    payment_reference = forms.CharField(
        label=_("payment reference"),
        max_length=90,
        required=False,
        help_text=_("Optional: bank transfer, PIX or invoice identifier."),
    )
    # One key per form shown: submitting the same form twice grants once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError(_("The expiry must be today or later."))
        return day

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.max))

    def ledger_reason(self) -> str:
        reference = self.cleaned_data.get("payment_reference")
        reason = self.cleaned_data["reason"]
        return f"{reason} (ref. {reference})" if reference else reason


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(label=_("plan"), queryset=Plan.objects.filter(active=True))


class SuspendForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"), max_length=200, help_text=_("Recorded in the user's history.")
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=100, initial="admin")


class ConfirmPurchaseForm(forms.Form):
    payment_reference = forms.CharField(
        label=_("payment reference"), max_length=200, required=False
    )


class RefundPurchaseForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=200)


class ApproveGrantForm(forms.Form):
    """Nothing to fill in: the page shows what is granted and the button approves it."""


class RejectGrantForm(forms.Form):
    note = forms.CharField(
        label=_("reason"), max_length=300, help_text=_("Recorded with the request.")
    )


class PlanAdminForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = [
            "name",
            "slug",
            "monthly_allowance",
            "all_models",
            "allowed_models",
            "requests_per_minute",
            "default_max_tokens",
            "is_default",
            "active",
        ]

    def clean(self):
        cleaned = super().clean() or {}
        candidate = copy.copy(self.instance)  # the plan as saved, with the form's values
        for field in self.Meta.fields:
            setattr(candidate, field, cleaned.get(field, getattr(self.instance, field)))
        try:
            # The rules of a plan are credits'; the admin API and the commands check the same.
            plan_validate(plan=candidate)
        except ValidationError as broken:
            for field, messages in broken.message_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, messages)
        return cleaned


class CreditPackageAdminForm(forms.ModelForm):
    class Meta:
        model = CreditPackage
        fields = ["name", "credits", "price_cents", "validity_days", "active"]

    def clean_credits(self):
        credits = self.cleaned_data["credits"]
        if credits is not None and credits <= 0:
            raise forms.ValidationError(_("A package must have more than zero credits."))
        return credits


class ModelPriceAdminForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = ["model", "input_weight", "output_weight", "max_output_tokens", "active"]

    def _positive(self, name: str):
        weight = self.cleaned_data[name]
        if weight is not None and weight <= 0:
            raise forms.ValidationError(_("Weights must be greater than zero."))
        return weight

    def clean_input_weight(self):
        return self._positive("input_weight")

    def clean_output_weight(self):
        return self._positive("output_weight")


class IntegrationForm(forms.ModelForm):
    """An integration as staff edit it: the e-mail domains as one comma-separated line, the plan of
    new users chosen among the plans (the model keeps its slug)."""

    provision_domains = forms.CharField(
        label=_("e-mail domains provisioned"),
        required=False,
        help_text=_(
            "Comma-separated, e.g. empresa.com.br, filial.com.br. Only unknown users with an "
            "address in one of these domains are created. Empty: any domain."
        ),
    )
    provision_plan = forms.ChoiceField(label=_("plan of provisioned users"), required=False)

    class Meta:
        model = Integration
        fields = [
            "name",
            "auto_provision",
            "provision_domains",
            "provision_plan",
            "notices_in_band",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plans = [(plan.slug, plan.name) for plan in Plan.objects.order_by("name")]
        choice = self.fields["provision_plan"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", _("The default plan")), *plans]
        self.initial["provision_domains"] = ", ".join(self.instance.provision_domains or [])

    def clean_provision_domains(self) -> list[str]:
        return email_domains_clean(self.cleaned_data["provision_domains"].split(","))
