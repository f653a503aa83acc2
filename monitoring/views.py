from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from monitoring.collector import SolarisCollector
from proxy import metrics


def metrics_view(request) -> HttpResponse:
    """/metrics: every web process's counters (added up from PROMETHEUS_MULTIPROC_DIR when set)
    and the installation's gauges, computed once for this scrape."""
    # auto_describe off: registering must not run the collectors (the database ones would run twice).
    registry = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(metrics.REGISTRY)
    registry.register(SolarisCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
