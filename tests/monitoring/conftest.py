import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families

from proxy import protection


def samples_of(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def scrape(client):
    """GET /metrics through Django, parsed."""

    def scrape() -> dict[tuple[str, frozenset], float]:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return samples_of(response.content.decode())

    return scrape


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    protection.circuit_forget()
    yield
    cache.clear()
    protection.circuit_forget()
