"""The layers of docs/architecture.md hold: every import between Solaris's packages points down,
and no two packages import each other. An upward import anywhere (even one inside a function, as
Django code often does to dodge a cycle) fails here with the import chain that breaks the layer."""

import tomllib
from pathlib import Path

import grimp
from django.apps import apps
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_every_import_points_down_the_layers(capsys):
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "1 kept, 0 broken" in report


def test_no_two_packages_import_each_other():
    packages = CONFIG["root_packages"]
    graph = grimp.build_graph(*packages, cache_dir=None)
    both_ways = [
        (first, second)
        for index, first in enumerate(packages)
        for second in packages[index + 1 :]
        if graph.direct_import_exists(importer=first, imported=second, as_packages=True)
        and graph.direct_import_exists(importer=second, imported=first, as_packages=True)
    ]
    assert both_ways == []


def test_every_solaris_app_is_in_the_contract():
    """A new app (or package) joins a layer before it lands: unlisted, its imports go unchecked."""
    ours = {
        config.name
        for config in apps.get_app_configs()
        if Path(config.path).resolve().parent == ROOT
    }
    assert ours - set(CONFIG["root_packages"]) == set()
    layered = {
        name.strip(" ()") for layer in CONFIG["contracts"][0]["layers"] for name in layer.split("|")
    }
    assert set(CONFIG["root_packages"]) <= layered
