"""grant_credits, take_back_credits, set_model_price, create_plan, set_plan, create_user and
check_ledger, as an operator runs them."""

import re
import subprocess
import sys
from datetime import datetime, time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from credits.models import Account, Grant, LedgerEntry, ModelPrice, Plan, Subscription
from tests.conftest import ROOT


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_grant_credits_tops_up_with_reason_and_expiry(poor):
    out, _err = run(
        "grant_credits",
        "POBRE@example.com",
        "250",
        "--reason",
        "suporte",
        "--expires",
        "2099-12-31",
    )
    assert out.strip() == "Granted 250 credits to pobre@example.com; available now 250"
    grant = Grant.objects.get(account=poor.account)
    assert (grant.source, grant.reason, grant.amount) == ("manual", "suporte", 250)
    expected = timezone.make_aware(datetime.combine(datetime(2099, 12, 31).date(), time.max))
    assert grant.expires_at == expected


def test_grant_credits_with_an_idempotency_key_grants_once(poor):
    run("grant_credits", "pobre@example.com", "10", "--idempotency-key", "ticket-7")
    run("grant_credits", "pobre@example.com", "10", "--idempotency-key", "ticket-7")
    assert Grant.objects.filter(account=poor.account).count() == 1
    with pytest.raises(CommandError, match="different grant"):
        run("grant_credits", "pobre@example.com", "11", "--idempotency-key", "ticket-7")


def test_grant_credits_accepts_an_iso_datetime(poor):
    run("grant_credits", "pobre@example.com", "5", "--expires", "2099-01-02T03:04:05+00:00")
    assert Grant.objects.get(account=poor.account).expires_at.isoformat() == (
        "2099-01-02T03:04:05+00:00"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "5"], "No user with e-mail"),
        (["pobre@example.com", "0"], "positive number"),
        (["pobre@example.com", "-3"], "positive number"),
        (["pobre@example.com", "5", "--expires", "amanhã"], "--expires must be a date"),
        (["pobre@example.com", "5", "--expires", "2000-01-01"], "must be in the future"),
    ],
)
def test_grant_credits_refuses_bad_input_and_grants_nothing(poor, args, message):
    with pytest.raises(CommandError, match=message):
        run("grant_credits", *args)
    assert not Grant.objects.filter(account=poor.account).exists()


def test_set_model_price_creates_and_updates(db):
    out, _ = run("set_model_price", "gpt-4o", "--input", "0.000001", "--output", "2.5")
    assert out.strip() == "gpt-4o: input 0.000001, output 2.5 (active)"
    out, _ = run(
        "set_model_price",
        "gpt-4o",
        "--input",
        "1",
        "--output",
        "2",
        "--max-output-tokens",
        "9",
        "--inactive",
    )
    assert out.strip().endswith("(inactive)")
    price = ModelPrice.objects.get(model="gpt-4o")
    assert (price.input_weight, price.output_weight, price.max_output_tokens, price.active) == (
        Decimal(1),
        Decimal(2),
        9,
        False,
    )


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (["--input", "abc", "--output", "1"], "not a decimal weight"),
        (["--input", "0", "--output", "1"], "greater than zero"),
    ],
)
def test_set_model_price_refuses_bad_weights(db, weights, message):
    with pytest.raises(CommandError, match=message):
        run("set_model_price", "m", *weights)
    assert not ModelPrice.objects.exists()


def test_check_ledger_passes_on_a_consistent_ledger(user, poor):
    out, err = run("check_ledger")
    assert (out.strip(), err) == ("ledger OK", "")


def test_check_ledger_fails_and_names_a_corrupted_account(user, poor):
    Account.objects.filter(pk=poor.pk).update(balance=77)
    out = StringIO()
    err = StringIO()
    with pytest.raises(CommandError, match=r"2 ledger violation\(s\)") as failure:
        call_command("check_ledger", stdout=out, stderr=err)
    assert failure.value.returncode != 0
    lines = err.getvalue().strip().splitlines()
    assert lines == [
        f"account {poor.pk} <pobre@example.com>: balance 77 ≠ ledger sum 0",
        f"account {poor.pk} <pobre@example.com>: balance 77 ≠ grants remaining 0 − debt 0",
    ]
    assert "ana@example.com" not in err.getvalue()


@pytest.mark.slow
def test_check_ledger_process_exit_status(tmp_path):
    """The real command line: exit 0 when clean, non-zero naming the account when not."""
    db = tmp_path / "ledger.sqlite3"
    env = {"SQLITE_PATH": str(db), "SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}

    def manage(*args, check=True):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=check,
        )

    manage("migrate", "-v", "0")
    manage("create_user", "eva@example.com")
    assert manage("check_ledger").stdout.strip() == "ledger OK"
    script = (
        "from credits.models import Account; "
        "Account.objects.filter(user__email='eva@example.com').update(held=3)"
    )
    manage("shell", "-c", script)
    failed = manage("check_ledger", check=False)
    assert failed.returncode == 1
    assert "<eva@example.com>: held 3 ≠ open holds 0" in failed.stderr


def test_take_back_credits_books_an_adjustment_once_per_key(poor):
    run("grant_credits", "pobre@example.com", "300")
    out, _err = run(
        "take_back_credits",
        "Pobre@example.com",
        "120",
        "--reason",
        "granted twice",
        "--idempotency-key",
        "fix-1",
    )
    assert out.strip() == "Took back 120 credits from pobre@example.com; available now 180"
    run(
        "take_back_credits",
        "pobre@example.com",
        "120",
        "--reason",
        "again",
        "--idempotency-key",
        "fix-1",
    )
    entry = LedgerEntry.objects.get(account=poor.account, kind="adjustment")
    assert (entry.amount, entry.reason) == (-120, "granted twice")
    assert Account.objects.get(pk=poor.pk).balance == 180


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "5", "--reason", "x"], "No user with e-mail"),
        (["pobre@example.com", "0", "--reason", "x"], "positive number"),
        (["pobre@example.com", "301", "--reason", "x"], "Only 300 credits are available"),
        (["pobre@example.com", "5", "--reason", " "], "needs a reason"),
    ],
)
def test_take_back_credits_refuses_bad_input_and_changes_nothing(poor, args, message):
    run("grant_credits", "pobre@example.com", "300")
    with pytest.raises(CommandError, match=message):
        run("take_back_credits", *args)
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()
    assert Account.objects.get(pk=poor.pk).balance == 300


def test_create_user_on_a_fresh_database_gets_the_default_plan(db):
    out, _err = run("create_user", "nova@example.com")
    assert out.strip() == "Created nova@example.com on plan padrao (Padrão, the default plan)"


def test_create_user_without_any_default_plan_says_how_to_fix_it(db):
    Plan.objects.update(is_default=False)
    out, _err = run("create_user", "nova@example.com")
    assert out.strip() == (
        "Created nova@example.com on no plan: no active plan is the default, so every chat call "
        "is refused. Fix: `manage.py create_plan SLUG --name NAME --default`, then "
        "`manage.py set_plan nova@example.com SLUG`."
    )


def test_create_plan_then_set_plan(db):
    out, _err = run(
        "create_plan",
        "pro",
        "--name",
        "Pro",
        "--allowance",
        "50000",
        "--models",
        "a, b,",
        "--rpm",
        "0",
    )
    assert out.strip() == (
        "Created plan pro (Pro): 50000 credits a cycle, a, b, no limit of calls a minute"
    )
    plan = Plan.objects.get(slug="pro")
    assert (plan.all_models, plan.allowed_models, plan.is_default) == (False, ["a", "b"], False)
    run("create_user", "ana@example.com")
    out, _err = run("set_plan", "ANA@example.com", "pro")
    assert out.startswith("ana@example.com is on plan pro (Pro) from now; the cycle renews ")
    user = User.objects.get(email="ana@example.com")
    assert Subscription.objects.get(user=user).plan == plan
    assert Account.objects.get(pk=user.pk).balance == 50_000


def test_create_plan_default_takes_the_default_over(db):
    out, _err = run("create_plan", "empresa", "--name", "Empresa", "--default")
    assert out.strip().endswith("60 calls a minute, the default plan")
    assert list(Plan.objects.filter(is_default=True).values_list("slug", flat=True)) == ["empresa"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["padrao", "--name", "Outro"], "slug: Plan with this Slug already exists."),
        (["x y", "--name", "X"], "slug: Enter a valid “slug”"),
        (["x", "--name", "X", "--allowance", "-1"], "monthly_allowance: The allowance cannot"),
        (["x", "--name", "X", "--models", ","], "allowed_models: Name at least one model"),
        (["x", "--name", "X", "--max-tokens", "0"], "default_max_tokens: The default output"),
        (["x", "--name", "X", "--default", "--inactive"], "active: The default plan must be"),
    ],
)
def test_create_plan_refuses_what_breaks_a_rule(db, arguments, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("create_plan", *arguments)
    assert not Plan.objects.filter(slug="x").exists()
    assert Plan.objects.get(is_default=True).slug == "padrao"


def test_set_plan_refuses_unknown_users_and_plans_and_inactive_plans(db):
    run("create_user", "ana@example.com")
    with pytest.raises(CommandError, match=r"No user with e-mail ghost@example\.com"):
        run("set_plan", "ghost@example.com", "padrao")
    with pytest.raises(CommandError, match="There is no plan 'nope': create it with"):
        run("set_plan", "ana@example.com", "nope")
    run("create_plan", "velho", "--name", "Velho", "--inactive")
    with pytest.raises(CommandError, match="Plan velho is inactive"):
        run("set_plan", "ana@example.com", "velho")
