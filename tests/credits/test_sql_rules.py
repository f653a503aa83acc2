"""The SQL rule book (credits/sql/) on PostgreSQL: the database runs exactly the newest file of each
set, and each SQL rule equals its Python twin on the same inputs."""

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from credits import pricing
from credits.models import Grant
from credits.selectors import grant_totals
from credits.services.grants import due_grants
from credits.sql import SQL_DIR, function_names, latest, sql_text

pytestmark = pytest.mark.postgres

MIGRATIONS = Path(__file__).resolve().parents[2] / "credits" / "migrations"


def _definitions(schema: str, names: list[str]) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = ANY(%s)",
            [schema, names],
        )
        return {name: text.replace(f"{schema}.", "") for name, text in cursor.fetchall()}


def test_the_database_runs_the_newest_sql_files(db):
    """What migrations installed equals the newest file of each set, installed afresh in a scratch
    schema and read back the same way (arguments, result, language, volatility, body)."""
    newest = latest()
    assert set(newest) == {"rules", "holds"}
    names = [name for file in newest.values() for name in function_names(sql_text(file))]
    installed = _definitions("public", names)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("CREATE SCHEMA solaris_expected")
            cursor.execute("SET LOCAL search_path TO solaris_expected, public")
            for file in ("rules", "holds"):
                cursor.execute(sql_text(newest[file]))
        expected = _definitions("solaris_expected", names)
        transaction.set_rollback(True)
    assert sorted(expected) == sorted(names)
    assert installed == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'solaris\\_%'")
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(names)


def test_each_sql_file_is_loaded_by_one_migration():
    """A file no migration loads never reaches a database; one loaded twice is two truths."""
    sources = [path.read_text() for path in MIGRATIONS.glob("0*.py")]
    for path in SQL_DIR.glob("*.pg.sql"):
        name = path.name.removesuffix(".pg.sql")
        assert sum(f'"{name}"' in source for source in sources) == 1, name


def _sql_cost(prompt: int, completion: int, input_weight: Decimal, output_weight: Decimal) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT solaris_call_cost(%s::bigint, %s::bigint, %s::numeric, %s::numeric)",
            [prompt, completion, input_weight, output_weight],
        )
        return cursor.fetchone()[0]


weights = st.decimals(
    min_value=Decimal("0.000001"), max_value=Decimal("99999999"), places=6, allow_nan=False
)


@pytest.mark.django_db
@settings(max_examples=200, deadline=None)
@given(
    prompt=st.integers(0, 10**9),
    completion=st.integers(0, 10**9),
    input_weight=weights,
    output_weight=weights,
)
def test_sql_cost_is_pricing_cost(prompt, completion, input_weight, output_weight):
    expected = pricing.cost(
        prompt_tokens=prompt,
        completion_tokens=completion,
        input_weight=input_weight,
        output_weight=output_weight,
    )
    assert _sql_cost(prompt, completion, input_weight, output_weight) == expected


@pytest.mark.parametrize("seed", range(6))
def test_sql_grant_totals_and_due_are_the_python_ones(poor, seed):
    rng = random.Random(seed)
    now = timezone.now()
    for _grant in range(rng.randint(1, 8)):
        amount = rng.randint(1, 500)
        Grant.objects.create(
            account=poor.account,
            source=Grant.Source.MANUAL,
            amount=amount,
            remaining=rng.choice([0, amount, rng.randint(0, amount)]),
            expires_at=rng.choice([None, now, now - timedelta(hours=1), now + timedelta(hours=1)]),
        )
    for moment in (now - timedelta(hours=2), now, now + timedelta(hours=2)):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM solaris_grant_totals(%s, %s::timestamptz)", [poor.pk, moment]
            )
            sql_totals = cursor.fetchone()
            cursor.execute("SELECT solaris_grant_due(%s, %s::timestamptz)", [poor.pk, moment])
            sql_due = cursor.fetchone()[0]
        totals = grant_totals(account_id=poor.pk, now=moment)
        assert sql_totals == (totals.granted, totals.left, totals.expired_left)
        assert sql_due == due_grants(poor.pk, moment).exists()
