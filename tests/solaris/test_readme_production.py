"""The README's production steps, run as written against a fresh PostgreSQL, Redis and the real
LiteLLM: `migrate`, the server, a priced model, a user, a grant, a key and one chat call answer.

Only what points at this machine's services is substituted (the `export` values, the port and the
metrics directory); every other line runs verbatim. The web server and the Celery worker run in the
background, as their own terminals would; beat is left out (nothing in a first call waits for it,
and it would write its schedule file into the checkout).
"""

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.proxy.litellm_server import litellm_running

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.litellm]
LONG_RUNNING = ("scripts/serve.sh", "celery -A solaris worker")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_blocks() -> list[str]:
    """The bash blocks of the README's "Running with PostgreSQL and Redis" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Running with PostgreSQL and Redis", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def script_of(blocks: list[str], *, env: dict[str, str], port: int, metrics_dir: Path) -> str:
    lines = ["set -euo pipefail"]
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or "celery -A solaris beat" in line:
                continue
            if line.startswith("export "):
                for name, value in env.items():
                    line = re.sub(rf"\b{name}=\S+", f"{name}={value}", line)
            line = line.replace("/run/solaris-metrics", str(metrics_dir))
            line = line.replace("--port 8000", f"--port {port}")
            line = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if any(part in line for part in LONG_RUNNING):
                lines.append(f"{line} &")
                if "serve.sh" in line:
                    lines.append(
                        f"for _ in $(seq 300); do curl -sf -o /dev/null "
                        f"http://127.0.0.1:{port}/healthz && break; sleep 0.2; done"
                    )
            else:
                lines.append(line)
    lines.append("kill $(jobs -p)")
    return "\n".join(lines) + "\n"


@pytest.fixture
def fresh_database():
    base = urlsplit(os.environ["DATABASE_URL"])
    name = f"readme_{secrets.token_hex(4)}"
    admin = urlunsplit(base._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(base._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_the_readme_production_steps_answer_a_chat_call(fresh_database, tmp_path):
    blocks = production_blocks()
    assert len(blocks) == 2, "the section's two blocks: set up and serve, then the first call"
    port = free_port()
    with litellm_running(
        ROOT / ".litellm-venv", free_port(), config=HERE / "litellm_readme.yaml"
    ) as (litellm_url, litellm_key):
        env = {
            "DATABASE_URL": fresh_database,
            "REDIS_URL": os.environ["REDIS_URL"],
            "LITELLM_BASE_URL": litellm_url,
            "LITELLM_API_KEY": litellm_key,
        }
        script = script_of(blocks, env=env, port=port, metrics_dir=tmp_path / "metrics")
        clean = {k: v for k, v in os.environ.items() if k not in (*env, "SECRET_KEY")}
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=clean,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    # The servers in the background share the script's output: the answer is the line curl wrote.
    (line,) = [line for line in out.splitlines() if line.startswith('{"')]
    answer = json.loads(line)
    assert "error" not in answer, answer
    assert answer["choices"][0]["message"]["content"].startswith("Olá!"), (answer, err[-2000:])
    with psycopg.connect(fresh_database) as connection:
        ((credits, status),) = connection.execute(
            "SELECT credits, status_code FROM proxy_callrecord"
        ).fetchall()
    assert (status, credits > 0) == (200, True)
    checked = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "check_ledger"],
        cwd=ROOT,
        env={**clean, "DATABASE_URL": fresh_database, "SECRET_KEY": secrets.token_urlsafe(50)},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
