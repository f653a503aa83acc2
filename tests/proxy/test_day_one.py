"""Day one: a fresh PostgreSQL serves a chat call after the operator's first steps; a user without
a subscription is on the default plan everywhere; an account that cannot pay a short call is
`blocked` on every surface at once."""

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from django.urls import reverse

from accounts.services import api_key_create
from backoffice.selectors import dashboard_get
from credits.models import Subscription
from credits.selectors import account_summary
from credits.services import credits_grant, hold_create, hold_settle
from proxy.models import CallRecord
from tests.backoffice.conftest import staff
from tests.conftest import ROOT
from tests.factories import ModelPriceFactory, UserFactory
from tests.monitoring.conftest import samples_of, value
from tests.monitoring.servers import Workers
from tests.proxy.fault_upstream import PROMPT_TOKENS, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Olá"}]


def admin_key(admin) -> str:
    return f"Bearer {api_key_create(user=admin, name='admin')[1]}"


def chat(solaris, key, **body):
    response = httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "fault-ok", "messages": MESSAGES, **body},
        timeout=20,
    )
    solaris.settled()
    return response


def test_a_user_without_a_subscription_is_on_the_default_plan(faulty, solaris, client):
    user = UserFactory(email="sem-plano@example.com")
    Subscription.objects.filter(user=user).delete()  # e.g. made before any plan existed
    credits_grant(user=user, amount=10_000, idempotency_key="fund")
    key = api_key_create(user=user, name="k")[1]

    models = httpx.get(f"{solaris.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert "fault-ok" in [item["id"] for item in models.json()["data"]]
    response = chat(solaris, key, max_tokens=4)
    assert response.status_code == 200
    assert CallRecord.objects.get(user=user).credits > 0

    balance = client.get(reverse("portal:api-balance"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert balance.json()["plan"] == {"slug": "padrao", "name": "Padrão"}
    admin = staff("chefe@solaris.test", superuser=True)
    listed = client.get(
        "/api/v1/admin/users", {"search": "sem-plano"}, HTTP_AUTHORIZATION=admin_key(admin)
    ).json()
    assert [row["plan"] for row in listed["results"]] == ["padrao"]
    client.force_login(admin)
    page = client.get(reverse("admin:accounts_user_changelist"), {"q": "sem-plano"})
    assert "Padrão" in page.text


def test_a_request_larger_than_what_is_left_is_not_credits_exhausted(faulty, solaris):
    user = UserFactory(email="meio@example.com")
    credits_grant(user=user, amount=2_000, idempotency_key="fund")
    key = api_key_create(user=user, name="k")[1]
    long_prompt = [{"role": "user", "content": "palavra " * 3_000}]
    response = chat(solaris, key, messages=long_prompt)
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["X-Solaris-Credit-State"] == "normal"
    error = response.json()["error"]
    assert error["code"] == "request_exceeds_credits"
    assert error["message"].startswith("Esta solicitação é maior que os seus créditos restantes")
    assert "2.000" in error["message"] or "2000" in error["message"]
    assert faulty.requests == []
    assert chat(solaris, key, max_tokens=4).status_code == 200  # a normal call still passes


def test_an_account_that_cannot_pay_a_short_call_is_blocked_everywhere(faulty, solaris, client):
    """500 credits left: a short call on the cheapest model (fault-* at 1 and 2 credits a token)
    costs 200 + 256 × 2 = 712, and not even a tiny prompt with the smallest answer (522) fits."""
    user = UserFactory(email="quase@example.com")
    credits_grant(user=user, amount=1_000, idempotency_key="fund")
    price = ModelPriceFactory(model="fault-ok")
    hold_create(user=user, request_id="spent", price=price, prompt_tokens=100, max_tokens=200)
    hold_settle(request_id="spent", prompt_tokens=100, completion_tokens=200)
    key = api_key_create(user=user, name="k")[1]
    assert account_summary(user_id=user.pk).available == 500

    refused = chat(solaris, key, max_tokens=300)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert refused.headers["X-Solaris-Credit-State"] == "blocked"
    assert refused.headers["X-Solaris-Credits-Remaining"] == "500"

    balance = client.get(reverse("portal:api-balance"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (balance.json()["state"], balance.json()["available"]) == ("blocked", 500)
    client.force_login(user)
    page = client.get(reverse("portal:statement")).text
    assert '<dialog class="modal blocking" id="blocked-modal" data-open' in page

    admin = staff("chefe@solaris.test", superuser=True)
    client.force_login(admin)
    listed = client.get(reverse("admin:accounts_user_changelist"), {"credit_state": "blocked"})
    assert "quase@example.com" in listed.text
    api = client.get(
        "/api/v1/admin/users", {"state": "blocked"}, HTTP_AUTHORIZATION=admin_key(admin)
    ).json()
    assert [row["email"] for row in api["results"]] == ["quase@example.com"]
    assert dashboard_get(days=30).users_blocked == 1
    samples = samples_of(client.get("/metrics").content.decode())
    assert value(samples, "solaris_accounts", state="blocked") == 1


def _admin_url(database: str) -> str:
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{database}"))


@pytest.mark.postgres
@pytest.mark.slow
def test_a_fresh_postgresql_serves_a_call_after_the_first_steps(tmp_path, fault_upstream):
    """migrate, set_model_price, create_user (no plan named), grant_credits, create_api_key on an
    empty database, then a chat call through Solaris served as in production (scripts/serve.sh)."""
    name = f"solaris_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _admin_url(name)
    env = {**os.environ, "DATABASE_URL": url}
    env.setdefault("SECRET_KEY", "fresh-install-test-" + "x" * 40)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    server = None
    try:
        manage("migrate", "--no-input")
        manage("set_model_price", "fault-ok", "--input", "1", "--output", "2")
        assert manage("create_user", "ana@example.com").strip() == (
            "Created ana@example.com on plan padrao (Padrão, the default plan)"
        )
        manage("grant_credits", "ana@example.com", "10000")
        key = manage("create_api_key", "ana@example.com").splitlines()[-1]
        server = Workers(
            tmp_path,
            workers=1,
            DATABASE_URL=url,
            LITELLM_BASE_URL=fault_upstream.base_url,
            LITELLM_API_KEY="sk-upstream",
        ).start()
        response = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fault-ok", "messages": MESSAGES, "max_tokens": 5},
            timeout=20,
        )
        assert response.status_code == 200, response.text
        cost = PROMPT_TOKENS * 1 + 5 * 2
        with psycopg.connect(url) as database:

            def usage():
                row = database.execute(
                    "SELECT sum(amount) FROM credits_ledgerentry WHERE kind = 'usage'"
                ).fetchone()
                database.rollback()
                return row[0]

            assert wait_until(usage) == -cost
        assert manage("check_ledger").strip() == "ledger OK"
    finally:
        if server is not None:
            server.stop()
        time.sleep(0.2)
        with psycopg.connect(_admin_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
