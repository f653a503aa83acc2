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
    assert "exec sh scripts/serve.sh --host 0.0.0.0 --port 8000 --workers 2" in web["command"]
    serve = (ROOT / "scripts" / "serve.sh").read_text()
    assert (
        "-m uvicorn solaris.asgi:application --http solaris.serving:HTTPProtocol "
        '--no-proxy-headers "$@"'
    ) in serve
    assert set(web["depends_on"]) >= {"postgres", "redis", "litellm"}


def test_web_workers_share_their_metrics_in_a_directory_of_their_own():
    web = compose()["services"]["web"]
    directory = web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    # A tmpfs: empty at every container start, never shared with another container.
    assert web["tmpfs"] == [directory]
    for name in ("worker", "beat"):
        assert "PROMETHEUS_MULTIPROC_DIR" not in compose()["services"][name]["environment"]


def test_the_monitoring_profile_adds_prometheus_and_grafana_only():
    services = compose()["services"]
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == {"prometheus", "grafana"}
    assert all(services[name]["profiles"] == ["monitoring"] for name in profiled)
    for name in profiled:
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, not in the repository"
        # Published on loopback only: no credentials guard Prometheus, Grafana's are a default.
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])


def test_prometheus_scrapes_the_web_service_with_the_rules_loaded():
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"])
    assert mounts["./ops/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]  # relative to the config: the same file here
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "solaris" and job.get("metrics_path", "/metrics") == "/metrics"
    (target,) = [t for group in job["static_configs"] for t in group["targets"]]
    host, port = target.split(":")
    assert host in services and "--port " + port in services["web"]["command"]
    # Solaris answers only the hosts it allows: the target's must be one of web's defaults.
    allowed = services["web"]["environment"]["ALLOWED_HOSTS"]
    assert host in re.search(r":-([^}]*)}", allowed).group(1).split(",")


def test_grafana_reads_that_prometheus():
    services = compose()["services"]
    datasources = yaml.safe_load(
        (ROOT / "ops" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (source,) = datasources
    assert source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in services and "prometheus" in services["grafana"]["depends_on"]
