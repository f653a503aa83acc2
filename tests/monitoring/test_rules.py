"""The alert rules in ops/prometheus: valid for Prometheus's own tool, unit-tested with it, and
each one documented (both summaries, a runbook section that exists)."""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

PROMETHEUS = ROOT / "ops" / "prometheus"
RULE_FILES = [PROMETHEUS / "alerts.yml", PROMETHEUS / "optional" / "no-traffic.yml"]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool: apt-get install prometheus"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def alerts_of(path) -> list[dict]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path):
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
@pytest.mark.parametrize(
    "tests", ["alerts.test.yml", "optional/no-traffic.test.yml"], ids=lambda name: name
)
def test_promtool_test_rules(tests):
    tested = promtool("test", "rules", tests)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_promtool
def test_promtool_check_config_of_the_compose_prometheus(tmp_path):
    # The metrics token file is compose's secret: a stand-in here, and the rule files by their
    # path, so promtool checks the rest as Prometheus loads it.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    token = tmp_path / "solaris_metrics_token"
    token.write_text("token\n")
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == "/run/secrets/solaris_metrics_token"
        job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(PROMETHEUS / name) for name in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_fires_and_stays_silent_in_its_unit_tests(path):
    test_file = path.with_name(path.stem + ".test.yml")
    cases = [
        case
        for test in yaml.safe_load(test_file.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for alert in alerts_of(path):
        name = alert["alert"]
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
        assert outcomes == {True, False}, f"{name} needs a firing and a silent case"


def test_every_alert_has_both_summaries_and_a_runbook_section():
    operations = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, flags=re.M)
    }
    for path in RULE_FILES:
        for alert in alerts_of(path):
            annotations = alert["annotations"]
            assert annotations["summary"] and annotations["summary_en"], alert["alert"]
            assert annotations["summary"] != annotations["summary_en"], alert["alert"]
            page, _sep, anchor = annotations["runbook"].partition("#")
            assert page == "docs/operations.md" and anchor in anchors, alert["alert"]
            assert alert["labels"]["severity"] in {"critical", "warning"}


def test_the_optional_rules_are_not_loaded_by_default():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
