"""README command 1 from a checkout: `bash scripts/dev.sh` starts Solaris and its demo upstream and
prints a chat call that answers 200 and moves the credits (the whole job on first run)."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.litellm]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def remaining(headers: str) -> int:
    found = re.search(r"(?im)^x-solaris-credits-remaining:\s*(\d+)", headers)
    assert found, headers
    return int(found[1])


def test_dev_sh_prints_a_curl_that_answers_and_costs_credits(tmp_path):
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "LITELLM_BASE_URL", "LITELLM_API_KEY")
    }
    env.update(PORT=str(port), SQLITE_PATH=str(tmp_path / "dev.sqlite3"), PYTHONUNBUFFERED="1")
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "scripts/dev.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "Try a chat call" not in log.read_text():
            assert process.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        text = log.read_text()
        time.sleep(0.5)  # the rest of the banner
        text = log.read_text()
        curl = re.search(r"^curl .*?'\n", text, re.S | re.M)
        assert curl, text
        command = curl[0].replace("\\\n", " ")
        first = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)
        second = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)
        assert first.stdout.startswith("HTTP/1.1 200"), first.stdout
        assert '"choices"' in second.stdout
        assert remaining(second.stdout) < remaining(first.stdout)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    # Ctrl-C or a TERM stops both servers: nothing is left listening on the port.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
