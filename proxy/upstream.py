"""The only module that talks to LiteLLM."""

import httpx
from django.conf import settings


def _headers() -> dict[str, str]:
    return (
        {"Authorization": f"Bearer {settings.LITELLM_API_KEY}"} if settings.LITELLM_API_KEY else {}
    )


def check_ready() -> str:
    """Readiness of the upstream: "not configured" when LITELLM_BASE_URL is unset, else raises."""
    if not settings.LITELLM_BASE_URL:
        return "not configured"
    response = httpx.get(
        f"{settings.LITELLM_BASE_URL}/health/liveliness", headers=_headers(), timeout=2.0
    )
    response.raise_for_status()
    return "ok"


class UpstreamNotConfigured(Exception):
    """LITELLM_BASE_URL is not set."""


def models_list() -> list[str]:
    """The model names LiteLLM routes (GET /v1/models), sorted; raises httpx errors as they come."""
    if not settings.LITELLM_BASE_URL:
        raise UpstreamNotConfigured("LITELLM_BASE_URL is not set.")
    response = httpx.get(f"{settings.LITELLM_BASE_URL}/v1/models", headers=_headers(), timeout=10.0)
    response.raise_for_status()
    return sorted({item["id"] for item in response.json().get("data", []) if item.get("id")})
