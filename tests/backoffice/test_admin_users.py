import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.selectors import key_find
from accounts.services import api_key_create
from credits.models import Grant, LedgerEntry
from credits.selectors import account_summary
from tests.backoffice.conftest import count_queries, spend
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory

LIST = reverse("admin:accounts_user_changelist")


def add_url(user):
    return reverse("admin:accounts_user_add_credits", args=[user.pk])


def form_key(response) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', response.text).group(1)


def rows(response) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", response.text.replace("\n", " "))


@pytest.fixture
def customers(plan, price):
    """Three customers: one normal, one in alert (≥ 80 % used), one blocked (nothing left)."""
    normal = UserFactory(email="normal@example.com", name="Nina Normal")
    alert = UserFactory(email="alerta@example.com", name="Alice Alerta")
    blocked = UserFactory(email="bloqueado@example.com", name="Bruno Bloqueado")
    # price: 1.5 per prompt token, 3 per completion token; the plan grants 100 000.
    spend(alert, price, request_id="a1", prompt=20_000, completion=20_000)  # 90 000 used
    flat = ModelPriceFactory(model="gpt-flat", input_weight="1", output_weight="1")
    spend(blocked, flat, request_id="b1", prompt=50_000, completion=50_000)  # all 100 000
    return normal, alert, blocked


def test_list_shows_plan_available_used_state_and_last_call(admin_client, customers):
    normal, alert, blocked = customers
    response = admin_client.get(LIST)
    assert response.status_code == 200
    by_email = {
        user.email: row for row in rows(response) for user in customers if user.email in row
    }
    assert "Basico" in by_email[normal.email]
    assert "100.000" in by_email[normal.email] and "0,00 %" in by_email[normal.email]
    assert "credit-state-normal" in by_email[normal.email]
    assert "10.000" in by_email[alert.email] and "90,00 %" in by_email[alert.email]
    assert "credit-state-alert" in by_email[alert.email]
    assert "credit-state-blocked" in by_email[blocked.email]
    assert "100,00 %" in by_email[blocked.email]
    assert "—" in by_email[normal.email]  # never called
    for user in (alert, blocked):
        assert account_summary(user_id=user.pk).state in by_email[user.email]


@pytest.mark.parametrize(
    ("state", "expected"),
    [("normal", ["normal@"]), ("alert", ["alerta@"]), ("blocked", ["bloqueado@"])],
)
def test_filter_by_state(admin_client, customers, admin_user, state, expected):
    response = admin_client.get(LIST, {"credit_state": state})
    shown = [email for email in ("normal@", "alerta@", "bloqueado@") if email in response.text]
    assert shown == expected
    assert admin_user.email not in response.text  # staff without an account is in no state


def test_filter_by_plan_and_search(admin_client, customers):
    pro = PlanFactory(slug="pro", name="Profissional", monthly_allowance=1_000_000)
    UserFactory(email="pro@example.com", name="Paula Pro", plan_slug="pro")
    response = admin_client.get(LIST, {"subscription__plan__id__exact": pro.pk})
    assert "pro@example.com" in response.text and "normal@example.com" not in response.text
    response = admin_client.get(LIST, {"q": "Alice"})
    assert "alerta@example.com" in response.text and "normal@example.com" not in response.text
    response = admin_client.get(LIST, {"q": "bloqueado@"})
    assert "bloqueado@example.com" in response.text and "alerta@example.com" not in response.text


def test_sort_by_available_and_used_percent(admin_client, customers):
    normal, alert, blocked = customers
    columns = list(admin_client.get(LIST).context["cl"].list_display)
    available = columns.index("available")
    used = columns.index("used_percent")

    def order(param):
        response = admin_client.get(LIST, {"o": param, "q": "example.com"})
        return [user.email for user in response.context["cl"].result_list]

    assert order(f"{available}") == [blocked.email, alert.email, normal.email]
    assert order(f"-{available}") == [normal.email, alert.email, blocked.email]
    assert order(f"-{used}") == [blocked.email, alert.email, normal.email]


def test_list_query_count_is_constant_in_users(admin_client, plan, price):
    def make(count, start):
        for index in range(start, start + count):
            user = UserFactory(email=f"u{index}@example.com")
            spend(user, price, request_id=f"r{index}")

    make(3, 0)
    customers_only = {"q": "@example.com"}
    admin_client.get(LIST, customers_only)  # warm the session and content-type caches
    few, response = count_queries(lambda: admin_client.get(LIST, customers_only))
    assert len(response.context["cl"].result_list) == 3
    make(27, 3)
    admin_client.get(LIST, customers_only)  # new subscriptions emptied the blocked lines' cache
    many, response = count_queries(lambda: admin_client.get(LIST, customers_only))
    assert len(response.context["cl"].result_list) == 30
    assert few == many


def test_detail_page_shows_grants_keys_calls_and_history(admin_client, customers, price):
    _normal, alert, _blocked = customers
    key, raw = api_key_create(user=alert, name="k")
    response = admin_client.get(reverse("admin:accounts_user_change", args=[alert.pk]))
    assert response.status_code == 200
    page = response.text
    assert 'id="user-grants"' in page and "100.000" in page  # the plan grant
    assert f"{key.prefix}…" in page and raw not in page and key.key_hash not in page
    assert 'id="user-calls"' in page and price.model in page
    assert add_url(alert) in page


def test_add_credits_form_has_one_time_key_and_grants(admin_client, admin_user, customers):
    normal, _alert, _blocked = customers
    form = admin_client.get(add_url(normal))
    assert form.status_code == 200
    key = form_key(form)
    assert key != form_key(admin_client.get(add_url(normal)))  # a new key per form shown
    expires = (timezone.localdate() + timedelta(days=30)).isoformat()
    response = admin_client.post(
        add_url(normal),
        {
            "amount": "500000",
            "reason": "Pagamento PIX",
            "payment_reference": "PIX-42",
            "expires_on": expires,
            "idempotency_key": key,
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "600.000" in response.text  # the list shows the new available amount
    grant = Grant.objects.get(account_id=normal.pk, source=Grant.Source.MANUAL)
    assert grant.amount == 500_000 and grant.created_by == admin_user
    assert timezone.localtime(grant.expires_at).date() == timezone.localdate() + timedelta(days=30)
    entry = LedgerEntry.objects.get(grant=grant)
    assert entry.created_by == admin_user
    assert entry.reason == "Pagamento PIX (ref. PIX-42)"
    log = LogEntry.objects.get(object_id=str(normal.pk))
    assert log.user == admin_user and "Pagamento PIX" in log.get_change_message()


def test_double_submission_grants_once(admin_client, customers):
    normal = customers[0]
    key = form_key(admin_client.get(add_url(normal)))
    data = {"amount": "500000", "reason": "Pagamento", "idempotency_key": key}
    first = admin_client.post(add_url(normal), data)
    second = admin_client.post(add_url(normal), data, follow=True)
    assert first.status_code == 302
    assert "already submitted" in second.text or "já" in second.text
    assert Grant.objects.filter(account_id=normal.pk, source=Grant.Source.MANUAL).count() == 1
    assert account_summary(user_id=normal.pk).available == 600_000
    assert LogEntry.objects.filter(object_id=str(normal.pk)).count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "-5", "reason": "x"}, "amount"),
        ({"amount": "0", "reason": "x"}, "amount"),
        ({"amount": "abc", "reason": "x"}, "amount"),
        ({"amount": "10", "reason": ""}, "reason"),
        ({"amount": "10", "reason": "x", "expires_on": "2001-01-01"}, "expires_on"),
    ],
)
def test_add_credits_rejects_bad_input_and_writes_nothing(admin_client, customers, data, field):
    normal = customers[0]
    before = LedgerEntry.objects.count()
    response = admin_client.post(add_url(normal), {**data, "idempotency_key": "k" * 32})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert LedgerEntry.objects.count() == before


def test_reused_key_with_another_amount_is_refused(admin_client, customers):
    normal = customers[0]
    data = {"amount": "10", "reason": "x", "idempotency_key": "f" * 32}
    admin_client.post(add_url(normal), data)
    response = admin_client.post(add_url(normal), {**data, "amount": "20"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert Grant.objects.filter(account_id=normal.pk, source=Grant.Source.MANUAL).count() == 1


def test_support_cannot_add_credits(support_client, customers):
    normal = customers[0]
    assert support_client.get(add_url(normal)).status_code == 403
    response = support_client.post(
        add_url(normal), {"amount": "10", "reason": "x", "idempotency_key": "a" * 32}
    )
    assert response.status_code == 403
    assert not Grant.objects.filter(source=Grant.Source.MANUAL).exists()
    page = support_client.get(LIST)
    assert page.status_code == 200 and "add-credits" not in page.text
    detail = support_client.get(reverse("admin:accounts_user_change", args=[normal.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.text
    assert (
        support_client.post(
            reverse("admin:accounts_user_change", args=[normal.pk]), {"email": "x@example.com"}
        ).status_code
        == 403
    )


def test_finance_adds_credits_but_cannot_manage_users(finance_client, finance_user, customers):
    normal = customers[0]
    key = form_key(finance_client.get(add_url(normal)))
    finance_client.post(add_url(normal), {"amount": "7", "reason": "x", "idempotency_key": key})
    assert Grant.objects.get(source=Grant.Source.MANUAL).created_by == finance_user
    for name in ("change_plan", "suspend", "reactivate", "api_key"):
        url = reverse(f"admin:accounts_user_{name}", args=[normal.pk])
        assert finance_client.get(url).status_code == 403


def test_change_plan(admin_client, admin_user, customers):
    normal = customers[0]
    pro = PlanFactory(slug="pro", name="Pro", monthly_allowance=1_000_000)
    url = reverse("admin:accounts_user_change_plan", args=[normal.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"plan": pro.pk})
    assert response.status_code == 302
    summary = account_summary(user_id=normal.pk)
    assert summary.plan == pro and summary.available == 1_000_000
    new_cycle = LedgerEntry.objects.filter(account_id=normal.pk).order_by("id").last()
    assert (new_cycle.amount, new_cycle.reason, new_cycle.created_by) == (
        1_000_000,
        "Pro",
        admin_user,
    )
    assert "Pro" in LogEntry.objects.get(object_id=str(normal.pk)).get_change_message()


def test_suspend_and_reactivate_with_reason(admin_client, customers):
    normal = customers[0]
    suspend = reverse("admin:accounts_user_suspend", args=[normal.pk])
    assert admin_client.post(suspend, {"reason": ""}).status_code == 200  # reason required
    assert not User.objects.get(pk=normal.pk).is_suspended
    admin_client.post(suspend, {"reason": "Chargeback"})
    assert User.objects.get(pk=normal.pk).is_suspended
    detail = admin_client.get(reverse("admin:accounts_user_change", args=[normal.pk]))
    assert "Chargeback" in detail.text  # "why was this user blocked?" answered on the page
    admin_client.post(
        reverse("admin:accounts_user_reactivate", args=[normal.pk]), {"reason": "Pago"}
    )
    assert not User.objects.get(pk=normal.pk).is_suspended
    assert LogEntry.objects.filter(object_id=str(normal.pk)).count() == 2


def test_bulk_suspend_and_reactivate(admin_client, customers):
    ids = [str(user.pk) for user in customers[:2]]
    admin_client.post(LIST, {"action": "suspend_selected", "_selected_action": ids})
    assert User.objects.filter(is_suspended=True).count() == 2
    admin_client.post(LIST, {"action": "reactivate_selected", "_selected_action": ids})
    assert User.objects.filter(is_suspended=True).count() == 0
    assert LogEntry.objects.count() == 4


def test_create_api_key_shows_plaintext_once(admin_client, customers):
    normal = customers[0]
    url = reverse("admin:accounts_user_api_key", args=[normal.pk])
    response = admin_client.post(url, {"name": "script"})
    assert response.status_code == 200
    raw = re.search(r'id="api-key-plaintext"[^>]*>(sol-[A-Za-z0-9]+)<', response.text).group(1)
    found = key_find(raw_key=raw)
    assert found is not None and found.user_id == normal.pk
    detail = admin_client.get(reverse("admin:accounts_user_change", args=[normal.pk]))
    assert found.prefix in detail.text and raw not in detail.text
    assert raw not in str(LogEntry.objects.get(object_id=str(normal.pk)).get_change_message())


def test_unknown_user_is_404(admin_client, db):
    assert (
        admin_client.get(reverse("admin:accounts_user_add_credits", args=[999])).status_code == 404
    )
