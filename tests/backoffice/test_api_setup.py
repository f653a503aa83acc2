"""An operator scripts the whole setup over the admin API, then a chat call works: Solaris served by
uvicorn, the pinned LiteLLM behind it, nothing clicked. Only the first admin key comes from the
shell (manage.py), as docs/admin.md says."""

import io

import httpx
import pytest
from django.core.management import call_command

from credits.models import LedgerEntry
from proxy.models import CallRecord
from tests.proxy.conftest import LiveSolaris, free_port

pytestmark = [pytest.mark.slow, pytest.mark.litellm]


@pytest.fixture
def solaris(transactional_db, settings):
    from tests.conftest import ROOT
    from tests.proxy.litellm_server import litellm_running

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    with litellm_running(ROOT / ".litellm-venv", free_port()) as (base_url, master_key):
        settings.LITELLM_BASE_URL, settings.LITELLM_API_KEY = base_url, master_key
        server = LiveSolaris().start()
        try:
            yield server
        finally:
            server.settled()
            server.stop()


def shell(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_operator_scripts_the_setup_and_a_call_passes(solaris):
    shell("create_user", "ops@solaris.test", "--superuser", "--password", "senha-forte-123")
    admin_key = shell("create_api_key", "ops@solaris.test")
    api = httpx.Client(
        base_url=f"{solaris.url}/api/v1/admin/",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=20,
    )
    with api:
        script_and_call(solaris, api)


def script_and_call(solaris, api: httpx.Client) -> None:
    plan = {"slug": "equipe", "name": "Equipe", "all_models": False, "allowed_models": ["mock-gpt"]}
    assert api.post("plans", json=plan).status_code == 201
    price = {"model": "mock-gpt", "input_weight": "1.5", "output_weight": "3"}
    assert api.post("model-prices", json=price).status_code == 201
    user = api.post("users", json={"email": "ana@example.com", "name": "Ana", "plan": "equipe"})
    assert user.status_code == 201 and user.json()["plan"] == "equipe"
    grant = {
        "user": "ana@example.com",
        "amount": 10_000,
        "reason": "PIX 1",
        "idempotency_key": "s1",
    }
    assert api.post("grants", json=grant).status_code == 201
    key = api.post("api-keys", json={"user": "ana@example.com", "name": "notebook"})
    assert key.status_code == 201

    chat = httpx.post(
        f"{solaris.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key.json()['key']}"},
        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "Olá"}]},
        timeout=30,
    )
    solaris.settled()
    assert chat.status_code == 200, chat.text
    assert chat.json()["usage"]["prompt_tokens"] == 10
    # The credits moved, and the operator sees it through the same API.
    summary = api.get(f"users/{user.json()['id']}").json()
    assert summary["available"] == 10_000 - 75  # ceil(10 × 1.5 + 20 × 3)
    calls = api.get("calls", params={"user": "ana@example.com"}).json()["results"]
    assert [(row["model"], row["credits"], row["status_code"]) for row in calls] == [
        ("mock-gpt", 75, 200)
    ]
    usage = api.get("ledger", params={"user": "ana@example.com", "kind": "usage"}).json()
    assert [row["amount"] for row in usage["results"]] == [-75]
    exported = api.get("ledger.csv", params={"user": "ana@example.com", "kind": "usage"})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("id,created_at,user,user_email,kind,amount") and len(lines) == 2
    assert CallRecord.objects.count() == 1 and LedgerEntry.objects.filter(kind="usage").count() == 1
