"""Production hardening through Django's test client: who may read /metrics and the API schema,
HSTS behind TLS, the pages' Content-Security-Policy, and tokens kept out of log lines."""

import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.services import api_key_create, login_link_create
from kernel.logging import JsonFormatter, SecretFilter, mask
from kernel.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import ROOT
from tests.factories import CreditPackageFactory, UserFactory

TOKEN = "metrics-token-0123456789abcdef"
HSTS = "Strict-Transport-Security"
CSP = "Content-Security-Policy"


@pytest.fixture
def metrics_closed(settings):
    """Neither token nor allow-list (the root conftest's loopback allow-list undone)."""
    settings.SOLARIS_METRICS_ALLOWED_IPS = []
    settings.SOLARIS_METRICS_TOKEN = ""
    return settings


def test_metrics_are_open_only_in_debug_when_nothing_is_configured(client, db, metrics_closed):
    metrics_closed.DEBUG = True
    assert client.get("/metrics").status_code == 200
    metrics_closed.DEBUG = False
    refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "SOLARIS_METRICS_TOKEN" in refused.content.decode()
    assert "solaris_" not in refused.content.decode()


@pytest.mark.parametrize("debug", [True, False])
def test_metrics_need_the_bearer_token_once_one_is_set(client, db, metrics_closed, debug):
    metrics_closed.DEBUG = debug
    metrics_closed.SOLARIS_METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200 and "solaris_" in allowed.content.decode()


def test_metrics_allow_list_by_client_address(client, db, metrics_closed):
    metrics_closed.DEBUG = False
    metrics_closed.SOLARIS_METRICS_ALLOWED_IPS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
    # A forged X-Forwarded-For is nobody's word; a trusted proxy's is.
    forged = {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "10.20.3.4"}
    assert client.get("/metrics", **forged).status_code == 403
    metrics_closed.SOLARIS_TRUSTED_PROXIES = ["192.0.2.1"]
    assert client.get("/metrics", **forged).status_code == 200
    # Either way in: the token from outside the list.
    metrics_closed.SOLARIS_METRICS_TOKEN = TOKEN
    outside = {"REMOTE_ADDR": "198.51.100.1", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.get("/metrics", **outside).status_code == 200


@pytest.mark.parametrize("path", ["/api/schema/", "/api/schema/docs/"])
def test_the_api_schema_is_for_staff_when_debug_is_off(settings, plan, path):
    settings.DEBUG = False
    assert Client().get(path).status_code == 401
    member = Client()
    member.force_login(UserFactory(email="ana@example.com"))
    assert member.get(path).status_code == 403
    key = api_key_create(user=UserFactory(email="bia@example.com"))[1]
    assert Client().get(path, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 403
    staff = Client()
    staff.force_login(UserFactory(email="chefe@example.com", is_staff=True))
    assert staff.get(path).status_code == 200
    settings.DEBUG = True
    assert Client().get(path).status_code == 200


def test_hsts_on_requests_that_came_over_tls(client, db, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    proxied_tls = {"HTTP_X_FORWARDED_PROTO": "https"}
    # Without SOLARIS_PROXY_SSL_HEADER a caller's X-Forwarded-Proto means nothing.
    settings.SECURE_PROXY_SSL_HEADER = None
    assert HSTS not in client.get("/entrar/", **proxied_tls)
    assert client.get("/entrar/", secure=True)[HSTS] == "max-age=31536000"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/entrar/", **proxied_tls)[HSTS] == "max-age=31536000"
    assert HSTS not in client.get("/entrar/")


def test_every_portal_page_carries_the_content_security_policy(plan, settings):
    ana = UserFactory(email="ana@example.com")
    package = CreditPackageFactory()
    _link, raw = login_link_create(user=ana, channel="email", ttl=timedelta(minutes=5))
    anonymous = Client()
    for path in ("/entrar/", "/entrar/link/", f"/entrar/link/{raw}/", "/senha/"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
        assert response[CSP] == CONTENT_SECURITY_POLICY, path
    member = Client()
    member.force_login(ana)
    for path in ("/conta/", "/conta/chaves/", "/conta/comprar/", f"/conta/comprar/{package.pk}/"):
        response = member.get(path)
        assert response.status_code == 200, path
        assert response[CSP] == CONTENT_SECURITY_POLICY, path
    for directive in (
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    # The admin and the Swagger UI have inline code of their own; JSON needs no policy.
    staff = Client()
    staff.force_login(UserFactory(email="chefe@example.com", is_staff=True, is_superuser=True))
    assert CSP not in staff.get("/admin/")
    assert CSP not in staff.get("/api/schema/docs/")
    assert CSP not in member.get(reverse("portal:api-balance"))


def test_sign_in_tokens_never_reach_a_log_line(client, plan, caplog):
    ana = UserFactory(email="ana@example.com")
    _link, raw = login_link_create(user=ana, channel="email", ttl=timedelta(0))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(f"/entrar/link/{raw}/").status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    line = JsonFormatter().format(record)
    assert raw not in line and "/entrar/link/***" in line
    # The filter the web server's own loggers get: uvicorn's access-log record, as it builds it.
    access = logging.makeLogRecord(
        {
            "name": "uvicorn.access",
            "msg": '%s - "%s %s HTTP/%s" %d',
            "args": ("127.0.0.1:5000", "GET", f"/entrar/link/{raw}/?next=/conta/", "1.1", 400),
        }
    )
    SecretFilter().filter(access)
    assert (
        access.getMessage() == '127.0.0.1:5000 - "GET /entrar/link/***?next=/conta/ HTTP/1.1" 400'
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("GET /senha/MQ/c3x9ab-0123456789abcdef/ 302", "GET /senha/*** 302"),
        ("GET /senha/MQ/set-password/ 200", "GET /senha/*** 200"),
        ("GET /senha/enviada/ 200", "GET /senha/enviada/ 200"),
        ('"/entrar/link/AbC_-12/"', '"/entrar/link/***"'),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImxjIn0.sig-_1 end", "token eyJ*** end"),
        ("Authorization: Bearer sol-int-abc123", "Authorization: Bearer ***"),
        ("key sol-abc123", "key sol-***"),
    ],
)
def test_what_the_log_mask_hides(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    "path", ["docker-compose.yml", "README.md", "scripts/dev.sh", "docs/operations.md"]
)
def test_every_documented_server_command_runs_without_an_access_log(path):
    text = (ROOT / path).read_text().replace("\\\n", " ")
    commands = [
        line
        for line in text.replace("sh\nscripts", "sh scripts").splitlines()
        if "scripts/serve.sh --host" in line
    ]
    assert commands, path
    assert all("--no-access-log" in command for command in commands), commands
