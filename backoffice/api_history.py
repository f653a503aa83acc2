"""The ledger and the calls in the admin API (docs/admin.md): filtered lists, newest
first with cursor pages, and the same lists as CSV, with the rights of the admin's read-only lists."""

from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from backoffice import api_params as params
from backoffice import serializers as s
from backoffice.admin_tools import csv_response
from backoffice.api import ERRORS, AdminApiView
from credits.models import LedgerEntry
from proxy.models import CallRecord

LEDGER_FILTERS = [
    params.USER,
    OpenApiParameter("kind", str, enum=LedgerEntry.Kind.values),
    OpenApiParameter("flagged", bool, description="Usage above its hold."),
    *params.PERIOD,
]
CALL_FILTERS = [
    params.USER,
    OpenApiParameter("model", str, description="Exact model name."),
    OpenApiParameter("status", int, description="HTTP status answered, e.g. 200 or 429."),
    OpenApiParameter("end_reason", str, enum=CallRecord.EndReason.values),
    *params.PERIOD,
]
CSV_ANSWER = {
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.STR,
        description="One header line with the JSON list's field names, then one line per row "
        "(cells a spreadsheet would run as formulas start with ').",
    )
}


# Rows read per query while a CSV streams: newest first, by id, each chunk after the last one.
CSV_CHUNK = 2000


class JsonErrors(BaseContentNegotiation):
    """The CSV views answer CSV, and their errors JSON, whatever the client's Accept header."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class HistoryList(AdminApiView):
    """A filtered list: JSON pages from `page`, or every row as one CSV download from `csv`."""

    pagination_class: type[BasePagination] | None = params.Cursor
    row_serializer: type[Serializer]
    csv_name = ""

    def rows(self) -> QuerySet:
        raise NotImplementedError

    def page(self) -> Response:
        page = self.paginate_queryset(self.rows())
        return self.get_paginated_response(self.row_serializer(page, many=True).data)

    def csv(self) -> StreamingHttpResponse:
        # Filters are read now, so a bad one is a 400 before the download starts.
        rows = self.rows()
        serializer = self.row_serializer

        def chunk(before: int | None) -> list[tuple[int, list]]:
            part = rows if before is None else rows.filter(id__lt=before)
            return [(row.pk, list(serializer(row).data.values())) for row in part[:CSV_CHUNK]]

        async def stream() -> AsyncIterator[list]:
            before = None
            while found := await sync_to_async(chunk)(before):
                for _pk, values in found:
                    yield values
                before = found[-1][0]

        return csv_response(name=self.csv_name, header=list(serializer().fields), rows=stream())


class LedgerList(HistoryList):
    required_permissions = {"GET": ("credits.view_ledgerentry",)}
    serializer_class = row_serializer = s.LedgerEntryOutSerializer

    def rows(self) -> QuerySet:
        request = self.request
        entries = LedgerEntry.objects.select_related("account__user", "created_by", "grant", "hold")
        user = params.user(request)
        if user is not None:
            entries = entries.filter(account_id=user.pk)
        kind = params.choice(request, "kind", LedgerEntry.Kind.values)
        if kind:
            entries = entries.filter(kind=kind)
        flagged = params.boolean(request, "flagged")
        if flagged is not None:
            entries = entries.filter(flagged=flagged)
        return params.in_period(entries, request).order_by("-id")

    @extend_schema(
        summary="Ledger entries, newest first",
        parameters=LEDGER_FILTERS,
        responses={200: s.LedgerEntryOutSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        return self.page()


class LedgerCsv(LedgerList):
    pagination_class = None
    content_negotiation_class = JsonErrors
    csv_name = "ledger"

    @extend_schema(
        summary="Ledger entries as CSV (the list's filters, every row)",
        parameters=LEDGER_FILTERS,
        responses={**CSV_ANSWER, **ERRORS},
    )
    def get(self, request):
        return self.csv()


class CallList(HistoryList):
    required_permissions = {"GET": ("proxy.view_callrecord",)}
    serializer_class = row_serializer = s.CallOutSerializer

    def rows(self) -> QuerySet:
        request = self.request
        calls = CallRecord.objects.select_related("user")
        user = params.user(request)
        if user is not None:
            calls = calls.filter(user=user)
        model = params.text(request, "model", max_length=200)
        if model:
            calls = calls.filter(model=model)
        status = params.whole(request, "status", low=100, high=599)
        if status is not None:
            calls = calls.filter(status_code=status)
        end_reason = params.choice(request, "end_reason", CallRecord.EndReason.values)
        if end_reason:
            calls = calls.filter(end_reason=end_reason)
        return params.in_period(calls, request).order_by("-id")

    @extend_schema(
        summary="Calls through the proxy, newest first",
        parameters=CALL_FILTERS,
        responses={200: s.CallOutSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        return self.page()


class CallCsv(CallList):
    pagination_class = None
    content_negotiation_class = JsonErrors
    csv_name = "calls"

    @extend_schema(
        summary="Calls as CSV (the list's filters, every row)",
        parameters=CALL_FILTERS,
        responses={**CSV_ANSWER, **ERRORS},
    )
    def get(self, request):
        return self.csv()
