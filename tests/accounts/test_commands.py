from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from accounts.models import Integration, User
from accounts.selectors import key_find


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_create_user_on_default_and_named_plan(plan):
    from tests.factories import PlanFactory

    PlanFactory(slug="pro", monthly_allowance=1_000_000)
    assert run("create_user", "a@example.com")[-1] == (
        "Created a@example.com on plan basico (Basico, the default plan)"
    )
    assert run("create_user", "b@example.com", "--plan", "pro")[-1] == (
        "Created b@example.com on plan pro (Pro, not the default plan)"
    )
    assert User.objects.get(email="b@example.com").account.balance == 1_000_000


def test_create_user_refuses_duplicates_and_unknown_plans(user):
    # The operator reads Solaris's default language (pt-BR), whatever a test left active.
    with (
        translation.override("pt-br"),
        pytest.raises(CommandError, match="Já existe um usuário com este e-mail"),
    ):
        run("create_user", "ana@example.com")
    with pytest.raises(CommandError) as refused:
        run("create_user", "x@example.com", "--plan", "nope")
    assert str(refused.value) == (
        "There is no plan 'nope'. Create it first with `manage.py create_plan nope --name NAME`, "
        "or leave --plan out to get the default plan (basico)."
    )
    assert not User.objects.filter(email="x@example.com").exists()


def test_create_api_key_prints_a_working_key_last(user):
    raw = run("create_api_key", "ana@example.com")[-1]
    assert key_find(raw_key=raw).user == user


def test_create_api_key_for_unknown_user_fails(db):
    with pytest.raises(CommandError, match="No user"):
        run("create_api_key", "ghost@example.com")


def test_create_integration_prints_the_key_last(db):
    raw = run("create_integration", "librechat", "--no-auto-provision")[-1]
    integration = key_find(raw_key=raw)
    assert integration.name == "librechat" and integration.auto_provision is False
    assert integration.notices_in_band is True


def test_create_integration_with_its_provisioning_policy(plan):
    from tests.factories import PlanFactory

    PlanFactory(slug="teste", monthly_allowance=0)
    out = run(
        "create_integration",
        "librechat",
        "--domains",
        "Empresa.com.br, filial.com.br",
        "--plan",
        "teste",
        "--no-notices",
    )
    assert out[0] == (
        "Integration librechat (creates unknown users of empresa.com.br, filial.com.br on plan "
        "teste; refusals as HTTP errors)."
    )
    integration = key_find(raw_key=out[-1])
    assert integration.provision_domains == ["empresa.com.br", "filial.com.br"]
    assert (integration.provision_plan, integration.notices_in_band) == ("teste", False)


@pytest.mark.parametrize(
    ("args", "error"),
    [(["--plan", "nope"], "nope"), (["--domains", "a b.com"], "a b.com")],
)
def test_create_integration_refuses_unknown_plans_and_bad_domains(plan, args, error):
    with pytest.raises(CommandError, match=error):
        run("create_integration", "librechat", *args)
    assert not Integration.objects.exists()
