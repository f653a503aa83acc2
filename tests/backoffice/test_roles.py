import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, Permission

from backoffice.roles import FINANCE, SUPPORT, roles_sync
from proxy import upstream


def rights(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_the_migration_made_both_roles(db):
    support, finance = rights(SUPPORT), rights(FINANCE)
    assert {"credits.view_ledgerentry", "accounts.view_user", "proxy.view_callrecord"} <= support
    assert all(right.split(".")[1].startswith("view_") for right in support)
    assert finance - support == {
        "backoffice.grant_credits",
        "backoffice.confirm_purchase",
        "backoffice.cancel_purchase",
        "backoffice.refund_purchase",
        "payments.change_paymentinstructions",
    }


def test_roles_sync_is_idempotent_and_keeps_added_rights(db):
    extra = Permission.objects.get(codename="change_plan")
    Group.objects.get(name=SUPPORT).permissions.add(extra)
    before = rights(FINANCE)
    roles_sync()
    roles_sync()
    assert rights(FINANCE) == before
    assert "credits.change_plan" in rights(SUPPORT)
    assert Group.objects.filter(name__in=[SUPPORT, FINANCE]).count() == 2


def test_roles_sync_rebuilds_deleted_groups(db):
    Group.objects.all().delete()
    roles_sync()
    assert "backoffice.grant_credits" in rights(FINANCE)


class Models(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LITELLM_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.LITELLM_API_KEY = ""
    yield Models
    server.shutdown()
    server.server_close()


def test_models_list_reads_litellm(server):
    server.body = json.dumps(
        {"data": [{"id": "b-model"}, {"id": "a-model"}, {"id": "a-model"}, {"object": "x"}]}
    ).encode()
    assert async_to_sync(upstream.models_list)() == ["b-model", "a-model"]


def test_models_list_errors(server, settings):
    server.body = b"not json"
    with pytest.raises(upstream.UpstreamUnavailable, match="unexpected body"):
        async_to_sync(upstream.models_list)()
    settings.LITELLM_BASE_URL += "/prefix"
    with pytest.raises(upstream.UpstreamUnavailable, match="answered 404"):
        async_to_sync(upstream.models_list)()
    settings.LITELLM_BASE_URL = ""
    with pytest.raises(upstream.UpstreamUnavailable, match="not set"):
        async_to_sync(upstream.models_list)()
