"""The periodic ledger check (monitoring.tasks.check_ledger, run by celery beat)."""

import json
import logging
import os
import subprocess
import sys

from credits.models import Account
from monitoring.models import LedgerCheck
from monitoring.tasks import check_ledger
from tests.conftest import ROOT
from tests.factories import PlanFactory, UserFactory


def test_it_finds_a_planted_violation_logs_it_and_records_the_count(db, caplog):
    PlanFactory(slug="mil", monthly_allowance=1_000, is_default=True)
    honest = UserFactory(email="honesta@example.com")
    tampered = UserFactory(email="adulterada@example.com")
    assert check_ledger.apply().get() == 0

    Account.objects.filter(pk=tampered.pk).update(balance=5_000)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monitoring.services"):
        assert check_ledger.apply().get() == 2

    logged = [r for r in caplog.records if r.name == "monitoring.services"]
    assert [(r.levelname, r.getMessage()) for r in logged] == [
        ("ERROR", "ledger violation"),
        ("ERROR", "ledger violation"),
        ("INFO", "ledger checked"),
    ]
    assert {r.account_id for r in logged[:2]} == {tampered.pk}
    assert logged[0].problem == "balance 5000 ≠ ledger sum 1000"
    assert logged[1].problem == "balance 5000 ≠ grants remaining 1000 − debt 0"
    assert logged[2].violations == 2
    # E-mail addresses stay out of the logs; the account id names the account.
    assert "adulterada@example.com" not in caplog.text
    assert honest.pk not in {r.account_id for r in logged[:2]}

    latest, first = LedgerCheck.objects.all()[:2]
    assert (latest.violations, first.violations) == (2, 0)


def beat_entry(**env: str) -> dict:
    """The beat schedule's ledger entry, as a fresh interpreter with this environment reads it."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    clean.update(env, DJANGO_SETTINGS_MODULE="solaris.settings")
    probe = (
        "import json, django; django.setup(); from django.conf import settings; "
        'print(json.dumps(settings.CELERY_BEAT_SCHEDULE["check-ledger"]))'
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_beat_runs_it_hourly_unless_configured():
    assert beat_entry() == {"task": "monitoring.tasks.check_ledger", "schedule": 3600.0}
    assert beat_entry(SOLARIS_LEDGER_CHECK_SECONDS="600")["schedule"] == 600.0
