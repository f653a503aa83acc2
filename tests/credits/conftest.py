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


@pytest.fixture(params=[pytest.param("fast", marks=pytest.mark.postgres), "orm"])
def both_paths(request, settings):
    """The rule tests run twice: through PostgreSQL's one-statement fast path (credits/sql/) and
    through the ORM services alone, so each rule is proven on both. SQLite has the ORM path only."""
    settings.SOLARIS_SQL_FAST_PATH = request.param == "fast"
    return request.param


@pytest.fixture(autouse=True)
def english_messages():
    """Operators' default language is pt-BR; these tests read the services' messages in English."""
    with translation.override("en"):
        yield
