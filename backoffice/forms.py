import copy
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, time
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import get_format, number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Integration
from accounts.services import email_domains_clean
from credits.models import CreditPackage, ModelPrice, Plan, Purchase
from credits.services import plan_validate
from kernel.formats import credits_text, money_text
from payments.selectors import RefundQuote

MAX_GRANT = 10**12
# Largest price a package or purchase column holds (32-bit cents).
MAX_PRICE_CENTS = 2**31 - 1


def credits_input(**attrs) -> forms.NumberInput:
    """A whole number of credits, with the live "= 500.000 credits" preview of
    static/backoffice/admin.js under it (the words come from here, translated)."""
    return forms.NumberInput(
        attrs={
            "inputmode": "numeric",
            "data-credits-one": pgettext_lazy("preview", "= %(amount)s credit"),
            "data-credits-other": pgettext_lazy("preview", "= %(amount)s credits"),
            **attrs,
        }
    )


class MoneyField(forms.Field):
    """Reais as finance writes them — "14,90", "1.490,00" or "R$ 14,90" in pt-BR ("14.90",
    "1,490.00" in English) — read exactly (Decimal, never float) and cleaned to integer cents."""

    default_error_messages = {
        "invalid": _("Write an amount in reais with at most two decimals, for example 14,90."),
    }

    def __init__(self, *, max_cents: int = MAX_PRICE_CENTS, **kwargs):
        self.max_cents = max_cents
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "maxlength": 40})
        )
        super().__init__(**kwargs)

    def to_python(self, value) -> int | None:
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or len(value) > 40:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        text = value.replace("R$", "").replace("\xa0", "").replace(" ", "")
        decimal, thousand = get_format("DECIMAL_SEPARATOR"), get_format("THOUSAND_SEPARATOR")
        grouped = rf"[0-9]{{1,3}}(?:{re.escape(thousand)}[0-9]{{3}})+"
        match = re.fullmatch(rf"([0-9]+|{grouped})(?:{re.escape(decimal)}([0-9]{{1,2}}))?", text)
        if match is None and decimal != ".":
            # "14.90" typed with the English point where a comma is expected is still unambiguous.
            match = re.fullmatch(r"([0-9]+)\.([0-9]{1,2})", text)
        if match is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        reais = Decimal(match[1].replace(thousand, "") + "." + (match[2] or "0"))
        cents = int(reais * 100)
        if cents > self.max_cents:
            raise forms.ValidationError(
                _("At most R$ %(max)s.")
                % {"max": number_format(Decimal(self.max_cents) / 100, 2, force_grouping=True)},
                code="max_value",
            )
        return cents


def reais_input(cents: int | None) -> str:
    """Cents as a MoneyField shows them for editing: 14,90 (no currency sign, no grouping)."""
    return "" if cents is None else number_format(Decimal(cents) / 100, decimal_pos=2)


class AddCreditsForm(forms.Form):
    amount = forms.IntegerField(
        label=_("credits"),
        min_value=1,
        max_value=MAX_GRANT,
        widget=credits_input(),
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

    def __init__(self, *args, pending: Sequence[Purchase] = (), **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.pending = list(pending)
        # One box per purchase waiting for payment: knowing of #3 says nothing of a #4 that
        # arrived since the form was shown.
        for purchase in self.pending:
            self.fields[self.acknowledge_field(purchase.pk)] = forms.BooleanField(
                required=False,
                label=_("I know about the pending purchase #%(id)s: add these credits as well")
                % {"id": purchase.pk},
            )

    @staticmethod
    def acknowledge_field(purchase_id: int) -> str:
        return f"acknowledge_purchase_{purchase_id}"

    def acknowledged_purchases(self) -> set[int]:
        return {
            purchase.pk
            for purchase in self.pending
            if self.cleaned_data.get(self.acknowledge_field(purchase.pk))
        }

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


class CancelPurchaseForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=200,
        help_text=_("Why: recorded in the purchase's history."),
    )


class RefundPurchaseForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=200)


class RefundPaymentForm(RefundPurchaseForm):
    """A PIX purchase's refund: pro rata to the credits not yet spent (the default), or full."""

    full = forms.TypedChoiceField(
        label=_("refund"),
        coerce=lambda value: value == "full",
        widget=forms.RadioSelect,
        initial="pro_rata",
    )

    def __init__(self, *args, quote: RefundQuote, **kwargs):
        super().__init__(*args, **kwargs)
        spent = quote.credits - quote.credits_left
        field = self.fields["full"]
        field.choices = [  # type: ignore[attr-defined]
            (
                "pro_rata",
                _(
                    "Pro rata: %(money)s back; the %(credits)s credits not yet spent are taken "
                    "back, the %(spent)s spent stay spent"
                )
                % {
                    "money": money_text(quote.pro_rata_cents),
                    "credits": credits_text(quote.credits_left),
                    "spent": credits_text(spent),
                },
            ),
            (
                "full",
                _(
                    "Full: %(money)s back; all %(credits)s credits are taken back, the %(spent)s "
                    "already spent as debt (paid from the next credits)"
                )
                % {
                    "money": money_text(quote.full_cents),
                    "credits": credits_text(quote.credits),
                    "spent": credits_text(spent),
                },
            ),
        ]


class ApproveGrantForm(forms.Form):
    """Nothing to fill in: the page shows what is granted and the button approves it."""


class RejectGrantForm(forms.Form):
    note = forms.CharField(
        label=_("reason"), max_length=300, help_text=_("Recorded with the request.")
    )


class PlanAdminForm(forms.ModelForm):
    class Meta:
        model = Plan
        widgets = {"monthly_allowance": credits_input()}
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
    price = MoneyField(label=_("price (R$)"), help_text=_("In reais, for example 14,90."))

    class Meta:
        model = CreditPackage
        fields = ["name", "credits", "price", "validity_days", "active"]
        widgets = {"credits": credits_input()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("price", reais_input(self.instance.price_cents))

    def clean_price(self) -> int:
        cents = self.cleaned_data["price"]
        self.instance.price_cents = cents
        return cents

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
