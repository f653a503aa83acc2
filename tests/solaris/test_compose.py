"""docker-compose.yml gives every Solaris process the variables the settings read."""

import re

import yaml

from tests.conftest import ROOT

PRODUCTION_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "LITELLM_BASE_URL",
    "LITELLM_API_KEY",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "SOLARIS_PUBLIC_URL",
    "SOLARIS_PURCHASE_EMAIL",
}


def settings_vars() -> set[str]:
    source = (ROOT / "solaris" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_whole_topology():
    assert set(compose()["services"]) >= {
        "postgres",
        "redis",
        "litellm",
        "web",
        "worker",
        "beat",
        "mailpit",
    }


def test_every_solaris_service_gets_what_the_settings_read():
    read = settings_vars()
    assert read >= PRODUCTION_VARS
    for name in ("web", "worker", "beat"):
        environment = compose()["services"][name]["environment"]
        assert set(environment) >= PRODUCTION_VARS, name
        unknown = set(environment) - read
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_web_serves_the_asgi_application():
    web = compose()["services"]["web"]
    assert "solaris.asgi:application" in web["command"]
    assert set(web["depends_on"]) >= {"postgres", "redis", "litellm"}
