"""Solaris served as production serves it (scripts/serve.sh, uvicorn): no token in any log line,
with the access log off (production's command) or turned on; and a sign-in lockout that holds
across server processes (the count lives in Redis, not in a process)."""

import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest

from accounts.services import login_link_create
from tests.conftest import ROOT
from tests.factories import UserFactory
from tests.monitoring.servers import _stop, database_env, free_port
from tests.solaris.test_serving import production_command, with_option

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "senha-forte-123"
SECRET_KEY = "served-test-" + "Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz0Xc" * 2


class Served:
    """`sh scripts/serve.sh` with production's arguments (docker-compose.yml), on a free port."""

    def __init__(self, tmp_path, name: str, *, access_log: bool = False, **env: str):
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        argv = with_option(production_command(), "--host", "127.0.0.1")
        argv = with_option(with_option(argv, "--port", str(self.port)), "--workers", "1")
        if access_log:
            argv.remove("--no-access-log")
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "SQLITE_PATH", "PROMETHEUS_MULTIPROC_DIR")
        }
        self.env.update(
            database_env(),
            PYTHON=sys.executable,
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1",
            LOG_LEVEL="INFO",
            # Plain http on loopback: the cookies must travel without TLS.
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            **env,
        )
        self.process = subprocess.Popen(
            ["sh", "scripts/serve.sh", *argv],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "the server did not start:\n" + self.output()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        _stop(self.process)
        return self.output()


@pytest.fixture
def served(tmp_path):
    servers: list[Served] = []

    def start(name: str, **kwargs) -> Served:
        servers.append(Served(tmp_path, name, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def secrets_sent(url: str, raw: str) -> None:
    """Requests whose paths hold a sign-in token, a reset token and a JWT."""
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get(f"/entrar/link/{raw}/?next=/conta/").status_code == 200
        assert client.get(f"/entrar/link/{raw}x/").status_code == 400  # Django warns "Bad Request"
        assert client.get("/senha/MQ/c3x9ab-0123456789abcdef0123456789abcdef/").status_code == 200
        jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImxjLWFuYSJ9.c2lnbmF0dXJl"
        assert client.get(f"/api/v1/me/balance?token={jwt_like}").status_code == 401


def assert_no_secret(output: str, raw: str) -> None:
    for secret in (raw, "c3x9ab-0123456789abcdef", "eyJpZCI6ImxjLWFuYSJ9"):
        assert secret not in output, f"{secret} was logged:\n{output}"


def test_production_serves_without_an_access_log_and_redacts_djangos_warnings(
    served, plan, tmp_path
):
    ana = UserFactory(email="ana@example.com")
    _link, raw = login_link_create(user=ana, channel="email", ttl=timedelta(minutes=5))
    server = served("production")
    secrets_sent(server.url, raw)
    output = server.stop()
    assert_no_secret(output, raw)
    assert '"GET ' not in output  # no access log
    warning = next(line for line in output.splitlines() if "Bad Request" in line)
    assert '"logger": "django.request"' in warning and "/entrar/link/***" in warning


def test_an_access_log_turned_on_is_redacted(served, plan):
    ana = UserFactory(email="ana@example.com")
    _link, raw = login_link_create(user=ana, channel="email", ttl=timedelta(minutes=5))
    server = served("access-log", access_log=True)
    secrets_sent(server.url, raw)
    output = server.stop()
    assert_no_secret(output, raw)
    assert re.search(r'"GET /entrar/link/\*\*\*\?next=/conta/ HTTP/1\.1" 200', output), output
    assert '"GET /senha/*** HTTP/1.1" 200' in output
    assert '"GET /api/v1/me/balance?token=eyJ*** HTTP/1.1" 401' in output


def sign_in(server: Served, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        form = client.get("/entrar/")
        token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', form.text).group(1)
        return client.post(
            "/entrar/", data={"username": email, "password": password, "csrfmiddlewaretoken": token}
        )


@pytest.mark.redis
def test_a_lockout_holds_across_server_processes(served, plan):
    UserFactory(email="ana@example.com", password=PASSWORD)
    first, second = served("first"), served("second")
    answers = [
        sign_in((first, second)[n % 2], "ana@example.com", "wrong").status_code for n in range(10)
    ]
    # Five failures on each process: the tenth, wherever it lands, locks the pair out.
    assert answers == [200] * 9 + [429]
    for server in (first, second):
        refused = sign_in(server, "ana@example.com", PASSWORD)
        assert refused.status_code == 429 and "Tente novamente" in refused.text
