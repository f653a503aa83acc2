import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.selectors import account_summary
from credits.services import credits_grant, purchase_request
from proxy.models import CallRecord
from tests.factories import UserFactory

STATEMENT = reverse("portal:statement")
CSV = reverse("portal:calls-csv")


def call(user, *, model="gpt-unit", credits=10, when=None, request_id=None, **fields):
    fields.setdefault("end_reason", CallRecord.EndReason.COMPLETED)
    return CallRecord.objects.create(
        request_id=request_id or f"r-{CallRecord.objects.count()}-{model}-{credits}",
        user=user,
        model=model,
        prompt_tokens=fields.pop("prompt_tokens", 100),
        completion_tokens=fields.pop("completion_tokens", 50),
        credits=credits,
        status_code=fields.pop("status_code", 200),
        created_at=when or timezone.now(),
        **fields,
    )


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_the_login_page(client, db):
    response = client.get(STATEMENT)
    assert response.status_code == 302
    assert response["Location"] == f"/entrar/?next={STATEMENT}"


def test_counter_shows_the_summary_numbers(signed_in, user, spend):
    spend(user, 12_345)
    summary = account_summary(user_id=user.pk)
    response = signed_in.get(STATEMENT)
    assert response.status_code == 200
    assert response.context["summary"].available == summary.available == 87_655
    html = response.content.decode()
    assert 'data-value="87655"' in html
    assert ">87.655<" in html
    assert "12,34 %" in html  # used percent, pt-BR decimal mark
    assert summary.plan.name in html
    assert 'id="state-banner"' in html and "state-normal" in html


def test_alert_modal_is_armed_from_the_threshold_keyed_by_the_crossing(signed_in, user, spend):
    response = signed_in.get(STATEMENT)
    assert "data-open-unless-dismissed" not in response.content.decode()
    spend(user, 85_000)
    response = signed_in.get(STATEMENT)
    key = response.context["alert_key"]
    html = response.content.decode()
    assert f'data-open-unless-dismissed="{key}"' in html
    assert "state-alert" in html
    # Credits arriving start a new crossing: a dismissed alert may show again.
    credits_grant(user=user, amount=1_000, idempotency_key="top-up-1")
    assert signed_in.get(STATEMENT).context["alert_key"] != key


def test_blocking_modal_shows_how_to_buy(signed_in, user, spend, package, settings):
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    spend(user, 100_000)
    html = signed_in.get(STATEMENT).content.decode()
    blocked = html[
        html.index('id="blocked-modal"') : html.index("</dialog>", html.index('id="blocked-modal"'))
    ]
    assert "data-open" in blocked
    assert "Pacote 50 mil" in blocked and "R$ 29,90" in blocked
    assert "compras@solaris.example" in blocked
    assert reverse("portal:purchase-confirm", args=[package.pk]) in blocked
    assert reverse("portal:purchase") in blocked


def test_statement_of_the_period(signed_in, user, spend):
    spend(user, 3_000)
    spend(user, 2_000)
    today = timezone.localdate()
    response = signed_in.get(STATEMENT, {"start": today.isoformat(), "end": today.isoformat()})
    statement = response.context["statement"]
    assert statement.opening_balance == 0
    assert statement.totals["grant"] == 100_000
    assert statement.totals["usage"] == -5_000
    assert statement.closing_balance == 95_000
    html = response.content.decode()
    assert 'id="closing">95.000<' in html and 'id="total-usage">-5.000<' in html
    assert response.context["usage_count"] == 2
    later = today + timedelta(days=1)
    after = signed_in.get(STATEMENT, {"start": later.isoformat(), "end": later.isoformat()})
    assert after.context["statement"].opening_balance == 95_000
    assert after.context["statement"].entries == []


def test_invalid_period_is_explained_and_the_page_still_works(signed_in):
    response = signed_in.get(STATEMENT, {"start": "2026-05-10", "end": "2026-05-01"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert signed_in.get(CSV, {"start": "2026-05-10", "end": "2026-05-01"}).status_code == 400
    too_long = signed_in.get(CSV, {"start": "2024-01-01", "end": "2026-01-01"})
    assert too_long.status_code == 400


def test_daily_chart_has_a_bar_per_day_with_the_usage(signed_in, user, spend):
    spend(user, 4_321)
    today = timezone.localdate()
    start = today - timedelta(days=6)
    response = signed_in.get(STATEMENT, {"start": start.isoformat(), "end": today.isoformat()})
    chart = response.context["chart"]
    assert len(chart.bars) == 7
    assert [bar.value for bar in chart.bars] == [0] * 6 + [4_321]
    assert chart.bars[-1].height == chart.height and chart.bars[0].height == 0
    assert response.content.decode().count("<rect x=") == 7


def test_calls_are_filtered_paginated_and_only_the_users(signed_in, user):
    other = UserFactory(email="bia@example.com")
    now = timezone.now()
    for n in range(30):
        call(user, model="gpt-a", credits=n + 1, when=now - timedelta(minutes=n))
    call(user, model="gpt-b", credits=999)
    call(user, model="gpt-a", credits=7, when=now - timedelta(days=70), request_id="old")
    call(other, model="gpt-secret", credits=5_555, request_id="not-yours")
    page1 = signed_in.get(STATEMENT)
    assert page1.context["calls"].paginator.count == 31
    assert len(page1.context["calls"].object_list) == 25
    assert page1.context["models"] == ["gpt-a", "gpt-b"]
    assert "gpt-secret" not in page1.content.decode()
    page2 = signed_in.get(STATEMENT, {"page": 2})
    assert len(page2.context["calls"].object_list) == 6
    only_b = signed_in.get(STATEMENT, {"model": "gpt-b"})
    assert [c.credits for c in only_b.context["calls"]] == [999]
    html = only_b.content.decode()
    assert "model=gpt-b" in html  # the CSV link keeps the filter


def _csv_rows(response, *, delimiter: str) -> list[list[str]]:
    return list(
        csv.reader(
            io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")),
            delimiter=delimiter,
        )
    )


def test_csv_opens_in_pt_br_spreadsheets_with_the_rows_of_the_filter(signed_in, user):
    other = UserFactory(email="bia@example.com")
    call(user, model="gpt-a", credits=11, request_id="r-1", prompt_tokens=5, completion_tokens=6)
    call(
        user,
        model="gpt-b",
        credits=22,
        request_id="=HYPERLINK(1)",
        end_reason=CallRecord.EndReason.CLIENT_DISCONNECTED,
    )
    call(
        user, model="gpt-a", credits=33, when=timezone.now() - timedelta(days=70), request_id="old"
    )
    call(other, model="gpt-a", credits=44, request_id="not-yours")
    response = signed_in.get(CSV)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    raw = b"".join(response.streaming_content)
    # pt-BR Excel: the UTF-8 mark first, `;` between cells, Portuguese headers.
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "Data",
        "Modelo",
        "Tokens de entrada",
        "Tokens de saída",
        "Créditos",
        "Término",
        "Código HTTP",
        "Transmissão contínua",
        "Identificador da chamada",
    ]
    body = rows[1:]
    assert sorted(row[4] for row in body) == ["11", "22"]
    by_id = {row[8]: row for row in body}
    assert by_id["r-1"][1:6] == ["gpt-a", "5", "6", "11", "concluída"]
    assert by_id["'=HYPERLINK(1)"][5] == "interrompida"
    filtered = signed_in.get(CSV, {"model": "gpt-b"})
    assert [row[4] for row in _csv_rows(filtered, delimiter=";")[1:]] == ["22"]


def test_csv_in_english_uses_commas_and_english_headers(signed_in, user):
    user.language = "en"
    user.save(update_fields=["language"])
    call(user, model="gpt-a", credits=11, request_id="r-1")
    raw = b"".join(signed_in.get(CSV).streaming_content)
    assert not raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode()), delimiter=","))
    assert rows[0][:5] == ["Date", "Model", "Tokens in", "Tokens out", "Credits"]
    assert rows[1][1] == "gpt-a" and rows[1][4] == "11" and rows[1][5] == "completed"


def test_csv_cells_are_never_formulas_even_after_a_separator(signed_in, user):
    """pt-BR Excel splits a cell on `;` itself: a formula after it must be neutralised too."""
    call(user, model="gpt-a;=cmd|' /C calc'!A0", credits=1, request_id="ok;@SUM(1+1);+1,-2")
    rows = _csv_rows(signed_in.get(CSV), delimiter=";")
    model, request_id = rows[1][1], rows[1][8]
    assert model == "gpt-a;'=cmd|' /C calc'!A0"
    assert request_id == "ok;'@SUM(1+1);'+1,'-2"
    for cell in (model, request_id):
        for part in re.split(r"[,;|\t]", cell):
            assert not part.lstrip().startswith(("=", "+", "-", "@"))


def test_grants_with_expiry_and_purchases_are_listed(signed_in, user, package):
    expires = timezone.now() + timedelta(days=10)
    credits_grant(user=user, amount=5_000, idempotency_key="promo", expires_at=expires)
    purchase_request(user=user, package=package, idempotency_key="buy-1")
    other = UserFactory(email="bia@example.com")
    purchase_request(user=other, package=package, idempotency_key="buy-2")
    response = signed_in.get(STATEMENT)
    grants = response.context["summary"].grants
    assert [g.amount for g in grants] == [5_000, 100_000]
    assert [p.user_id for p, _status in response.context["purchases"]] == [user.pk]
    html = response.content.decode()
    assert 'class="purchase-pending"' in html
    assert ">aguardando pagamento<" in html
