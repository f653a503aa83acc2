"""Prometheus metrics of the proxy, served at /metrics (per process; scrape every process)."""

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from proxy import protection

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ADDED_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

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
    "solaris_proxy_open_streams", "Streams being relayed right now.", registry=REGISTRY
)
CIRCUIT = Gauge(
    "solaris_upstream_circuit_state",
    "Upstream circuit breaker: 0 closed, 1 half-open, 2 open (shared by all processes).",
    registry=REGISTRY,
)
CIRCUIT_VALUES = {protection.CLOSED: 0, protection.HALF_OPEN: 1, protection.OPEN: 2}


def call_observe(
    *, model: str, status: int, end_reason: str, prompt: int = 0, completion: int = 0, credits=0
) -> None:
    REQUESTS.labels(model=model, status=str(status), end_reason=end_reason).inc()
    if prompt:
        TOKENS.labels(model=model, kind="prompt").inc(prompt)
    if completion:
        TOKENS.labels(model=model, kind="completion").inc(completion)
    if credits:
        CREDITS.labels(model=model).inc(credits)


def metrics_view(request) -> HttpResponse:
    CIRCUIT.set(CIRCUIT_VALUES[protection.circuit_state()])
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
