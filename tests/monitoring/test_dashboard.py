"""ops/grafana/solaris.json: a dashboard Grafana provisions as is, reading Solaris's metrics.
(That every name it reads is one /metrics exposes after traffic: test_live.py.)"""

import json

import pytest
import yaml

from tests.conftest import ROOT
from tests.monitoring.promql import metric_names

GRAFANA = ROOT / "ops" / "grafana"


def dashboard() -> dict:
    return json.loads((GRAFANA / "solaris.json").read_text())


def panel_queries(board: dict) -> dict[str, list[str]]:
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in board["panels"]
        if panel["type"] != "row"
    }


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (model) (rate(solaris_proxy_requests_total{end_reason!="refused"}[5m])) * 60',
            {"solaris_proxy_requests_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(a_bucket[$__rate_interval])))",
            {"a_bucket"},
        ),
        ("time() - max(b_seconds) > 2 * max(c_seconds) offset 1h", {"b_seconds", "c_seconds"}),
        ('x{a="sum(y)"} / on() group_left(kind) z', {"x", "z"}),
        ("(sum(increase(r[30m])) or vector(0)) == 0 and on() hour() >= 12", {"r"}),
    ],
)
def test_metric_names_of_promql(expr, names):
    assert metric_names(expr) == names


def test_every_panel_queries_the_provisioned_data_source():
    board = dashboard()
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uid = datasources[0]["uid"]
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert board["uid"] == "solaris" and panels
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            names = metric_names(target["expr"])
            assert names and all(name.startswith("solaris_") for name in names), target["expr"]


def test_the_dashboard_shows_what_operators_watch():
    read = set().union(*(metric_names(e) for q in panel_queries(dashboard()).values() for e in q))
    assert read >= {
        "solaris_proxy_requests_total",  # calls per minute by model
        "solaris_proxy_credits_total",  # credits per minute by model
        "solaris_proxy_added_latency_seconds_bucket",  # Solaris-added latency percentiles
        "solaris_proxy_open_streams",
        "solaris_upstream_circuit_state",
        "solaris_accounts",  # users in alert and blocked
        "solaris_notifications",  # delivery
        "solaris_holds_open",
        "solaris_holds_oldest_age_seconds",
        "solaris_ledger_violations",
        "solaris_upstream_errors_total",
        "solaris_proxy_notices_total",
    }


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "solaris.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounted = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounted["./ops/grafana/solaris.json"] == provider["options"]["path"] + "/solaris.json"
    assert mounted["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
