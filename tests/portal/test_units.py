from datetime import date, timedelta

from django.urls import reverse

from accounts.models import LoginLink
from accounts.services import login_link_create
from portal.charts import HEIGHT, WIDTH, bar_chart
from tests.factories import UserFactory


def test_bar_chart_scales_to_the_peak_and_keeps_small_days_visible():
    day = date(2026, 11, 1)
    chart = bar_chart([(day, 0), (day + timedelta(days=1), 1), (day + timedelta(days=2), 10_000)])
    assert [bar.height for bar in chart.bars] == [0, 1, HEIGHT]
    assert [bar.y for bar in chart.bars] == [HEIGHT, HEIGHT - 1, 0]
    assert chart.peak == 10_000 and chart.total == 10_001
    assert bar_chart([]).bars == [] and bar_chart([]).peak == 0


def test_bar_chart_keeps_one_aspect_whatever_the_period():
    day = date(2026, 1, 1)
    for days in (1, 7, 31, 366):
        chart = bar_chart([(day + timedelta(days=n), n) for n in range(days)])
        assert WIDTH // 2 < chart.width <= WIDTH or days > WIDTH // 2, days
        assert chart.bars[-1].x + chart.bars[-1].width <= chart.width
        assert all(bar.width >= 1 for bar in chart.bars)


def test_login_links_are_read_only_in_admin(client, plan):
    admin = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    login_link_create(user=admin, channel=LoginLink.Channel.EMAIL, ttl=timedelta(minutes=1))
    client.force_login(admin)
    listing = client.get(reverse("admin:accounts_loginlink_changelist"))
    assert listing.status_code == 200 and "root@example.com" in listing.content.decode()
    assert client.get(reverse("admin:accounts_loginlink_add")).status_code == 403
    link = LoginLink.objects.get()
    page = client.get(reverse("admin:accounts_loginlink_change", args=[link.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
