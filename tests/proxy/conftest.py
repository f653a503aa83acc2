import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from django.core.cache import cache

from accounts.services import api_key_create, integration_create
from tests.factories import ModelPriceFactory, PlanFactory, UserFactory
from tests.proxy.fault_upstream import MODELS, FaultUpstream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveSolaris:
    """solaris.asgi:application served by uvicorn for real, on a loopback port, in a thread."""

    def __init__(self):
        from solaris.asgi import application

        self.port = free_port()
        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LiveSolaris":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    @staticmethod
    def unsettled() -> bool:
        """Calls answered (or streams still open) whose settlement has not landed yet."""
        from proxy import metrics, runtime

        return bool(
            runtime.settlements or metrics.REGISTRY.get_sample_value("solaris_proxy_open_streams")
        )

    def settled(self, timeout: float = 10) -> None:
        """Wait until every call answered so far is settled: the answer does not wait for it."""
        deadline = time.monotonic() + timeout
        while self.unsettled():
            if time.monotonic() > deadline:
                raise AssertionError("settlements still running")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server_solaris(django_db_setup, django_db_blocker):
    from django.conf import settings

    # Each proxy DB-thread hop closes its connection at the end: nothing stays open when the test
    # database is flushed or dropped.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    server = LiveSolaris().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_upstream():
    upstream = FaultUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    from proxy import protection

    cache.clear()
    protection.circuit_forget()
    yield
    cache.clear()
    protection.circuit_forget()


@pytest.fixture
def solaris(live_server_solaris, transactional_db, settings):
    """The live server, with the test's data committed where its threads can see it."""
    settings.SOLARIS_UPSTREAM_FIRST_BYTE_TIMEOUT = 5.0
    settings.SOLARIS_UPSTREAM_IDLE_TIMEOUT = 5.0
    yield live_server_solaris
    # Settlements still running belong to this test: let them land before its data is flushed.
    live_server_solaris.settled()


@pytest.fixture
def faulty(solaris, fault_upstream, settings):
    """Solaris pointed at the fault-injecting upstream, every fault model priced at 1 / 2."""
    settings.LITELLM_BASE_URL = fault_upstream.base_url
    settings.LITELLM_API_KEY = "sk-upstream-secret"
    for name in MODELS:
        ModelPriceFactory(model=name, input_weight="1", output_weight="2", active=True)
    fault_upstream.requests.clear()
    return fault_upstream


@pytest.fixture
def plan_live(transactional_db):
    return PlanFactory(
        slug="live", monthly_allowance=100_000, is_default=True, default_max_tokens=64
    )


@pytest.fixture
def member(plan_live):
    return UserFactory(email="bia@example.com", name="Bia")


@pytest.fixture
def member_key(member):
    return api_key_create(user=member, name="live")[1]


@pytest.fixture
def integration_key(transactional_db):
    return integration_create(name="librechat", auto_provision=True)[1]


def run(coroutine):
    return asyncio.run(coroutine)


class ReceivedBodies:
    """The chat request bodies the test LiteLLM received, as it received them."""

    def __init__(self, path: Path):
        self.path = path

    def bodies(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def clear(self) -> None:
        self.path.write_text("")


@pytest.fixture(scope="session")
def litellm_received_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("litellm") / "received.jsonl"


@pytest.fixture(scope="session")
def litellm_upstream(litellm_received_path):
    from tests.conftest import ROOT
    from tests.proxy.litellm_server import litellm_running

    with litellm_running(ROOT / ".litellm-venv", free_port(), received=litellm_received_path) as (
        base_url,
        master_key,
    ):
        yield base_url, master_key


@pytest.fixture
def litellm_received(litellm_upstream, litellm_received_path) -> ReceivedBodies:
    received = ReceivedBodies(litellm_received_path)
    received.clear()
    return received


@pytest.fixture
def via_litellm(solaris, litellm_upstream, settings):
    """Solaris pointed at the real LiteLLM proxy, its mock models priced (1.5 in, 3 out)."""
    settings.LITELLM_BASE_URL, settings.LITELLM_API_KEY = litellm_upstream
    for name in ("mock-gpt", "mock-gpt-long", "mock-gpt-slow", "mock-error", "mock-ratelimit"):
        ModelPriceFactory(model=name, input_weight="1.5", output_weight="3", active=True)
    ModelPriceFactory(model="mock-timeout", input_weight="1", output_weight="1", active=True)
    # The fallback pair: LiteLLM answers mock-cheap's calls from mock-dear, 15 times the price.
    ModelPriceFactory(model="mock-cheap", input_weight="1", output_weight="2", active=True)
    ModelPriceFactory(model="mock-dear", input_weight="15", output_weight="30", active=True)
    return litellm_upstream
