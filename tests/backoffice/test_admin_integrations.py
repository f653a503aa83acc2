"""The integration's provisioning policy and notices switch, as staff edit them in admin."""

from django.urls import reverse

from accounts.models import Integration
from accounts.services import integration_create
from tests.factories import PlanFactory


def change_url(integration: Integration) -> str:
    return reverse("admin:accounts_integration_change", args=[integration.pk])


def test_staff_set_domains_plan_and_notices(admin_client, plan):
    PlanFactory(slug="teste", name="Teste", monthly_allowance=0)
    integration, _key = integration_create(name="librechat")
    page = admin_client.get(change_url(integration))
    assert page.status_code == 200
    assert '<option value="teste">Teste</option>' in page.text
    response = admin_client.post(
        change_url(integration),
        {
            "name": "librechat",
            "auto_provision": "on",
            "provision_domains": "Empresa.com.br, @filial.com.br",
            "provision_plan": "teste",
        },
    )
    assert response.status_code == 302, response.text
    integration.refresh_from_db()
    assert integration.provision_domains == ["empresa.com.br", "filial.com.br"]
    assert integration.provision_plan == "teste"
    assert integration.notices_in_band is False  # the box was left unticked
    listing = admin_client.get(reverse("admin:accounts_integration_changelist"))
    assert "empresa.com.br, filial.com.br" in listing.text
    assert 'value="empresa.com.br, filial.com.br"' in admin_client.get(change_url(integration)).text


def test_a_wrong_domain_or_plan_is_refused_and_changes_nothing(admin_client, plan):
    integration, _key = integration_create(name="librechat")
    for field, value in (("provision_domains", "a b.com"), ("provision_plan", "nope")):
        response = admin_client.post(
            change_url(integration),
            {"name": "librechat", "auto_provision": "on", "notices_in_band": "on", field: value},
        )
        assert response.status_code == 200
        assert "errorlist" in response.text
    integration.refresh_from_db()
    assert (integration.provision_domains, integration.provision_plan) == ([], "")
