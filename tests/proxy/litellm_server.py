"""Start the real LiteLLM proxy (.litellm-venv, scripts/litellm.sh) on a free loopback port.

Offline and without a database: the local price map, a random master key (LiteLLM refuses
well-known ones), provider keys and proxies removed from its environment. Ready in ≈8 s.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REMOVED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CUSTOM_TIKTOKEN_CACHE_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


def _alive(base_url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/health/liveliness", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def litellm_running(
    venv: Path,
    port: int,
    timeout: float = 90.0,
    received: Path | None = None,
    config: Path = HERE / "litellm_config.yaml",
) -> Iterator[tuple[str, str]]:
    """Yields (base_url without /v1, master key); stops the proxy's process group on exit.

    With `received`, every chat request body LiteLLM gets is appended there as a JSON line
    (litellm_recorder.py)."""
    key = "sk-test-" + secrets.token_urlsafe(24)
    env = {name: value for name, value in os.environ.items() if name not in REMOVED_ENV}
    if received is not None:
        env["SOLARIS_TEST_LITELLM_RECEIVED"] = str(received)
    env.update(
        LITELLM_MASTER_KEY=key,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        DISABLE_ADMIN_UI="True",
        LITELLM_DONT_SHOW_FEEDBACK_BOX="True",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    descriptor, log_path = tempfile.mkstemp(prefix="litellm-", suffix=".log")
    command = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(descriptor, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _alive(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"LiteLLM did not start: {Path(log_path).read_text()[-4000:]}")
            time.sleep(0.2)
        yield base_url, key
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
