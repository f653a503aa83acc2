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
