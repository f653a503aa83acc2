"""The LibreChat client harness: `librechat_client(spec)` makes one chat call the way LibreChat
makes it (client.mjs, its @langchain/openai client over openai@6, pinned in package-lock.json)
and returns what that client got. See README.md."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.proxy.conftest import (  # noqa: F401  (fixtures, shared with the proxy tests)
    _fresh_cache,
    integration_key,
    litellm_received,
    litellm_received_path,
    litellm_upstream,
    live_server_solaris,
    plan_live,
    solaris,
    via_litellm,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def librechat_node() -> str:
    """node, with the pinned packages installed (`npm ci` once, when node_modules is missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "needs node and npm (LibreChat's client runs on node): apt-get install nodejs npm"
        )
    if not (HERE / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)
    return node


@pytest.fixture
def librechat_client(librechat_node):
    def call(spec: dict) -> dict:
        done = subprocess.run(
            [librechat_node, str(HERE / "client.mjs")],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=HERE,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return call
