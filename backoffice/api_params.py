"""Query parameters and pages of the admin API, read strictly: a value that cannot be used is a 400
naming the parameter, never a 500 and never silently ignored."""

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, LimitOffsetPagination

from accounts.models import User
from kernel.errors import SolarisError

MAX_TEXT = 254
BIGINT = 2**63 - 1
# Periods are read in this range: enough for any real record, far from datetime's own limits.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)
USER = OpenApiParameter("user", str, description="User id or e-mail.")
PERIOD = [
    OpenApiParameter(
        "start",
        str,
        description="From this date (2026-01-31, a local day) or date and time (ISO 8601), "
        "included.",
    ),
    OpenApiParameter(
        "end",
        str,
        description="Up to this date (the whole day included) or date and time (excluded).",
    ),
]


def text(request, name: str, *, max_length: int = MAX_TEXT) -> str:
    """The stripped value, "" when absent; NUL bytes and over-long values are refused."""
    value = request.query_params.get(name, "")
    if "\x00" in value or len(value) > max_length:
        raise SolarisError(
            _("%(name)s must be text of at most %(count)s characters.")
            % {"name": name, "count": max_length},
            param=name,
        )
    return value.strip()


def choice(request, name: str, choices: list[str]) -> str | None:
    value = text(request, name)
    if not value:
        return None
    if value not in choices:
        raise SolarisError(
            _("%(name)s must be one of: %(choices)s.")
            % {"name": name, "choices": ", ".join(choices)},
            param=name,
        )
    return value


def whole(request, name: str, *, low: int, high: int) -> int | None:
    value = text(request, name)
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise SolarisError(
            _("%(name)s must be a whole number from %(low)s to %(high)s.")
            % {"name": name, "low": low, "high": high},
            param=name,
        )
    return int(value)


def boolean(request, name: str) -> bool | None:
    value = text(request, name).lower()
    if not value:
        return None
    if value not in ("true", "false", "1", "0"):
        raise SolarisError(_("%(name)s must be true or false.") % {"name": name}, param=name)
    return value in ("true", "1")


def user(request, name: str = "user") -> User | None:
    """A user given by id or e-mail; an unknown one is a 400 (a typo must not look like "none")."""
    value = text(request, name)
    if not value:
        return None
    found = (
        User.objects.filter(pk=int(value)).first()
        if value.isascii() and value.isdigit() and int(value) <= BIGINT
        else User.objects.filter(email__iexact=value).first()
    )
    if found is None:
        raise SolarisError(_("Unknown user: %(value)s.") % {"value": value}, param=name)
    return found


def _moment(request, name: str, *, day_end: bool) -> datetime | None:
    value = text(request, name, max_length=40)
    if not value:
        return None
    refusal = SolarisError(
        _(
            "%(name)s must be a date (2026-01-31) or a date and time (2026-01-31T12:00:00Z) "
            "between %(first)s and %(last)s."
        )
        % {"name": name, "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
        param=name,
    )
    try:
        day = parse_date(value)
        moment = None if day is not None else parse_datetime(value)
    except ValueError:
        raise refusal from None
    if moment is not None:
        day = moment.date()
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise refusal
    if moment is None:
        # A bare date is a whole local day: from its start, or up to its end.
        start = datetime.combine(day + timedelta(days=1) if day_end else day, time.min)
        return timezone.make_aware(start)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def period(request) -> tuple[datetime | None, datetime | None]:
    """`start` (included) and `end` (excluded; a bare date includes that whole day)."""
    start = _moment(request, "start", day_end=False)
    end = _moment(request, "end", day_end=True)
    if start is not None and end is not None and start >= end:
        raise SolarisError(_("end must be after start."), param="end")
    return start, end


def in_period(rows: QuerySet, request, field: str = "created_at") -> QuerySet:
    start, end = period(request)
    if start is not None:
        rows = rows.filter(**{f"{field}__gte": start})
    if end is not None:
        rows = rows.filter(**{f"{field}__lt": end})
    return rows


class Pages(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_limit(self, request):
        return whole(request, "limit", low=1, high=self.max_limit) or self.default_limit

    def get_offset(self, request):
        return whole(request, "offset", low=0, high=BIGINT) or 0


class Cursor(CursorPagination):
    """Newest first, by id: stable while rows are added, whatever their timestamps."""

    ordering = "-id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"

    def get_page_size(self, request):
        return whole(request, "limit", low=1, high=self.max_page_size) or self.page_size

    def decode_cursor(self, request):
        refusal = SolarisError(
            _("Invalid cursor: use the next or previous link as it was given."), param="cursor"
        )
        text(request, self.cursor_query_param, max_length=1000)
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise refusal from None
        position = str(cursor.position) if cursor and cursor.position is not None else None
        if position is not None and not (
            position.isascii() and position.isdigit() and int(position) <= BIGINT
        ):
            raise refusal
        return cursor
