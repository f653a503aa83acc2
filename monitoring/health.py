"""/healthz (the process answers) and /readyz (database, cache and upstream answer)."""

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from proxy import upstream

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    probe = uuid.uuid4().hex
    cache.set("readyz-probe", probe, timeout=10)
    if cache.get("readyz-probe") != probe:
        raise RuntimeError("cache did not return what was written")


def readiness() -> dict[str, str]:
    """Each check's outcome: "ok" (or "not configured"), else "error: <exception class>"."""
    checks = {"database": _check_database, "cache": _check_cache, "upstream": upstream.check_ready}
    results = {}
    for name, check in checks.items():
        try:
            outcome = check()
            results[name] = outcome or "ok"
        except Exception as exc:
            logger.warning(
                "readiness check failed", extra={"check": name, "error": type(exc).__name__}
            )
            results[name] = f"error: {type(exc).__name__}"
    return results


def check_passed(outcome: str) -> bool:
    return not outcome.startswith("error")


@require_GET
def readyz(request):
    results = readiness()
    ready = all(check_passed(outcome) for outcome in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
