import pytest
from django.utils import translation

from tests.factories import ModelPriceFactory, PlanFactory, UserFactory


@pytest.fixture
def empty_plan(db):
    return PlanFactory(slug="vazio", monthly_allowance=0)


@pytest.fixture
def poor(empty_plan):
    """A user on a plan without allowance: every credit they have comes from the test."""
    return UserFactory(email="pobre@example.com", plan_slug="vazio")


@pytest.fixture
def unit_price(db):
    """One credit per token either way, so costs are easy to read."""
    return ModelPriceFactory(model="unit", input_weight="1", output_weight="1")


@pytest.fixture(autouse=True)
def english_messages():
    """Operators' default language is pt-BR; these tests read the services' messages in English."""
    with translation.override("en"):
        yield
