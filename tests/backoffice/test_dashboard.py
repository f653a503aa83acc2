import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.charts import daily_bar_chart, nice_ceiling
from backoffice.selectors import dashboard_get
from credits.models import LedgerEntry
from credits.services import purchase_confirm, purchase_refund, purchase_request
from tests.backoffice.conftest import count_queries, spend
from tests.factories import ModelPriceFactory, UserFactory

DASHBOARD = reverse("admin-dashboard")


@pytest.fixture
def activity(plan, price, admin_user):
    """Two customers who spent, one who bought, one refunded purchase and one pending."""
    ana = UserFactory(email="ana@example.com", name="Ana")
    bia = UserFactory(email="bia@example.com", name="Bia")
    UserFactory(email="caio@example.com", name="Caio")
    other = ModelPriceFactory(model="gpt-outro", input_weight="1", output_weight="1")
    spent_ana = spend(ana, price, request_id="a1", prompt=20_000, completion=20_000)  # 90 000
    spent_bia = spend(bia, other, request_id="b1", prompt=100, completion=100)  # 200
    bought = purchase_request(user=bia, idempotency_key="p1", credits=1_000, price_cents=4_990)
    purchase_confirm(purchase=bought, confirmed_by=admin_user)
    refunded = purchase_request(user=bia, idempotency_key="p2", credits=10, price_cents=100)
    purchase_confirm(purchase=refunded, confirmed_by=admin_user)
    purchase_refund(purchase=refunded, refunded_by=admin_user, reason="x")
    purchase_request(user=ana, idempotency_key="p3", credits=10, price_cents=100)
    return {"ana": ana, "bia": bia, "spent_ana": spent_ana, "spent_bia": spent_bia}


def test_dashboard_numbers(activity, price):
    data = dashboard_get(days=30)
    total = activity["spent_ana"] + activity["spent_bia"]
    assert (data.consumed_today, data.consumed_7_days, data.consumed_30_days) == (total,) * 3
    assert data.consumed_period == total
    assert data.active_users == 2
    assert (data.purchases_confirmed, data.revenue_cents, data.purchases_refunded) == (2, 4_990, 1)
    assert data.purchases_pending == 1
    assert (data.customers, data.users_alert, data.users_blocked) == (3, 1, 0)
    assert [c.email for c in data.top_consumers] == ["ana@example.com", "bia@example.com"]
    assert data.top_consumers[0].credits == activity["spent_ana"]
    assert [(m.model, m.credits, m.calls) for m in data.per_model] == [
        (price.model, activity["spent_ana"], 1),
        ("gpt-outro", activity["spent_bia"], 1),
    ]
    assert len(data.daily) == 30 and data.daily[-1].day == timezone.localdate()
    assert data.daily[-1].credits == total and sum(day.credits for day in data.daily) == total


def test_old_consumption_counts_in_the_right_windows(plan, price, monkeypatch):
    user = UserFactory(email="velho@example.com")
    spend(user, price, request_id="old", prompt=100, completion=0)
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.USAGE)
    # Seen from 10 days later: outside today and the 7 days, inside the 30 days.
    later = timezone.now() + timedelta(days=10)
    data = dashboard_get(days=30, now=later)
    assert (data.consumed_today, data.consumed_7_days, data.consumed_30_days) == (
        0,
        0,
        -entry.amount,
    )
    assert data.daily[-11].credits == -entry.amount
    assert dashboard_get(days=7, now=later).consumed_period == 0
    with pytest.raises(ValueError):
        dashboard_get(days=5)


def test_dashboard_page_links_and_chart(admin_client, activity):
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    page = response.text
    users = reverse("admin:accounts_user_changelist")
    assert f"{users}?credit_state=alert" in page and f"{users}?credit_state=blocked" in page
    assert "R$ 49,90" in page
    bars = re.findall(r'<rect class="bar"[^>]*height="(\d+)"[^>]*data-value="(\d+)"', page)
    assert len(bars) == 30
    assert (
        int(bars[-1][0]) > 0 and int(bars[-1][1]) == activity["spent_ana"] + activity["spent_bia"]
    )
    assert all(height == "0" for height, _value in bars[:-1])
    assert "ana@example.com" in page and "gpt-outro" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    alert = admin_client.get(f"{users}?credit_state=alert")
    assert "ana@example.com" in alert.text and "bia@example.com" not in alert.text
    assert admin_client.get(DASHBOARD, {"days": "7"}).context["dashboard"].days == 7
    assert admin_client.get(DASHBOARD, {"days": "abc"}).context["dashboard"].days == 30


def test_admin_index_links_to_the_dashboard(admin_client, support_client):
    assert DASHBOARD in admin_client.get(reverse("admin:index")).text


def test_dashboard_permissions(client, support_client, db):
    assert support_client.get(DASHBOARD).status_code == 200
    client.logout()
    assert client.get(DASHBOARD).status_code == 302
    from tests.backoffice.conftest import staff

    client.force_login(staff("sem-grupo@solaris.test"))
    assert client.get(DASHBOARD).status_code == 403


def test_dashboard_query_count_is_constant_in_users(admin_client, plan, price, admin_user):
    def make(count, start):
        for index in range(start, start + count):
            user = UserFactory(email=f"u{index}@example.com")
            spend(user, price, request_id=f"r{index}", prompt=index + 1, completion=index)
            bought = purchase_request(
                user=user, idempotency_key=f"k{index}", credits=10, price_cents=100
            )
            purchase_confirm(purchase=bought, confirmed_by=admin_user)

    make(3, 0)
    admin_client.get(DASHBOARD)
    few, response = count_queries(lambda: admin_client.get(DASHBOARD))
    assert len(response.context["dashboard"].top_consumers) == 3
    make(27, 3)
    admin_client.get(DASHBOARD)  # new subscriptions emptied the cache of the plans' blocked lines
    many, response = count_queries(lambda: admin_client.get(DASHBOARD))
    assert len(response.context["dashboard"].top_consumers) == 10
    assert response.context["dashboard"].purchases_confirmed == 30
    assert few == many
    selector_queries, _data = count_queries(lambda: dashboard_get(days=30))
    assert selector_queries == 7


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 3, 10, 11, 240, 999, 1001, 7_000)] == [
        1,
        1,
        5,
        10,
        20,
        500,
        1_000,
        2_000,
        10_000,
    ]


def test_bar_heights_are_proportional():
    start = date(2026, 1, 1)
    chart = daily_bar_chart([(start + timedelta(days=i), v) for i, v in enumerate([0, 50, 100, 1])])
    heights = [bar.height for bar in chart.bars]
    plot = chart.plot_bottom - chart.plot_top
    assert chart.max_value == 100
    assert heights == [0, plot // 2, plot, 1]  # a tiny day stays visible
    assert all(bar.y + bar.height == chart.plot_bottom for bar in chart.bars)
    assert chart.bars[0].tick and "01/01" in chart.bars[0].tick
