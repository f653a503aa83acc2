from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from credits.models import CreditPackage

MAX_PERIOD_DAYS = 366
# Dates outside these have no calls, and near date.max the period's end overflows.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2099, 12, 31)


class PeriodForm(forms.Form):
    """The period (inclusive dates, local time) and model the statement and call list show."""

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    model = forms.CharField(label=_("Model"), required=False, max_length=200)

    @staticmethod
    def default_period() -> dict:
        """The current month up to today."""
        today = timezone.localdate()
        return {"start": today.replace(day=1), "end": today, "model": ""}

    def _in_range(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not FIRST_DATE <= value <= LAST_DATE:
            raise ValidationError(
                _("Choose a date from %(first)s to %(last)s."),
                code="out_of_range",
                params={
                    "first": date_format(FIRST_DATE, "SHORT_DATE_FORMAT"),
                    "last": date_format(LAST_DATE, "SHORT_DATE_FORMAT"),
                },
            )
        return value

    def clean_start(self) -> date | None:
        return self._in_range("start")

    def clean_end(self) -> date | None:
        return self._in_range("end")

    def clean(self) -> dict:
        data = super().clean() or {}
        if self.has_error("start") or self.has_error("end"):
            return data
        default = self.default_period()
        start = data.get("start") or default["start"]
        end = data.get("end") or default["end"]
        if start > end:
            raise ValidationError(_("The start date must not be after the end date."))
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise ValidationError(
                _("Choose a period of at most %(days)d days.") % {"days": MAX_PERIOD_DAYS}
            )
        data["start"], data["end"] = start, end
        return data

    @staticmethod
    def bounds(start: date, end: date) -> tuple[datetime, datetime]:
        """[start 00:00, day after end 00:00) in the current time zone."""
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(start, time.min, tzinfo=zone),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
        )


class EmailAuthenticationForm(AuthenticationForm):
    """E-mail addresses are stored lower-case; people type them any way."""

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, strip=True)


class PurchaseRequestForm(forms.Form):
    """A package to buy (a double submit returns the same open order: purchase_checkout)."""

    package = forms.ModelChoiceField(
        queryset=CreditPackage.objects.filter(active=True), widget=forms.HiddenInput
    )


class LoginLinkRequestForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
