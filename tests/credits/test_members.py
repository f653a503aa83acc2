"""Auto-provisioning policy of an integration (credits.services.members): which unknown LibreChat
users are created, and on which plan — through the balance API, which resolves the end user of an
integration key exactly as the proxy does."""

import logging

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.services import email_domains_clean, integration_create
from credits.models import LedgerEntry
from tests.factories import PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


def me(client, key: str, email: str):
    return client.get(
        "/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_LIBRECHAT_USER_EMAIL=email
    )


def refused(response) -> bool:
    return (
        response.status_code == 401 and response.json()["error"]["code"] == "user_identity_missing"
    )


@pytest.fixture
def paid_default(db):
    """A default plan that grants an allowance: what an open registration must not mint."""
    return PlanFactory(slug="basico", monthly_allowance=100_000, is_default=True)


@pytest.fixture
def trial(db):
    return PlanFactory(slug="teste", monthly_allowance=0)


def test_an_open_integration_with_domains_cannot_mint_allowance_for_any_address(
    client, paid_default
):
    _integration, key = integration_create(name="librechat", provision_domains=["empresa.com.br"])
    for address in ("intruso@gmail.com", "x@sub.empresa.com.br", "x@empresa.com.br.evil.com"):
        assert refused(me(client, key, address)), address
    assert not User.objects.exists()
    assert not LedgerEntry.objects.exists()
    response = me(client, key, "Ana.Souza@EMPRESA.com.br")
    assert response.status_code == 200
    created = User.objects.get()
    assert created.email == "ana.souza@empresa.com.br"
    assert created.subscription.plan == paid_default


def test_new_users_get_the_integration_s_plan_not_the_default_one(client, paid_default, trial):
    _integration, key = integration_create(name="librechat", provision_plan="teste")
    assert me(client, key, "nova@example.com").status_code == 200
    user = User.objects.get(email="nova@example.com")
    assert user.subscription.plan == trial
    assert user.account.balance == 0
    assert not LedgerEntry.objects.filter(account_id=user.pk).exists()


def test_an_existing_user_is_found_whatever_the_policy(client, paid_default):
    UserFactory(email="antiga@outra.com")
    _integration, key = integration_create(name="librechat", provision_domains=["empresa.com.br"])
    assert me(client, key, "antiga@outra.com").status_code == 200


@pytest.mark.parametrize(
    "address",
    [
        '"ana@empresa.com.br"@evil.com',  # quoted local part hiding a second "@"
        '"ana"@empresa.com.br',
        "not-an-address",
        "ana@empresa..com.br",
    ],
)
def test_quoted_or_invalid_addresses_are_never_created(client, paid_default, address):
    _integration, key = integration_create(name="librechat")
    assert refused(me(client, key, address))
    assert not User.objects.exists()


def test_a_plan_that_no_longer_exists_provisions_nobody(client, paid_default, trial, caplog):
    _integration, key = integration_create(name="librechat", provision_plan="teste")
    trial.slug = "teste-2026"
    trial.save()
    with caplog.at_level(logging.ERROR):
        assert refused(me(client, key, "nova@example.com"))
    assert not User.objects.exists()
    assert any("unknown plan" in record.getMessage() for record in caplog.records)


def test_without_auto_provisioning_nobody_is_created(client, paid_default):
    _integration, key = integration_create(name="librechat", auto_provision=False)
    assert refused(me(client, key, "nova@example.com"))
    assert not User.objects.exists()


def test_domains_are_kept_lower_case_once_each_and_must_be_domains():
    assert email_domains_clean([" Empresa.COM.br", "@filial.com.br", "", "empresa.com.br"]) == [
        "empresa.com.br",
        "filial.com.br",
    ]
    for wrong in ("a b.com", "*.empresa.com", "empresa..com", "-x.com"):
        with pytest.raises(ValidationError):
            email_domains_clean([wrong])
