"""The gauges /metrics computes once per scrape, from the database and the shared cache.

They describe the whole installation, not one process: whichever web process is scraped reports
the same numbers, computed there and then (never added up across processes as the per-process
counters of proxy.metrics are). Each group is independent: if the database is down, the scrape
still answers, with `solaris_ready{check="database"} 0` and without the database's gauges.
"""

import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from backoffice.selectors import customers_by_state
from credits.models import Account, Purchase
from kernel.shared_counters import HOLDS_REAPED, SHUTDOWN_UNSETTLED, shared_counters_get
from monitoring import health, selectors
from notifications.models import Notification
from proxy import protection

logger = logging.getLogger(__name__)

CIRCUIT_VALUES = {protection.CLOSED: 0, protection.HALF_OPEN: 1, protection.OPEN: 2}
NOTIFICATION_STATES = ("pending", "retrying", "failed", "sent")
# Counting customers by state costs ~30 ms per 1,000 customers (the admin list's query); states
# move slowly, so every process reuses one count for this long.
ACCOUNTS_KEY = "monitoring:accounts_by_state"
ACCOUNTS_SECONDS = 30


def readiness() -> list[Metric]:
    ready = GaugeMetricFamily(
        "solaris_ready",
        "1 when the readiness check passes (as /readyz: database, cache, upstream), else 0.",
        labels=["check"],
    )
    for check, outcome in health.readiness().items():
        ready.add_metric([check], 1 if health.check_passed(outcome) else 0)
    return [ready]


def circuit() -> list[Metric]:
    return [
        GaugeMetricFamily(
            "solaris_upstream_circuit_state",
            "Upstream circuit breaker: 0 closed, 1 half-open, 2 open (shared by all processes).",
            value=CIRCUIT_VALUES[protection.circuit_state()],
        )
    ]


def shared_counters() -> list[Metric]:
    found = shared_counters_get()
    return [
        CounterMetricFamily(
            "solaris_holds_reaped",
            "Holds the reaper released because no settlement came (calls charged nothing).",
            value=found[HOLDS_REAPED],
        ),
        CounterMetricFamily(
            "solaris_shutdown_unsettled",
            "Settlements web processes left unfinished when they shut down.",
            value=found[SHUTDOWN_UNSETTLED],
        ),
    ]


def holds() -> list[Metric]:
    found = selectors.holds_open()
    return [
        GaugeMetricFamily("solaris_holds_open", "Holds open now.", value=found.count),
        GaugeMetricFamily(
            "solaris_holds_open_credits", "Credits held by open holds.", value=found.credits
        ),
        GaugeMetricFamily(
            "solaris_holds_oldest_age_seconds",
            "Age of the oldest open hold (0 when none is open).",
            value=found.oldest_age_seconds,
        ),
        GaugeMetricFamily(
            "solaris_hold_max_age_seconds",
            "SOLARIS_HOLD_MAX_AGE_SECONDS: the reaper releases holds older than this.",
            value=settings.SOLARIS_HOLD_MAX_AGE_SECONDS,
        ),
    ]


def notifications() -> list[Metric]:
    found = selectors.notifications_by_kind_and_state()
    gauge = GaugeMetricFamily(
        "solaris_notifications",
        "Notifications by kind and delivery state: pending, retrying (failed, attempts left), "
        "failed (attempts exhausted), sent.",
        labels=["kind", "state"],
    )
    kinds = sorted(set(Notification.Kind.values) | {kind for kind, _state in found})
    for kind in kinds:
        for state in NOTIFICATION_STATES:
            gauge.add_metric([kind, state], found.get((kind, state), 0))
    return [gauge]


def purchases() -> list[Metric]:
    found = selectors.purchases_by_status()
    gauge = GaugeMetricFamily("solaris_purchases", "Purchases by status.", labels=["status"])
    for status in sorted(set(Purchase.Status.values) | set(found)):
        gauge.add_metric([status], found.get(status, 0))
    return [gauge]


def accounts() -> list[Metric]:
    found = cache.get(ACCOUNTS_KEY)
    if found is None:
        found = customers_by_state()
        cache.set(ACCOUNTS_KEY, found, ACCOUNTS_SECONDS)
    gauge = GaugeMetricFamily(
        "solaris_accounts", "Customers by credit state: normal, alert, blocked.", labels=["state"]
    )
    for state in Account.State.values:
        gauge.add_metric([state], found.get(state, 0))
    return [gauge]


def ledger() -> list[Metric]:
    metrics: list[Metric] = [
        GaugeMetricFamily(
            "solaris_ledger_check_interval_seconds",
            "SOLARIS_LEDGER_CHECK_SECONDS: how often beat runs the ledger check.",
            value=settings.SOLARIS_LEDGER_CHECK_SECONDS,
        )
    ]
    last = selectors.ledger_check_last()
    if last is not None:
        metrics += [
            GaugeMetricFamily(
                "solaris_ledger_violations",
                "Violations the last ledger check found (check_ledger's rules).",
                value=last.violations,
            ),
            GaugeMetricFamily(
                "solaris_ledger_check_timestamp_seconds",
                "When the last ledger check ran (Unix time).",
                value=last.checked_at.timestamp(),
            ),
            GaugeMetricFamily(
                "solaris_ledger_check_duration_seconds",
                "How long the last ledger check took.",
                value=last.duration_ms / 1000,
            ),
        ]
    return metrics


GROUPS: tuple[Callable[[], list[Metric]], ...] = (
    readiness,
    circuit,
    shared_counters,
    holds,
    notifications,
    purchases,
    accounts,
    ledger,
)


class SolarisCollector:
    """prometheus_client collector of the groups above; a failing group is logged and left out."""

    def collect(self) -> Iterable[Metric]:
        started = time.monotonic()
        for group in GROUPS:
            try:
                found = group()
            except Exception:
                logger.exception("metrics group failed", extra={"group": group.__name__})
                continue
            yield from found
        yield GaugeMetricFamily(
            "solaris_metrics_collect_seconds",
            "Time this scrape spent computing the installation-wide gauges.",
            value=time.monotonic() - started,
        )
