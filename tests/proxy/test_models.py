"""GET /v1/models (proxy.views.models, proxy.catalog): LibreChat asks it before every chat call with
the user's headers, so it answers from Solaris's own tables, never waits for LiteLLM, and answers
every resolvable LibreChat user — suspended, out of credits or not created yet."""

import socket
import threading
import time

import httpx
import pytest
from django.core.cache import cache

from accounts.models import Integration, User
from accounts.services import api_key_create
from proxy import catalog
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory
from tests.proxy.conftest import free_port
from tests.proxy.fault_upstream import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def models(solaris, key: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{solaris.url}/v1/models",
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=20,
    )


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["object"] == "list"
    return [item["id"] for item in document["data"]]


def as_user(email: str) -> dict[str, str]:
    return {"X-LibreChat-User-Email": email}


@pytest.fixture
def narrow_plan(faulty, member):
    """Bia's plan allows fault-ok and a priced model LiteLLM does not serve."""
    ModelPriceFactory(model="not-upstream")
    plan = member.subscription.plan
    plan.all_models, plan.allowed_models = False, ["fault-ok", "not-upstream", "unpriced"]
    plan.save()
    return plan


def upstream_asked(faulty) -> int:
    return sum(1 for request in faulty.requests if request["path"] == "/v1/models")


def test_the_plan_s_priced_models_narrowed_to_litellm_s_once_known(
    faulty, solaris, member, integration_key, narrow_plan
):
    first = names(models(solaris, integration_key, **as_user(member.email)))
    # LiteLLM's list is not known yet: the plan's priced models, and a refresh in the background.
    assert first == ["fault-ok", "not-upstream"]
    wait_until(lambda: cache.get(catalog.KEY))
    assert names(models(solaris, integration_key, **as_user(member.email))) == ["fault-ok"]
    assert upstream_asked(faulty) == 1


def test_one_refresh_at_a_time_however_many_ask(faulty, solaris, member, member_key):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(models(solaris, member_key)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [response.status_code for response in results] == [200] * 8
    wait_until(lambda: cache.get(catalog.KEY))
    assert upstream_asked(faulty) == 1


def test_never_waits_for_a_litellm_that_does_not_answer(
    faulty, solaris, member, integration_key, narrow_plan, settings
):
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.LITELLM_BASE_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        listed = names(models(solaris, integration_key, **as_user(member.email)))
        assert time.monotonic() - started < 1.0
    assert listed == ["fault-ok", "not-upstream"]


def test_litellm_down_still_lists_the_plan_s_priced_models(
    faulty, solaris, member, member_key, integration_key, narrow_plan, settings
):
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert names(models(solaris, member_key)) == ["fault-ok", "not-upstream"]
    assert names(models(solaris, integration_key, **as_user(member.email))) == [
        "fault-ok",
        "not-upstream",
    ]


def test_the_last_list_is_kept_while_litellm_is_down(
    faulty, solaris, member, member_key, narrow_plan, settings
):
    stale = time.time() - catalog.REFRESH_SECONDS - 5
    cache.set(catalog.KEY, {"names": ["not-upstream"], "at": stale}, catalog.FORGET_SECONDS)
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{free_port()}"
    assert names(models(solaris, member_key)) == ["not-upstream"]
    time.sleep(0.3)  # the refresh failed meanwhile: the list stays
    assert names(models(solaris, member_key)) == ["not-upstream"]


def test_suspended_and_exhausted_librechat_users_get_their_list(
    faulty, solaris, integration_key, plan_live
):
    suspended = UserFactory(email="suspensa@example.com")
    User.objects.filter(pk=suspended.pk).update(is_suspended=True)
    PlanFactory(slug="zero", monthly_allowance=0, all_models=False, allowed_models=["fault-big"])
    exhausted = UserFactory(email="zero@example.com", plan_slug="zero")
    assert "fault-ok" in names(models(solaris, integration_key, **as_user(suspended.email)))
    assert names(models(solaris, integration_key, **as_user(exhausted.email))) == ["fault-big"]


def test_a_user_not_created_yet_sees_the_plan_they_would_get_and_is_not_created(
    faulty, solaris, plan_live, integration_key
):
    PlanFactory(slug="teste", monthly_allowance=0, all_models=False, allowed_models=["fault-ok"])
    Integration.objects.update(provision_plan="teste")
    assert names(models(solaris, integration_key, **as_user("nova@example.com"))) == ["fault-ok"]
    assert not User.objects.filter(email="nova@example.com").exists()


def test_only_a_wrong_key_or_an_unresolvable_identity_is_refused(
    faulty, solaris, member, integration_key, plan_live
):
    Integration.objects.update(provision_domains=["example.com"])
    refusals = [
        (models(solaris, "sol-int-wrong", **as_user(member.email)), 401, "invalid_api_key"),
        (models(solaris, integration_key), 401, "user_identity_missing"),
        (
            models(solaris, integration_key, **as_user("{{LIBRECHAT_USER_EMAIL}}")),
            401,
            "user_identity_missing",
        ),
        (models(solaris, integration_key, **as_user("x@outra.com")), 401, "user_identity_missing"),
    ]
    for response, status, code in refusals:
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
    assert not User.objects.filter(email="x@outra.com").exists()


def test_a_personal_key_of_a_suspended_user_is_still_refused(faulty, solaris, member):
    key = api_key_create(user=member)[1]
    User.objects.filter(pk=member.pk).update(is_suspended=True)
    response = models(solaris, key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"
