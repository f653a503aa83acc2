import hmac

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from accounts.authentication import bearer_token
from kernel.client_ip import address_in, client_ip
from monitoring.collector import SolarisCollector
from proxy import metrics


def metrics_refusal(request) -> HttpResponse | None:
    """Who may read /metrics: the bearer of SOLARIS_METRICS_TOKEN, or a client address in
    SOLARIS_METRICS_ALLOWED_IPS; with neither configured, anyone in DEBUG and no one otherwise."""
    token = settings.SOLARIS_METRICS_TOKEN
    allowed_ips = settings.SOLARIS_METRICS_ALLOWED_IPS
    if not token and not allowed_ips:
        if settings.DEBUG:
            return None
        return HttpResponse(
            _("Set SOLARIS_METRICS_TOKEN or SOLARIS_METRICS_ALLOWED_IPS to read the metrics."),
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    presented = bearer_token(request)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return None
    if allowed_ips and address_in(client_ip(request), setting="SOLARIS_METRICS_ALLOWED_IPS"):
        return None
    if token:
        response = HttpResponse(
            _("Send the metrics token as 'Authorization: Bearer <token>'."),
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="solaris-metrics"'
        return response
    return HttpResponse(
        _("This address may not read the metrics."),
        status=403,
        content_type="text/plain; charset=utf-8",
    )


def metrics_view(request) -> HttpResponse:
    """/metrics: every web process's counters (added up from PROMETHEUS_MULTIPROC_DIR when set)
    and the installation's gauges, computed once for this scrape."""
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    # auto_describe off: registering must not run the collectors (the database ones would run twice).
    registry = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(metrics.REGISTRY)
    registry.register(SolarisCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
