"""Plans and model prices through the admin API: list, create, change, with the admin's rights."""

from decimal import Decimal

import pytest

from accounts.services import api_key_create
from credits.models import ModelPrice, Plan
from tests.backoffice.conftest import staff
from tests.backoffice.test_api import BASE, assert_error

PLAN = {
    "slug": "pro",
    "name": "Pro",
    "monthly_allowance": 2_000_000,
    "all_models": False,
    "allowed_models": ["gpt-4o", "gpt-4o-mini", "gpt-4o"],
    "requests_per_minute": 120,
    "default_max_tokens": 2048,
}


@pytest.fixture
def api(client, staff_key):
    def call(method, path, body=None, *, key=staff_key):
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        return getattr(client, method)(BASE + path, HTTP_AUTHORIZATION=f"Bearer {key}", **kwargs)

    return call


# --- plans ---


def test_create_list_show_and_change_a_plan(api, db):
    created = api("post", "plans", PLAN)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["allowed_models"] == ["gpt-4o", "gpt-4o-mini"]  # duplicates dropped
    assert (body["monthly_allowance"], body["is_default"], body["active"]) == (
        2_000_000,
        False,
        True,
    )
    # The default plan migrate creates is listed too.
    assert [plan["slug"] for plan in api("get", "plans").json()["results"]] == ["padrao", "pro"]
    assert api("get", "plans/pro").json()["name"] == "Pro"
    assert api("patch", "plans/padrao", {"is_default": False}).status_code == 200
    changed = api("patch", "plans/pro", {"monthly_allowance": 0, "is_default": True})
    assert changed.status_code == 200
    plan = Plan.objects.get(slug="pro")
    assert (plan.monthly_allowance, plan.is_default, plan.requests_per_minute) == (0, True, 120)
    assert api("get", "plans?active=false").json()["count"] == 0
    assert_error(api("get", "plans/nao-existe"), 404, "not_found")


def test_minimal_plan_takes_the_defaults(api, db):
    body = api("post", "plans", {"slug": "livre", "name": "Livre"}).json()
    assert body["all_models"] is True and body["allowed_models"] == []
    assert (body["requests_per_minute"], body["default_max_tokens"]) == (60, 4096)


def test_duplicate_slug_is_a_conflict(api, plan):
    count = Plan.objects.count()
    error = assert_error(api("post", "plans", {**PLAN, "slug": plan.slug}), 409, "already_exists")
    assert error["param"] == "slug"
    assert Plan.objects.count() == count


def test_only_one_default_plan_and_it_stays_active(api, plan):
    api("post", "plans", PLAN)
    assert_error(
        api("patch", "plans/pro", {"is_default": True}), 400, "invalid_request_error", "is_default"
    )
    assert_error(
        api("patch", f"plans/{plan.slug}", {"active": False}),
        400,
        "invalid_request_error",
        "active",
    )
    assert Plan.objects.get(slug=plan.slug).active
    assert not Plan.objects.get(slug="pro").is_default


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"slug": "com espaço"}, "slug"),
        ({"slug": "x" * 51}, "slug"),
        ({"slug": "nul\u0000"}, "slug"),
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"monthly_allowance": -1}, "monthly_allowance"),
        ({"monthly_allowance": 10**30}, "monthly_allowance"),
        ({"monthly_allowance": "muito"}, "monthly_allowance"),
        ({"monthly_allowance": 1.5}, "monthly_allowance"),
        ({"requests_per_minute": -5}, "requests_per_minute"),
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"default_max_tokens": 2**40}, "default_max_tokens"),
        ({"allowed_models": "gpt-4o"}, "allowed_models"),
        ({"allowed_models": [1, 2]}, "allowed_models.0"),
        ({"allowed_models": [""]}, "allowed_models.0"),
        ({"name": 5}, "name"),
        ({"allowed_models": ["m" * 201]}, "allowed_models"),
        ({"all_models": "talvez"}, "all_models"),
        ({"is_default": True, "active": False}, "active"),
    ],
)
def test_bad_plan_is_a_400_naming_the_field_and_writes_nothing(api, db, change, param):
    assert_error(api("post", "plans", {**PLAN, **change}), 400, "invalid_request_error", param)
    assert not Plan.objects.filter(is_default=False).exists()


def test_bad_change_writes_nothing(api, plan):
    for change, param in [({"monthly_allowance": -1}, "monthly_allowance"), ({"name": ""}, "name")]:
        assert_error(
            api("patch", f"plans/{plan.slug}", change), 400, "invalid_request_error", param
        )
    assert Plan.objects.get(pk=plan.pk).monthly_allowance == 100_000


def test_plans_need_the_admin_rights(api, plan):
    for group in ("Financeiro", "Suporte"):
        key = api_key_create(user=staff(f"{group}@solaris.test", group=group))[1]
        assert api("get", "plans", key=key).status_code == 200
        assert_error(api("post", "plans", PLAN, key=key), 403, "permission_denied")
        assert_error(
            api("patch", f"plans/{plan.slug}", {"name": "X"}, key=key), 403, "permission_denied"
        )
    assert not Plan.objects.filter(slug=PLAN["slug"]).exists()
    assert Plan.objects.get(pk=plan.pk).name == plan.name


# --- model prices ---


def test_price_list_create_and_change(api, db):
    created = api(
        "post",
        "model-prices",
        {"model": "openai/gpt-4o", "input_weight": "2.5", "output_weight": 10},
    )
    assert created.status_code == 201, created.content
    assert created.json()["active"] is True
    price = ModelPrice.objects.get(model="openai/gpt-4o")
    assert (price.input_weight, price.output_weight) == (Decimal("2.5"), Decimal("10"))
    shown = api("get", "model-prices/openai/gpt-4o").json()
    assert shown["input_weight"] == "2.500000"
    changed = api("patch", "model-prices/openai/gpt-4o", {"output_weight": "12.5", "active": False})
    assert changed.status_code == 200
    price.refresh_from_db()
    assert (price.input_weight, price.output_weight, price.active) == (
        Decimal("2.5"),
        Decimal("12.5"),
        False,
    )
    assert api("get", "model-prices?active=true").json()["count"] == 0
    assert_error(api("patch", "model-prices/nao-existe", {"active": True}), 404, "not_found")


def test_pricing_a_priced_model_again_is_a_conflict(api, price):
    body = {"model": price.model, "input_weight": "9", "output_weight": "9"}
    assert_error(api("post", "model-prices", body), 409, "already_exists", "model")
    assert ModelPrice.objects.get(pk=price.pk).input_weight == Decimal("1.5")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input_weight": 0}, "input_weight"),
        ({"output_weight": "-1"}, "output_weight"),
        ({"input_weight": "NaN"}, "input_weight"),
        ({"input_weight": "Infinity"}, "input_weight"),
        ({"input_weight": "1e400"}, "input_weight"),
        ({"output_weight": "0.0000001"}, "output_weight"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 2**31}, "max_output_tokens"),
        ({"model": ""}, "model"),
        ({"model": "m" * 201}, "model"),
        ({"model": "a\u0000b"}, "model"),
        ({"model": 7}, "model"),
    ],
)
def test_bad_price_is_a_400_and_writes_nothing(api, db, change, param):
    body = {"model": "novo", "input_weight": "1", "output_weight": "2", **change}
    assert_error(api("post", "model-prices", body), 400, "invalid_request_error", param)
    assert not ModelPrice.objects.exists()


def test_prices_need_the_admin_rights(api, price):
    key = api_key_create(user=staff("fin@solaris.test", group="Financeiro"))[1]
    assert api("get", "model-prices", key=key).status_code == 200
    body = {"model": "x", "input_weight": "1", "output_weight": "1"}
    assert_error(api("post", "model-prices", body, key=key), 403, "permission_denied")
    change = {"input_weight": "99"}
    assert_error(
        api("patch", f"model-prices/{price.model}", change, key=key), 403, "permission_denied"
    )
    assert ModelPrice.objects.get(pk=price.pk).input_weight == Decimal("1.5")
