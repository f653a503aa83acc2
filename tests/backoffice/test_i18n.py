import gettext
import json
from pathlib import Path

import pytest
from django.urls import reverse

DASHBOARD = reverse("admin-dashboard")


def test_admin_speaks_portuguese_first(admin_client, plan):
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


def po_entries(path) -> dict[str, tuple[str, str]]:
    """msgid → (msgid_plural, msgstr) of a .po file (a plural's first form). A message with a
    context is keyed as gettext keys it: "context\x04msgid"."""
    decode = lambda parts: "".join(json.loads(part) for part in parts)  # noqa: E731
    entries: dict[str, tuple[str, str]] = {}
    current: dict[str, list[str]] = {"msgctxt": [], "msgid": [], "msgid_plural": [], "msgstr": []}
    field = None
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith(
            ("msgctxt ", "msgid ", "msgid_plural ", "msgstr ", "msgstr[0] ", "msgstr[1] ")
        ):
            key, _space, text = line.partition(" ")
            field = {"msgstr[0]": "msgstr", "msgstr[1]": None}.get(key, key)
            if field:
                current[field] = [text]
        elif line.startswith('"') and field:
            current[field].append(line)
        elif not line.strip() and current["msgid"]:
            context = decode(current["msgctxt"])
            msgid = decode(current["msgid"])
            entries[f"{context}\x04{msgid}" if context else msgid] = (
                decode(current["msgid_plural"]),
                decode(current["msgstr"]),
            )
            current = {"msgctxt": [], "msgid": [], "msgid_plural": [], "msgstr": []}
            field = None
    return entries


def test_catalog_is_complete_and_compiled():
    folder = Path(__file__).resolve().parents[2] / "backoffice/locale/pt_BR/LC_MESSAGES"
    entries = po_entries(folder / "django.po")
    entries.pop("")
    assert len(entries) > 200  # the staff screens; credits, payments… keep their own catalogs
    assert [msgid for msgid, (_plural, msgstr) in entries.items() if not msgstr] == []
    with (folder / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    stale = [
        msgid
        for msgid, (plural, msgstr) in entries.items()
        if (catalog.ngettext(msgid, plural, 1) if plural else catalog.gettext(msgid)) != msgstr
    ]
    assert stale == [], "run: msgfmt -o django.mo django.po"
