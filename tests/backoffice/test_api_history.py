"""Day-to-day automation through the admin API: suspend and reactivate, cancel and refund, and the
ledger, calls and purchases as filtered cursor pages and CSV."""

import csv
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from accounts.models import User
from accounts.services import api_key_create
from credits.models import LedgerEntry, Purchase
from credits.selectors import account_summary
from credits.services import credits_grant, hold_create, purchase_confirm, purchase_request
from proxy.models import CallRecord
from tests.backoffice.conftest import spend, staff
from tests.backoffice.test_api import BASE, assert_error
from tests.factories import UserFactory


@pytest.fixture
def api(client, staff_key):
    def call(method, path, body=None, *, key=staff_key, **query):
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        if query:
            path = f"{path}?{urlencode(query)}"
        return getattr(client, method)(BASE + path, HTTP_AUTHORIZATION=f"Bearer {key}", **kwargs)

    return call


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com", name="Carla")


@pytest.fixture
def history(customer, admin_user, price):
    """Two customers with grants, usage and calls: something to filter."""
    other = UserFactory(email="outro@example.com")
    credits_grant(user=customer, amount=5000, idempotency_key="h1", reason="=cmd|' /C calc'!A0")
    for n in range(3):
        spend(customer, price, request_id=f"c-{n}")
    spend(other, price, request_id="o-1")
    CallRecord.objects.create(
        request_id="refused-1",
        user=customer,
        model="gpt-outro",
        status_code=429,
        end_reason=CallRecord.EndReason.REFUSED,
        error_code="insufficient_quota",
    )
    return customer, other


def csv_rows(response) -> list[dict]:
    """The rows of a CSV answer, read as the ASGI server reads them (an async stream)."""
    assert response["Content-Type"].startswith("text/csv")

    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    text = async_to_sync(read)().decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- suspend / reactivate ---


def test_suspend_and_reactivate(api, customer, admin_user):
    response = api("post", f"users/{customer.pk}/suspend", {"reason": "Chargeback"})
    assert response.status_code == 200 and response.json()["is_suspended"] is True
    assert User.objects.get(pk=customer.pk).is_suspended
    assert api("post", f"users/{customer.pk}/suspend", {"reason": "de novo"}).status_code == 200
    response = api("post", f"users/{customer.pk}/reactivate", {"reason": "Pago"})
    assert response.json()["is_suspended"] is False
    history = list(
        LogEntry.objects.filter(object_id=str(customer.pk))
        .order_by("action_time")
        .values_list("change_message", "user_id")
    )
    assert history == [
        ("Suspenso: Chargeback", admin_user.pk),
        ("Reativado: Pago", admin_user.pk),
    ]


def test_suspend_needs_a_reason_and_the_right(api, customer):
    assert_error(
        api("post", f"users/{customer.pk}/suspend", {}), 400, "invalid_request_error", "reason"
    )
    assert_error(api("post", "users/999999/suspend", {"reason": "x"}), 404, "not_found")
    for group in ("Financeiro", "Suporte"):
        key = api_key_create(user=staff(f"{group}@solaris.test", group=group))[1]
        response = api("post", f"users/{customer.pk}/suspend", {"reason": "x"}, key=key)
        assert_error(response, 403, "permission_denied")
    assert not User.objects.get(pk=customer.pk).is_suspended


# --- purchases: list, cancel, refund ---


def test_purchase_queue_cancel_and_refund(api, customer, admin_user):
    waiting = purchase_request(user=customer, idempotency_key="w", credits=1000, price_cents=500)
    paid = purchase_request(user=customer, idempotency_key="p", credits=2000, price_cents=900)
    purchase_confirm(purchase=paid, confirmed_by=admin_user)
    queue = api("get", "purchases", status="requested").json()
    assert [row["id"] for row in queue["results"]] == [waiting.pk]

    cancelled = api("post", f"purchases/{waiting.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api("post", f"purchases/{waiting.pk}/cancel").status_code == 200
    assert_error(api("post", f"purchases/{paid.pk}/cancel"), 400, "purchase_not_cancellable")

    before = account_summary(user_id=customer.pk).available
    assert_error(
        api("post", f"purchases/{paid.pk}/refund", {}), 400, "invalid_request_error", "reason"
    )
    refunded = api("post", f"purchases/{paid.pk}/refund", {"reason": "Desistência"})
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert account_summary(user_id=customer.pk).available == before - 2000
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.REFUND)
    assert (entry.amount, entry.created_by, entry.reason) == (-2000, admin_user, "Desistência")
    again = api("post", f"purchases/{paid.pk}/refund", {"reason": "de novo"})
    assert again.status_code == 200
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).count() == 1
    assert_error(
        api("post", f"purchases/{waiting.pk}/refund", {"reason": "x"}),
        400,
        "purchase_not_refundable",
    )
    assert_error(api("post", "purchases/424242/cancel"), 404, "not_found")


def test_refund_while_calls_hold_the_credits_is_409(api, customer, admin_user, price):
    purchase = purchase_request(user=customer, idempotency_key="h", credits=500, price_cents=100)
    purchase_confirm(purchase=purchase, confirmed_by=admin_user)
    available = account_summary(user_id=customer.pk).available
    # An open call holds all but 400 credits: the purchase's 500 are partly in use.
    prompt = (available - 400) * 2 // 3  # input weight 1.5
    hold_create(user=customer, request_id="open-1", price=price, prompt_tokens=prompt, max_tokens=1)
    assert 0 < account_summary(user_id=customer.pk).available < 500
    response = api("post", f"purchases/{purchase.pk}/refund", {"reason": "x"})
    assert_error(response, 409, "credits_in_use")
    assert Purchase.objects.get(pk=purchase.pk).status == Purchase.Status.CREDITED


def test_cancel_and_refund_rights(api, customer, admin_user):
    waiting = purchase_request(user=customer, idempotency_key="w", credits=1000, price_cents=500)
    support = api_key_create(user=staff("s@solaris.test", group="Suporte"))[1]
    assert api("get", "purchases", key=support).status_code == 200
    assert_error(
        api("post", f"purchases/{waiting.pk}/cancel", key=support), 403, "permission_denied"
    )
    finance = api_key_create(user=staff("f@solaris.test", group="Financeiro"))[1]
    assert api("post", f"purchases/{waiting.pk}/cancel", key=finance).status_code == 200


# --- ledger and calls ---


def test_ledger_filters(api, history):
    customer, _other = history
    everything = api("get", "ledger").json()
    assert set(everything) == {"next", "previous", "results"}
    ids = [row["id"] for row in everything["results"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == LedgerEntry.objects.count()
    usage = api("get", "ledger", user=customer.email, kind="usage").json()["results"]
    assert len(usage) == 3 and {row["user_email"] for row in usage} == {customer.email}
    assert {row["model"] for row in usage} == {"gpt-test"} and all(
        row["amount"] < 0 for row in usage
    )
    grants = api("get", "ledger", user=customer.pk, kind="grant").json()["results"]
    assert sorted(row["amount"] for row in grants) == [5000, 100_000]
    assert {row["source"] for row in grants} == {"manual", "plan_cycle"}
    today = timezone.localdate()
    assert len(api("get", "ledger", start=today.isoformat()).json()["results"]) == len(ids)
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert api("get", "ledger", start=tomorrow).json()["results"] == []
    assert len(api("get", "ledger", end=today.isoformat()).json()["results"]) == len(ids)
    yesterday = (today - timedelta(days=1)).isoformat()
    assert api("get", "ledger", end=yesterday).json()["results"] == []
    assert api("get", "ledger", flagged="true").json()["results"] == []


def test_calls_filters(api, history):
    customer, _other = history
    mine = api("get", "calls", user=customer.email).json()["results"]
    assert len(mine) == 4
    refused = api("get", "calls", status=429).json()["results"]
    assert [row["request_id"] for row in refused] == ["refused-1"]
    assert api("get", "calls", end_reason="refused", model="gpt-outro").json()["results"] == refused
    assert len(api("get", "calls", model="gpt-test").json()["results"]) == 4
    moment = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert api("get", "calls", start=moment).json()["results"] == []


def test_cursor_pages_walk_every_row_once(api, history):
    seen, path = [], "ledger?limit=2"
    for _page in range(20):
        response = api("get", path)
        assert response.status_code == 200
        page = response.json()
        assert len(page["results"]) <= 2
        seen.extend(row["id"] for row in page["results"])
        if not page["next"]:
            break
        parts = urlsplit(page["next"])
        path = "ledger?" + urlencode({k: v[0] for k, v in parse_qs(parts.query).items()})
    assert seen == sorted(LedgerEntry.objects.values_list("id", flat=True), reverse=True)


def test_csv_exports_follow_the_filters(api, history):
    customer, _other = history
    rows = csv_rows(api("get", "ledger.csv", user=customer.pk, kind="grant"))
    assert {row["kind"] for row in rows} == {"grant"} and len(rows) == 2
    manual = next(row for row in rows if row["source"] == "manual")
    assert manual["reason"].startswith("'=")  # a spreadsheet does not run it
    assert manual["user_email"] == customer.email and manual["amount"] == "5000"
    calls = csv_rows(api("get", "calls.csv", status=200))
    assert len(calls) == 4 and {row["status_code"] for row in calls} == {"200"}
    assert list(calls[0]) == list(api("get", "calls").json()["results"][0])
    response = api("get", "ledger.csv", kind="nada")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 400, "invalid_request_error", "kind")


def test_csv_streams_in_chunks_every_row_once(api, history, monkeypatch):
    from backoffice import api_history

    monkeypatch.setattr(api_history, "CSV_CHUNK", 2)
    rows = csv_rows(api("get", "ledger.csv"))
    ids = [int(row["id"]) for row in rows]
    assert ids == sorted(LedgerEntry.objects.values_list("id", flat=True), reverse=True)
    assert len(ids) > 4  # several chunks


def test_csv_answers_whatever_the_accept_header(client, staff_key, history):
    response = client.get(
        BASE + "calls.csv", HTTP_AUTHORIZATION=f"Bearer {staff_key}", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200 and len(csv_rows(response)) == 5
    response = client.get(
        BASE + "calls.csv?status=abc",
        HTTP_AUTHORIZATION=f"Bearer {staff_key}",
        HTTP_ACCEPT="text/csv",
    )
    assert_error(response, 400, "invalid_request_error", "status")


BAD_FILTERS = [
    ("ledger", {"kind": "presente"}, "kind"),
    ("ledger", {"user": "ninguem@example.com"}, "user"),
    ("ledger", {"user": "9" * 40}, "user"),
    ("ledger", {"user": "a\x00b"}, "user"),
    ("ledger", {"user": "x" * 300}, "user"),
    ("ledger", {"flagged": "talvez"}, "flagged"),
    ("ledger", {"start": "ontem"}, "start"),
    ("ledger", {"start": "2026-02-30"}, "start"),
    ("ledger", {"end": "9999-12-31"}, "end"),
    ("ledger", {"start": "9999-12-30"}, "start"),
    ("ledger", {"start": "0001-01-01"}, "start"),
    ("ledger", {"start": "2026-01-31T25:00:00Z"}, "start"),
    ("ledger", {"start": "2026-02-01", "end": "2026-01-01"}, "end"),
    ("ledger", {"limit": "0"}, "limit"),
    ("ledger", {"limit": "10000"}, "limit"),
    ("ledger", {"limit": "-1"}, "limit"),
    ("ledger", {"limit": "١٢"}, "limit"),
    ("ledger", {"cursor": "lixo"}, "cursor"),
    ("ledger", {"cursor": "cD1hYmM="}, "cursor"),  # p=abc
    ("ledger", {"cursor": "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk="}, "cursor"),  # p=huge
    ("ledger", {"cursor": "ü"}, "cursor"),
    ("calls", {"status": "abc"}, "status"),
    ("calls", {"status": "99999999999999999999999"}, "status"),
    ("calls", {"end_reason": "nenhum"}, "end_reason"),
    ("calls", {"model": "m\x00"}, "model"),
    ("calls", {"model": "m" * 201}, "model"),
    ("purchases", {"status": "pago"}, "status"),
    ("users", {"search": "a\x00"}, "search"),
    ("users", {"offset": "1" * 30}, "offset"),
    ("users", {"limit": "abc"}, "limit"),
    ("grant-requests", {"status": "sim"}, "status"),
]


@pytest.mark.parametrize(("path", "query", "param"), BAD_FILTERS)
def test_bad_filters_are_a_400_naming_the_parameter(api, customer, path, query, param):
    assert_error(api("get", path, **query), 400, "invalid_request_error", param)


def test_history_rights(api, history):
    support = api_key_create(user=staff("s@solaris.test", group="Suporte"))[1]
    for path in ("ledger", "ledger.csv", "calls", "calls.csv", "purchases", "grant-requests"):
        assert api("get", path, key=support).status_code == 200, path
    _key, raw = api_key_create(user=history[0])
    for path in ("ledger", "ledger.csv", "calls", "calls.csv"):
        assert_error(api("get", path, key=raw), 403, "permission_denied")
    assert_error(api("get", "ledger", key="sol-x"), 401, "invalid_api_key")


@pytest.mark.parametrize(
    "path",
    [
        "users/99999999999999999999999/suspend",
        "purchases/99999999999999999999999/refund",
        "purchases/99999999999999999999999/cancel",
        "grant-requests/99999999999999999999999/approve",
    ],
)
def test_huge_ids_in_paths_are_404(api, db, path):
    assert_error(api("post", path, {"reason": "x"}), 404, "not_found")


@pytest.mark.parametrize("user", ["a\x00b@example.com", "x" * 300, {"id": 1}, True, 10**30])
def test_hostile_user_values_in_bodies_are_a_400(api, customer, user):
    body = {"user": user, "amount": 5, "reason": "x", "idempotency_key": "hostil"}
    assert_error(api("post", "grants", body), 400, "invalid_request_error", "user")
    assert not LedgerEntry.objects.filter(idempotency_key="grant:api:hostil").exists()


def test_every_admin_endpoint_is_in_the_openapi_schema(db):
    import re

    from drf_spectacular.generators import SchemaGenerator

    from backoffice.urls import urlpatterns

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = set(schema["paths"])
    for pattern in urlpatterns:
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        assert f"/api/v1/admin/{route}" in documented, route
    csv_answer = schema["paths"]["/api/v1/admin/calls.csv"]["get"]["responses"]["200"]
    assert list(csv_answer["content"]) == ["text/csv"]
