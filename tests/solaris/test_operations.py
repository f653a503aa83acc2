import json
import logging

import pytest

from kernel.logging import JsonFormatter, RequestIdFilter


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_cache(client, db, settings):
    settings.LITELLM_BASE_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "upstream": "not configured",
    }


def test_readyz_is_unavailable_when_the_upstream_is_down(client, db, settings):
    settings.LITELLM_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["upstream"].startswith("error")


def test_request_id_is_assigned_when_absent(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_request_id_is_propagated_when_given(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lc-req.123")
    assert response["X-Request-ID"] == "lc-req.123"


@pytest.mark.parametrize("bad", ["x" * 200, "has space", 'quote"s'])
def test_unsafe_request_ids_are_replaced(client, bad):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


async def test_request_id_on_async_stack(async_client):
    response = await async_client.get("/healthz", headers={"X-Request-ID": "async-1"})
    assert response["X-Request-ID"] == "async-1"


def test_log_lines_are_json_with_request_id_and_no_secrets(client, db, caplog):
    record = logging.LogRecord(
        "solaris.test",
        logging.INFO,
        __file__,
        1,
        "call with Bearer sol-abcdef123456 done",
        None,
        None,
    )
    record.authorization = "Bearer sol-secret"
    record.messages = [{"role": "user", "content": "segredo"}]
    record.model = "gpt-test"
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "call with Bearer *** done"
    assert entry["model"] == "gpt-test"
    assert entry["request_id"] == "-"
    assert "sol-secret" not in line and "segredo" not in line and "sol-abcdef" not in line
