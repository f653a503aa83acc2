"""The periodic ledger check: the same verification as `manage.py check_ledger`, each violation
logged, the result recorded in the database so that /metrics on any web process reports it."""

import logging
import time

from credits.selectors import ledger_violations
from monitoring.models import LedgerCheck

logger = logging.getLogger(__name__)


def ledger_check_run() -> LedgerCheck:
    started = time.monotonic()
    violations = ledger_violations()
    for violation in violations:
        logger.error(
            "ledger violation",
            extra={"account_id": violation.account_id, "problem": violation.problem},
        )
    check = LedgerCheck.objects.create(
        violations=len(violations), duration_ms=int((time.monotonic() - started) * 1000)
    )
    logger.info(
        "ledger checked", extra={"violations": check.violations, "duration_ms": check.duration_ms}
    )
    return check
