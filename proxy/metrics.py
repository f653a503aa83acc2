"""Prometheus metrics each web process counts: calls, tokens, credits, latency, open streams,
settlements in flight, upstream errors and in-band notices.

With PROMETHEUS_MULTIPROC_DIR set (production, several uvicorn workers) prometheus_client keeps
every value in a per-process file of that directory and /metrics (monitoring.views) adds the files
up: one scrape of any worker is the whole server. Without it the values live in REGISTRY.
"""

import contextlib
import glob
import logging
import os

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from kernel.shared_counters import SHUTDOWN_UNSETTLED, shared_counter_add
from proxy import notices
from proxy.models import CallRecord

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ADDED_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

# Label values known in advance start at 0, so dashboards and rates see them before the first event.
UPSTREAM_ERROR_KINDS = ("unavailable", "timeout", "auth", "server_error", "client_error")

REQUESTS = Counter(
    "solaris_proxy_requests",
    "Chat completion requests by model, HTTP status and end reason.",
    ["model", "status", "end_reason"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "solaris_proxy_request_duration_seconds",
    "Total time of a chat completion request, until its last byte.",
    ["stream"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ADDED = Histogram(
    "solaris_proxy_added_latency_seconds",
    "Time Solaris itself adds to a request (admission before forwarding, settlement after).",
    ["stream"],
    buckets=ADDED_BUCKETS,
    registry=REGISTRY,
)
TOKENS = Counter(
    "solaris_proxy_tokens",
    "Tokens billed, by model and kind.",
    ["model", "kind"],
    registry=REGISTRY,
)
CREDITS = Counter(
    "solaris_proxy_credits", "Credits charged, by model.", ["model"], registry=REGISTRY
)
OPEN_STREAMS = Gauge(
    "solaris_proxy_open_streams",
    "Streams being relayed right now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SETTLEMENTS = Gauge(
    "solaris_proxy_settlements_running",
    "Calls answered whose settlement (hold closed, call recorded) has not finished yet.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
UPSTREAM_ERRORS = Counter(
    "solaris_upstream_errors",
    "Forwarded calls that failed upstream, by kind: unavailable, timeout, auth, server_error "
    "(5xx, broken or malformed answer), client_error (a 4xx the request caused).",
    ["kind"],
    registry=REGISTRY,
)
NOTICES = Counter(
    "solaris_proxy_notices",
    "Refusals answered in band, as a chat message, by code.",
    ["code"],
    registry=REGISTRY,
)
for _kind in UPSTREAM_ERROR_KINDS:
    UPSTREAM_ERRORS.labels(kind=_kind)
for _code in notices.CODES:
    NOTICES.labels(code=_code)


def upstream_error_kind(*, end_reason: str, status: int, error_code: str) -> str | None:
    """What went wrong upstream for a call that ended so; None when the upstream did not fail."""
    # By code first: a failure answered in band (proxy.notices) is recorded as refused. A refusal
    # decided before forwarding (circuit open) is observed without a code, so it is not counted.
    if end_reason == CallRecord.EndReason.TIMEOUT or error_code == "upstream_timeout":
        return "timeout"
    if error_code == "upstream_unavailable":
        return "unavailable"
    if end_reason != CallRecord.EndReason.UPSTREAM_ERROR:
        return None
    if error_code == "upstream_auth_failed":
        return "auth"
    return "client_error" if 400 <= status < 500 else "server_error"


def call_observe(
    *,
    model: str,
    status: int,
    end_reason: str,
    error_code: str = "",
    prompt: int = 0,
    completion: int = 0,
    credits=0,
) -> None:
    REQUESTS.labels(model=model, status=str(status), end_reason=end_reason).inc()
    kind = upstream_error_kind(end_reason=end_reason, status=status, error_code=error_code)
    if kind is not None:
        UPSTREAM_ERRORS.labels(kind=kind).inc()
    if prompt:
        TOKENS.labels(model=model, kind="prompt").inc(prompt)
    if completion:
        TOKENS.labels(model=model, kind="completion").inc(completion)
    if credits:
        CREDITS.labels(model=model).inc(credits)


def notice_observe(*, code: str) -> None:
    NOTICES.labels(code=code).inc()


def shutdown_unsettled(*, count: int) -> None:
    """Settlements a process had to leave at shutdown; the reaper frees their holds uncharged."""
    try:
        shared_counter_add(name=SHUTDOWN_UNSETTLED, amount=count)
    except Exception:
        logger.exception("could not count the settlements left at shutdown")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def dead_processes_forget() -> None:
    """At a worker's start: drop the live gauges (open streams, settlements) of workers that died
    without a clean shutdown; their counters stay, they are part of the totals."""
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if not path:
        return
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = name.rsplit("_", 1)[1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def process_forget() -> None:
    """At a worker's clean shutdown: its live gauges leave the sum."""
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(os.getpid(), path)
