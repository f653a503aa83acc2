"""Pieces shared by the admin classes of accounts, credits and proxy."""

import csv
import itertools
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from kernel.formats import credits_text, money_text, signed_credits_text
from kernel.spreadsheet import csv_cell

# Badges are white text on these tones (static/backoffice/admin.css: each at least 4.5:1).
STATE_TONES = {"normal": "ok", "alert": "warn", "blocked": "bad"}


def tone_badge(tone: str, label: str, *, extra_class: str = "") -> SafeString:
    """A status pill: tone is ok, warn, bad, info or muted."""
    return format_html('<span class="badge badge-{} {}">{}</span>', tone, extra_class, label)


def email_cell(email: str) -> SafeString:
    """An e-mail that may wrap after its @ and before its dots, never inside a word, so a list
    with long addresses still fits its column."""
    parts = re.split(r"(?<=@)|(?=\.)", email)
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts))


def state_badge(state: str, label: str) -> SafeString:
    return tone_badge(
        STATE_TONES.get(state, "muted"), label, extra_class=f"credit-state credit-state-{state}"
    )


def form_page(request: HttpRequest, model_admin: admin.ModelAdmin, *, title: str, **context):
    """Render an intermediate admin form page (add credits, change plan, refund…)."""
    return TemplateResponse(
        request,
        "backoffice/form_page.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.model._meta,
            **context,
        },
    )


def require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is never rewritten from admin, not even by a superuser. Every field shown is
    read-only, so `fields` may name display methods (formatted credits, money) as well."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    *, name: str, header: list[str], rows: Iterable[Iterable] | AsyncIterable[Iterable]
) -> StreamingHttpResponse:
    """A CSV download streamed row by row, each cell guarded against spreadsheet formulas.

    Rows from an async iterable stream under ASGI as they are read; a plain iterable is read whole
    first there (Django's rule for synchronous iterators), which suits short lists only.
    """
    writer = csv.writer(_Echo())

    def line(row: Iterable) -> str:
        return writer.writerow([csv_cell(value) for value in row])

    content: Iterable[str] | AsyncIterable[str]
    if isinstance(rows, AsyncIterable):

        async def async_lines() -> AsyncIterator[str]:
            yield writer.writerow(header)
            async for row in rows:
                yield line(row)

        content = async_lines()
    else:
        content = itertools.chain([writer.writerow(header)], map(line, rows))
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


class CsvExportAdmin(admin.ModelAdmin):
    """Adds "export-csv/" next to the changelist: the list as filtered, searched and sorted now."""

    csv_columns: list[tuple[str | Promise, Callable]] = []  # (header, row → value)
    change_list_template = "backoffice/change_list_csv.html"

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_export_csv"
        export = self.admin_site.admin_view(self.export_csv_view)
        return [path("export-csv/", export, name=name), *super().get_urls()]

    def export_csv_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = changelist.queryset.iterator(chunk_size=2000)
        return csv_response(
            name=str(self.model._meta.model_name),
            header=[str(header) for header, _getter in self.csv_columns],
            rows=([getter(row) for _header, getter in self.csv_columns] for row in rows),
        )

    def changelist_view(self, request, extra_context=None):
        opts = self.model._meta
        extra_context = {
            **(extra_context or {}),
            "csv_export_url_name": f"admin:{opts.app_label}_{opts.model_name}_export_csv",
            "csv_export_label": _("Export CSV"),
        }
        return super().changelist_view(request, extra_context)


def number_column(field: str, description, *, signed: bool = False):
    """A list column (or read-only detail field) showing an integer field (credits, tokens) with
    the thousands separator, signed for movements."""
    text = signed_credits_text if signed else credits_text

    @admin.display(description=description, ordering=field)
    def column(_model_admin, obj) -> str:
        return text(getattr(obj, field))

    return column


def money_column(field: str, description):
    """A list column (or read-only detail field) showing an integer field of cents in R$."""

    @admin.display(description=description, ordering=field)
    def column(_model_admin, obj) -> str:
        return money_text(getattr(obj, field))

    return column


def date_column(field: str, description):
    """A list column showing a date and time short (30/11/2026 18:45), so lists fit."""

    @admin.display(description=description, ordering=field)
    def column(_model_admin, obj) -> str:
        moment = getattr(obj, field)
        return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT") if moment else "—"

    return column
