"""End-user pages (README, docs/widget.md): statement, API keys, purchase requests, sign-in, balance API.

Views parse input, call one selector or service and render; the numbers come from
credits.selectors.account_summary everywhere, so the page, the API and the widget agree.
"""

import csv
import logging
import smtplib
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils import timezone, translation
from django.utils.decorators import method_decorator
from django.utils.formats import time_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import keys
from accounts.authentication import LibreChatJWTAuthentication
from accounts.models import ApiKey, LoginLink, User
from accounts.selectors import user_find
from accounts.services import api_key_create, key_revoke, login_link_consume, login_link_create
from credits.authentication import ApiKeyAuthentication
from credits.models import CreditPackage, LedgerEntry
from credits.selectors import account_summary, statement
from kernel.errors import SolarisError
from kernel.spreadsheet import csv_cell
from kernel.throttle import (
    EMAIL,
    PURCHASE,
    SIGN_IN,
    SIGN_IN_LINK,
    Lockout,
    throttle_count,
    throttle_locked,
    throttle_take,
)
from payments.models import Payment
from payments.selectors import purchase_get, purchase_payload, purchase_status
from payments.services import (
    PaymentRefused,
    PaymentUnavailable,
    payment_refresh,
    purchase_checkout,
)
from portal import selectors
from portal.charts import bar_chart
from portal.cors import WidgetCorsMixin
from portal.forms import (
    ApiKeyCreateForm,
    EmailAuthenticationForm,
    LoginLinkRequestForm,
    PeriodForm,
    PurchaseRequestForm,
)
from portal.labels import entry_text, label_of

logger = logging.getLogger(__name__)

CALLS_PER_PAGE = 25
PURCHASES_THROTTLED = gettext_lazy("Too many purchase requests from your connection.")


def user_language(view):
    """Pages speak the user's chosen language (pt-BR unless they picked English)."""

    def wrapped(request, *args, **kwargs):
        if request.user.is_authenticated:
            translation.activate(request.user.language)
            request.LANGUAGE_CODE = request.user.language
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def account_page(view):
    return login_required(user_language(view))


# --- throttles (docs/security.md) ---


def _try_again(lockout: Lockout) -> str:
    at = time_format(timezone.localtime(lockout.until_at), "H:i")
    return ngettext(
        "Try again at %(time)s (in %(minutes)d minute).",
        "Try again at %(time)s (in %(minutes)d minutes).",
        lockout.minutes,
    ) % {"time": at, "minutes": lockout.minutes}


def _throttled_page(request, lockout: Lockout, message: str) -> HttpResponse:
    context = {"message": message, "try_again": _try_again(lockout)}
    response = render(request, "registration/throttled.html", context, status=429)
    response["Retry-After"] = str(lockout.retry_after)
    return response


def _throttled_error(lockout: Lockout, message: str) -> SolarisError:
    return SolarisError(
        f"{message} {_try_again(lockout)}",
        status=429,
        code="rate_limit_exceeded",
        type="rate_limit_error",
        headers={"Retry-After": str(lockout.retry_after)},
    )


def sign_in_throttled(view):
    """The password forms (/entrar/, /admin/login/): a failed sign-in counts for the e-mail typed
    and the client's address; once they are locked out the password is not even checked."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        who = str(request.POST.get("username", "")).strip().lower()
        lockout = throttle_locked(request=request, throttle=SIGN_IN, who=who)
        if lockout is None:
            response = view(request, *args, **kwargs)
            # Django's sign-in views redirect on success and show the form again otherwise.
            if response.status_code in (301, 302):
                return response
            lockout = throttle_count(request=request, throttle=SIGN_IN, who=who)
            if lockout is None:
                return response
        message = _(
            "Too many failed sign-ins for this e-mail from your connection: signing in is paused "
            "for your safety."
        )
        return _throttled_page(request, lockout, message)

    return wrapped


# --- sign-in ---


@method_decorator(sign_in_throttled, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


def _email_throttled(request, email: str) -> HttpResponse | None:
    """The lockout page when too many e-mails went to `email` from this client; the same for
    addresses Solaris knows and does not know, so it tells nobody which are users."""
    lockout = throttle_take(request=request, throttle=EMAIL, who=email)
    if lockout is None:
        return None
    message = _("Too many e-mails were asked for this address from your connection.")
    return _throttled_page(request, lockout, message)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password-reset-done")

    def form_valid(self, form):
        throttled = _email_throttled(self.request, form.cleaned_data["email"].strip().lower())
        return throttled or super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-complete")


def _login_link_url(raw_token: str) -> str:
    return selectors.public_url(reverse("portal:login-link-use", args=[raw_token]))


def login_link_request(request):
    """E-mail a single-use sign-in link; the answer never reveals whether the e-mail is known."""
    form = LoginLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        throttled = _email_throttled(request, email)
        if throttled is not None:
            return throttled
        user = user_find(email=email)
        if user is not None and user.is_active:
            ttl = timedelta(minutes=settings.SOLARIS_LOGIN_LINK_TTL_MINUTES)
            _link, raw = login_link_create(user=user, channel=LoginLink.Channel.EMAIL, ttl=ttl)
            context = {
                "user": user,
                "url": _login_link_url(raw),
                "minutes": settings.SOLARIS_LOGIN_LINK_TTL_MINUTES,
            }
            try:
                with translation.override(user.language):
                    send_mail(
                        _("Your IA SOLARIS sign-in link"),
                        render_to_string("registration/login_link_email.txt", context),
                        None,
                        [user.email],
                    )
            except (OSError, smtplib.SMTPException):
                logger.exception("sign-in link e-mail not sent", extra={"user_id": user.pk})
                form.add_error(None, _("We could not send the e-mail right now. Try again soon."))
                return render(
                    request, "registration/login_link_request.html", {"form": form}, status=503
                )
        return render(request, "registration/login_link_sent.html", {"email": email})
    return render(request, "registration/login_link_request.html", {"form": form})


def _email_masked(email: str) -> str:
    """`ma***@example.com`: enough for its owner to recognise, not the whole address."""
    local, _at, domain = email.partition("@")
    return f"{local[: 2 if len(local) > 3 else 1]}***@{domain}"


def login_link_use(request, token: str):
    """GET shows whose account the link opens and a button; only the POST (CSRF-checked) signs in.
    Mail scanners that follow links do not spend it, and a link someone else sent cannot sign a
    person into the sender's account without their seeing whose it is (login CSRF)."""
    link = (
        LoginLink.objects.select_related("user")
        .filter(
            token_hash=keys.hash_key(token), used_at__isnull=True, expires_at__gt=timezone.now()
        )
        .first()
    )
    if request.method == "POST":
        user = login_link_consume(raw_token=token)
        if user is not None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_safe_next(request) or settings.LOGIN_REDIRECT_URL)
        link = None
    if link is None:
        form = LoginLinkRequestForm()
        return render(request, "registration/login_link_invalid.html", {"form": form}, status=400)
    return render(
        request,
        "registration/login_link_use.html",
        {"account": _email_masked(link.user.email), "next": _safe_next(request)},
    )


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


@require_POST
def language_set(request):
    """Switch pt-BR / English: saved on the user when signed in, in a cookie otherwise."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponse(_("Unknown language."), status=400)
    if request.user.is_authenticated:
        User.objects.filter(pk=request.user.pk).update(language=language)
    response = HttpResponseRedirect(_safe_next(request) or reverse("portal:statement"))
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


# --- the statement page ---


def _account_context(request, summary) -> dict:
    """What the counter, the banners and both modals show on every account page."""
    user = request.user
    pending = selectors.purchase_pending(user_id=user.pk)
    return {
        "summary": summary,
        "used_bar": min(int(summary.used_percent), 100),
        "renewal": selectors.renewal_outlook(user_id=user.pk, summary=summary),
        "pending": _order_context(pending) if pending else None,
        "packages": selectors.packages_on_sale(),
        "checkout_method": selectors.checkout_method(),
        "purchase_email": settings.SOLARIS_PURCHASE_EMAIL,
        "alert_key": selectors.alert_crossing_key(user_id=user.pk),
    }


def _period(request) -> tuple[PeriodForm, dict]:
    """The period asked for, or the current month when it is invalid (the form says why)."""
    form = PeriodForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data
    if not form.is_bound:
        form = PeriodForm(initial=PeriodForm.default_period())
    return form, PeriodForm.default_period()


@account_page
def statement_page(request):
    user = request.user
    form, period = _period(request)
    start_at, end_at = PeriodForm.bounds(period["start"], period["end"])
    summary = account_summary(user_id=user.pk, with_grants=True)
    period_statement = statement(user_id=user.pk, start=start_at, end=end_at)
    calls = selectors.calls_list(
        user_id=user.pk, start=start_at, end=end_at, model=period.get("model", "")
    )
    page = Paginator(calls, CALLS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    chart = bar_chart(
        selectors.daily_consumption(
            user_id=user.pk,
            start=period["start"],
            end=period["end"],
            model=period.get("model", ""),
        )
    )
    purchases = selectors.purchases_list(user_id=user.pk)
    context = {
        **_account_context(request, summary),
        "form": form,
        "period": period,
        "statement": period_statement,
        "other_entries": [
            (entry, entry_text(entry))
            for entry in period_statement.entries
            if entry.kind != LedgerEntry.Kind.USAGE
        ],
        "usage_count": sum(1 for e in period_statement.entries if e.kind == LedgerEntry.Kind.USAGE),
        "calls": page,
        "query": query.urlencode(),
        "models": selectors.call_models(user_id=user.pk),
        "chart": chart,
        "purchases": [(p, purchase_status(purchase=p)) for p in purchases],
    }
    return render(request, "portal/statement.html", context)


@account_page
def statement_print(request):
    """The period's statement on one printable page (the browser's print dialog saves a PDF)."""
    user = request.user
    form, period = _period(request)
    start_at, end_at = PeriodForm.bounds(period["start"], period["end"])
    period_statement = statement(user_id=user.pk, start=start_at, end=end_at)
    context = {
        "form": form,
        "period": period,
        "statement": period_statement,
        "lines": selectors.statement_lines(entries=period_statement.entries, describe=entry_text),
        "printed_at": timezone.now(),
    }
    return render(request, "portal/statement_print.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _spreadsheet_writer():
    """pt-BR spreadsheets split on `;` and need the UTF-8 mark to read accents; English ones use
    commas. Returns (writer, the bytes to start with)."""
    portuguese = not (translation.get_language() or "").startswith("en")
    writer = csv.writer(_Echo(), delimiter=";" if portuguese else ",")
    return writer, "\ufeff" if portuguese else ""


def _period_error(form: PeriodForm) -> HttpResponse:
    """A bad period on an export: 400 in the API's shape, naming the field."""
    param, errors = next(iter(form.errors.items()))
    return SolarisError(
        " ".join(str(error) for error in errors), param=None if param == "__all__" else param
    ).as_response()


def _csv_response(rows, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@account_page
def calls_csv(request):
    """Every call of the chosen period and model as CSV (the same filter as the page)."""
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return _period_error(form)
    period = form.cleaned_data
    start_at, end_at = PeriodForm.bounds(period["start"], period["end"])
    calls = selectors.calls_list(
        user_id=request.user.pk, start=start_at, end=end_at, model=period["model"]
    )
    writer, mark = _spreadsheet_writer()
    zone = timezone.get_current_timezone()
    headers = [
        _("Date"),
        _("Model"),
        _("Tokens in"),
        _("Tokens out"),
        _("Credits"),
        _("End"),
        _("HTTP code"),
        _("Streamed"),
        _("Request id"),
    ]

    def rows():
        yield mark + writer.writerow(headers)
        for call in calls.iterator():
            yield writer.writerow(
                [
                    call.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    csv_cell(call.model),
                    call.prompt_tokens,
                    call.completion_tokens,
                    call.credits,
                    csv_cell(label_of("end", call.end_reason)),
                    call.status_code,
                    _("yes") if call.stream else _("no"),
                    csv_cell(call.request_id),
                ]
            )

    return _csv_response(
        rows(), f"solaris-chamadas-{period['start']:%Y%m%d}-{period['end']:%Y%m%d}.csv"
    )


@account_page
def statement_csv(request):
    """The full statement of the period: opening balance, every movement, closing balance."""
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return _period_error(form)
    period = form.cleaned_data
    start_at, end_at = PeriodForm.bounds(period["start"], period["end"])
    period_statement = statement(user_id=request.user.pk, start=start_at, end=end_at)
    writer, mark = _spreadsheet_writer()
    zone = timezone.get_current_timezone()

    def rows():
        yield mark + writer.writerow(
            [_("Date"), _("Entry"), _("Description"), _("Credits"), _("Balance")]
        )
        yield writer.writerow(
            [
                start_at.strftime("%Y-%m-%d %H:%M:%S"),
                csv_cell(_("Opening balance")),
                "",
                "",
                period_statement.opening_balance,
            ]
        )
        for entry in period_statement.entries:
            yield writer.writerow(
                [
                    entry.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    csv_cell(label_of("entry", entry.kind)),
                    csv_cell(entry_text(entry)),
                    entry.amount,
                    entry.balance_after,
                ]
            )
        yield writer.writerow(
            [
                (end_at - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S"),
                csv_cell(_("Closing balance")),
                "",
                "",
                period_statement.closing_balance,
            ]
        )

    return _csv_response(
        rows(), f"solaris-extrato-{period['start']:%Y%m%d}-{period['end']:%Y%m%d}.csv"
    )


# --- API keys ---


@account_page
def api_keys_page(request):
    """List, create (the plaintext is shown on this one response only) and revoke keys."""
    form = ApiKeyCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, raw = api_key_create(user=request.user, name=form.cleaned_data["name"])
        created = {"key": key, "raw": raw}
        form = ApiKeyCreateForm()
    api_keys = ApiKey.objects.filter(user=request.user).order_by("revoked_at", "-created_at")
    response = render(
        request, "portal/api_keys.html", {"form": form, "api_keys": api_keys, "created": created}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@account_page
def api_key_revoke(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    key_revoke(key=key)
    messages.success(request, _("Key %(name)s revoked.") % {"name": key.name})
    return redirect("portal:api-keys")


# --- buying credits ---


def _order_context(purchase) -> dict:
    """A purchase as its order panel shows it: status, the PIX code or the instructions."""
    payload = purchase_payload(purchase=purchase)
    return {
        "purchase": purchase,
        "status": payload["status"],
        "pix": payload["pix"],
        "expires_at": purchase.payment.expires_at if payload["method"] == "pix" else None,
        "instructions": payload["instructions"],
        "poll_url": reverse("portal:api-purchase", args=[purchase.pk]),
        "panel_url": reverse("portal:order-panel", args=[purchase.pk]),
    }


@account_page
def purchase_page(request):
    summary = account_summary(user_id=request.user.pk)
    return render(request, "portal/purchase.html", _account_context(request, summary))


def _checkout_error(error: Exception) -> str:
    if isinstance(error, PaymentUnavailable):
        return _(
            "Mercado Pago did not answer. Try again in a moment: you will get the same charge."
        )
    if isinstance(error, PaymentRefused):
        return _("Mercado Pago refused this PIX charge. Try again later or write to %(email)s.") % {
            "email": settings.SOLARIS_PURCHASE_EMAIL
        }
    return " ".join(getattr(error, "messages", [str(error)]))


@account_page
def purchase_confirm(request, package_id: int):
    """One package: GET shows it; POST buys it (a PIX charge, or a manual request) and opens
    the order. Buying the same package again while its order is open returns that order."""
    package = get_object_or_404(CreditPackage, pk=package_id, active=True)
    form = PurchaseRequestForm(
        request.POST if request.method == "POST" else None, initial={"package": package}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid() and form.cleaned_data["package"] == package:
            lockout = throttle_take(request=request, throttle=PURCHASE, who=str(request.user.pk))
            if lockout is not None:
                return _throttled_page(request, lockout, str(PURCHASES_THROTTLED))
            try:
                checkout = purchase_checkout(user=request.user, package=package)
            except (ValidationError, PaymentUnavailable, PaymentRefused) as error:
                form.add_error(None, _checkout_error(error))
                status = 503 if isinstance(error, PaymentUnavailable) else 400
            else:
                return redirect("portal:order", checkout.purchase.pk)
        elif not form.errors:
            form.add_error(None, _("This is not the package of this page."))
    return render(
        request,
        "portal/purchase_confirm.html",
        {"package": package, "form": form, "checkout_method": selectors.checkout_method()},
        status=status,
    )


def _own_purchase(request, purchase_id: int):
    purchase = purchase_get(user_id=request.user.pk, purchase_id=purchase_id)
    if purchase is None:
        raise Http404
    if payment_refresh(purchase=purchase):
        purchase.refresh_from_db()
    return purchase


@account_page
def order_page(request, purchase_id: int):
    """One of the person's purchases: how to pay it (PIX code or instructions) and where it is."""
    purchase = _own_purchase(request, purchase_id)
    summary = account_summary(user_id=request.user.pk)
    context = {**_account_context(request, summary), "order": _order_context(purchase)}
    response = render(request, "portal/order.html", context)
    response["Cache-Control"] = "no-store"
    return response


@account_page
def order_panel(request, purchase_id: int):
    """The order's panel alone, for the pages' script to put in a modal or refresh in place."""
    purchase = _own_purchase(request, purchase_id)
    response = render(request, "portal/_order.html", {"order": _order_context(purchase)})
    response["Cache-Control"] = "no-store"
    return response


# --- the widget's API ---


# The person's API: a personal key, LibreChat's access token (the widget) or the session.
ME_AUTHENTICATION = [ApiKeyAuthentication, LibreChatJWTAuthentication, SessionAuthentication]


class BalanceView(WidgetCorsMixin, APIView):
    """GET /api/v1/me/balance: the numbers the statement page shows (session, API key or the
    LibreChat access token)."""

    authentication_classes = ME_AUTHENTICATION

    @extend_schema(
        summary="The caller's credits, as the statement page shows them",
        responses={
            200: inline_serializer(
                "Balance",
                {
                    "available": serializers.IntegerField(),
                    "balance": serializers.IntegerField(),
                    "held": serializers.IntegerField(),
                    "used_percent": serializers.DecimalField(max_digits=5, decimal_places=2),
                    "state": serializers.ChoiceField(choices=["normal", "alert", "blocked"]),
                    "plan": serializers.DictField(allow_null=True),
                    "renews_at": serializers.DateTimeField(allow_null=True),
                    "alert_threshold": serializers.IntegerField(),
                    "alert_key": serializers.CharField(),
                    "statement_url": serializers.URLField(),
                    "purchase_url": serializers.URLField(),
                    "purchase_email": serializers.EmailField(),
                    "packages": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request):
        summary = account_summary(user_id=request.user.pk)
        response = Response(selectors.balance_payload(user_id=request.user.pk, summary=summary))
        response["Cache-Control"] = "no-store"
        return response


PURCHASE_SCHEMA = inline_serializer(
    "MyPurchase",
    {
        "id": serializers.IntegerField(),
        "status": serializers.ChoiceField(choices=Payment.Status.values),
        "method": serializers.ChoiceField(choices=["pix", "manual"]),
        "package": serializers.IntegerField(allow_null=True),
        "credits": serializers.IntegerField(),
        "price_cents": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "pix": inline_serializer(
            "PixCharge",
            {
                "qr_code": serializers.CharField(help_text="PIX copia-e-cola"),
                "qr_code_base64": serializers.CharField(help_text="QR code, PNG in base64"),
                "ticket_url": serializers.URLField(allow_null=True),
                "expires_at": serializers.DateTimeField(),
            },
            allow_null=True,
        ),
        "instructions": serializers.CharField(allow_null=True),
    },
)


class PurchaseStartSerializer(serializers.Serializer):
    package = serializers.PrimaryKeyRelatedField(queryset=CreditPackage.objects.filter(active=True))


class PurchasesView(WidgetCorsMixin, APIView):
    """POST /api/v1/me/purchases: buy a package by PIX (a manual request without Mercado Pago)."""

    authentication_classes = ME_AUTHENTICATION
    cors_methods = "POST, OPTIONS"

    @extend_schema(
        summary="Buy a credit package: a PIX charge, or a manual request without Mercado Pago",
        description=(
            "201 with a new purchase; 200 with the open purchase of the same package when one is "
            "still pending (a double click never makes two charges)."
        ),
        request=PurchaseStartSerializer,
        responses={201: PURCHASE_SCHEMA, 200: PURCHASE_SCHEMA},
    )
    def post(self, request):
        serializer = PurchaseStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lockout = throttle_take(request=request, throttle=PURCHASE, who=str(request.user.pk))
        if lockout is not None:
            raise _throttled_error(lockout, str(PURCHASES_THROTTLED))
        try:
            checkout = purchase_checkout(
                user=request.user, package=serializer.validated_data["package"]
            )
        except ValidationError as error:
            raise SolarisError(" ".join(error.messages), param="package") from None
        except PaymentUnavailable:
            raise SolarisError(
                _(
                    "Mercado Pago did not answer. Try again in a moment: you will get the same charge."
                ),
                status=503,
                code="payment_provider_unavailable",
                type="api_error",
                headers={"Retry-After": "5"},
            ) from None
        except PaymentRefused:
            raise SolarisError(
                _("Mercado Pago refused this PIX charge. Try again later or write to %(email)s.")
                % {"email": settings.SOLARIS_PURCHASE_EMAIL},
                status=502,
                code="payment_refused",
                type="api_error",
            ) from None
        response = Response(
            purchase_payload(purchase=checkout.purchase), status=201 if checkout.created else 200
        )
        response["Cache-Control"] = "no-store"
        return response


class PurchaseDetailView(WidgetCorsMixin, APIView):
    """GET /api/v1/me/purchases/{id}: one of the caller's purchases with its current status."""

    authentication_classes = ME_AUTHENTICATION

    @extend_schema(
        summary="One of the caller's purchases, with its current status",
        responses={200: PURCHASE_SCHEMA},
    )
    def get(self, request, purchase_id: int):
        purchase = purchase_get(user_id=request.user.pk, purchase_id=purchase_id)
        if purchase is None:
            raise SolarisError(_("No such purchase."), status=404, code="not_found")
        if payment_refresh(purchase=purchase):
            purchase.refresh_from_db()
        response = Response(purchase_payload(purchase=purchase))
        response["Cache-Control"] = "no-store"
        return response


def _widget_next(data) -> str:
    """Where the sign-in link lands: a page of the account area, the statement by default."""
    target = data.get("next") if isinstance(data, dict) else None
    account = reverse("portal:statement")
    if isinstance(target, str) and target.startswith(account) and "//" not in target:
        return target
    return account


class WidgetLoginLinkView(WidgetCorsMixin, APIView):
    """POST /api/v1/me/login-link: a single-use, short-lived URL that signs the LibreChat user in
    on Solaris, so no long-lived secret is ever put in a URL."""

    authentication_classes = [LibreChatJWTAuthentication, SessionAuthentication]
    cors_methods = "POST, OPTIONS"

    @extend_schema(
        summary="A single-use sign-in URL for the widget's statement link",
        request=inline_serializer(
            "LoginLinkRequest", {"next": serializers.CharField(required=False)}
        ),
        responses={
            200: inline_serializer(
                "LoginLink",
                {"url": serializers.URLField(), "expires_in": serializers.IntegerField()},
            )
        },
    )
    def post(self, request):
        # The body first: a request whose body cannot be read leaves no link behind.
        target = _widget_next(request.data)
        lockout = throttle_take(request=request, throttle=SIGN_IN_LINK, who=str(request.user.pk))
        if lockout is not None:
            raise _throttled_error(
                lockout, _("Too many sign-in links asked for from your connection.")
            )
        ttl = timedelta(seconds=settings.SOLARIS_WIDGET_LINK_TTL_SECONDS)
        _link, raw = login_link_create(
            user=request.user, channel=LoginLink.Channel.LIBRECHAT, ttl=ttl
        )
        url = _login_link_url(raw) + "?" + urlencode({"next": target})
        response = Response({"url": url, "expires_in": settings.SOLARIS_WIDGET_LINK_TTL_SECONDS})
        response["Cache-Control"] = "no-store"
        return response
