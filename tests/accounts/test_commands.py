from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from accounts.selectors import key_find
from credits.models import ModelPrice


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
    with pytest.raises(CommandError, match="already exists"):
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


def test_seed_demo_is_repeatable_and_prints_credentials(db):
    first = run("seed_demo")
    second = run("seed_demo")
    assert first[0].startswith("Admin:  admin@solaris.local / ")
    assert key_find(raw_key=second[-1].split()[-1]).user.email == "demo@solaris.local"
    assert User.objects.count() == 2
    assert ModelPrice.objects.filter(active=True).count() == 2
