import gettext
import re
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

DASHBOARD = reverse("admin-dashboard")


def test_admin_speaks_portuguese_first(admin_client, plan):
    from tests.factories import UserFactory

    UserFactory()  # a customer, so the user list has columns (staff are hidden by default)
    page = admin_client.get(DASHBOARD).text
    assert "Painel de créditos" in page and "créditos consumidos hoje" in page
    users = admin_client.get(reverse("admin:accounts_user_changelist")).text
    assert "estado dos créditos" in users and "disponível" in users.lower()


def test_english_is_available(admin_client, plan):
    page = admin_client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="en").text
    assert "Credit dashboard" in page and "credits consumed today" in page


@pytest.mark.parametrize("language", ["pt-br", "en"])
def test_the_form_page_renders_in_each_language(admin_client, plan, language):
    from tests.factories import UserFactory

    user = UserFactory()
    url = reverse("admin:accounts_user_add_credits", args=[user.pk])
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language).text
    expected = {"pt-br": "Adicionar créditos", "en": "Add credits"}[language]
    assert expected in page


def test_catalog_is_complete_and_compiled(tmp_path):
    """Every message translated (none fuzzy), and the committed .mo is the .po compiled."""
    folder = Path(__file__).resolve().parents[2] / "backoffice/locale/pt_BR/LC_MESSAGES"
    statistics = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "fresh.mo"), "django.po"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    complete = re.fullmatch(r"(\d+) translated messages?\.", statistics.strip())
    assert complete, statistics  # no "untranslated" or "fuzzy" in msgfmt's count
    assert int(complete[1]) > 250
    with (
        (folder / "django.mo").open("rb") as committed,
        (tmp_path / "fresh.mo").open("rb") as fresh,
    ):
        stale = gettext.GNUTranslations(committed)._catalog  # type: ignore[attr-defined]
        current = gettext.GNUTranslations(fresh)._catalog  # type: ignore[attr-defined]
    assert stale == current, "run: msgfmt -o django.mo django.po"
