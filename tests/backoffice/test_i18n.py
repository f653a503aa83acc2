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
