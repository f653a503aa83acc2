"""Every page and e-mail reads naturally in pt-BR: every app's catalog is complete (no
untranslated or fuzzy entry, as `msgfmt --statistics` counts them), compiled from its .po, says
each message one way only, and every translatable string of the project is in some catalog."""

import gettext
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = sorted(ROOT.glob("*/locale/pt_BR/LC_MESSAGES/django.po"))
GETTEXT_CALL = re.compile(r"\b(gettext|gettext_lazy|ngettext|pgettext|pgettext_lazy|_)\(\s*['\"]")


def own_apps() -> list[str]:
    return [c.name for c in apps.get_app_configs() if (ROOT / c.name).is_dir()]


def test_every_app_that_has_strings_has_a_catalog():
    speaking = [
        app
        for app in own_apps()
        if any(GETTEXT_CALL.search(path.read_text()) for path in (ROOT / app).rglob("*.py"))
    ]
    assert speaking, "the scan found no translatable string at all"
    missing = [
        app for app in speaking if not (ROOT / app / "locale/pt_BR/LC_MESSAGES/django.po").exists()
    ]
    assert missing == []


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda path: path.parts[-5])
def test_a_catalog_has_no_untranslated_or_fuzzy_entry(catalog):
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(catalog)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "translated message" in result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda path: path.parts[-5])
def test_the_committed_mo_is_compiled_from_its_po(catalog, tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(catalog)], check=True)
    with fresh.open("rb") as new, catalog.with_suffix(".mo").open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(new)._catalog


def test_a_message_is_translated_one_way_in_every_catalog():
    """Django merges the catalogs: two translations of one message show whichever app wins."""
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for catalog in CATALOGS:
        with catalog.with_suffix(".mo").open("rb") as handle:
            for key, value in gettext.GNUTranslations(handle)._catalog.items():
                if key:
                    seen[str(key)][catalog.parts[-5]] = value
    assert {key: apps for key, apps in seen.items() if len(set(apps.values())) > 1} == {}


@pytest.mark.slow
def test_every_translatable_string_of_the_project_is_translated(tmp_path):
    """Extract every message of the project (code and templates) as makemessages does, from a copy
    without catalogs, and look each one up in the merged catalogs."""
    copy = tmp_path / "src"
    skip = shutil.ignore_patterns(
        ".*",
        "locale",
        "tests",
        "bench",
        "staticfiles",
        "test-artifacts",
        "__pycache__",
        "*.sqlite3",
    )
    shutil.copytree(ROOT, copy, ignore=skip)
    settings = tmp_path / "extract_settings.py"
    settings.write_text(
        f"from solaris.settings import *  # noqa: F403\nLOCALE_PATHS = [{str(tmp_path / 'locale')!r}]\n"
    )
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "pt_BR"],
        cwd=copy,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{tmp_path}:{copy}",
            "DJANGO_SETTINGS_MODULE": "extract_settings",
        },
        check=True,
        capture_output=True,
    )
    extracted = tmp_path / "locale/pt_BR/LC_MESSAGES/django.po"
    merged = tmp_path / "merged.po"
    subprocess.run(["msgcat", "--use-first", "-o", str(merged), *map(str, CATALOGS)], check=True)
    translated = tmp_path / "translated.po"
    subprocess.run(
        ["msgattrib", "--translated", "--no-fuzzy", "-o", str(translated), str(merged)], check=True
    )
    checked = tmp_path / "checked.po"
    subprocess.run(
        [
            "msgmerge",
            "-q",
            "--no-fuzzy-matching",
            "-o",
            str(checked),
            str(translated),
            str(extracted),
        ],
        check=True,
    )
    missing = subprocess.run(
        ["msgattrib", "--untranslated", str(checked)], capture_output=True, text=True, check=True
    ).stdout
    assert re.findall(r"^#: .*$", missing, re.MULTILINE) == []
