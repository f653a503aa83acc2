"""grant_credits, take_back_credits, set_model_price and check_ledger, as an operator runs them."""

import subprocess
import sys
from datetime import datetime, time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from credits.models import Account, Grant, LedgerEntry, ModelPrice
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
