"""Servers the slow monitoring tests start for real: Solaris as production runs it
(scripts/serve.sh: uvicorn, several workers, multiprocess metrics) and Debian's Prometheus."""

import contextlib
import glob
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import connection
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import ROOT

PROMETHEUS = Path("/usr/bin/prometheus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(
            urllib.request.Request(url, headers=headers or {}), timeout=timeout
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def database_env() -> dict[str, str]:
    """The server must use the database pytest-django created (committed data only)."""
    if connection.vendor == "postgresql":
        parts = urlsplit(os.environ["DATABASE_URL"])
        url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
        return {"DATABASE_URL": url}
    return {"SQLITE_PATH": str(connection.settings_dict["NAME"])}


class Workers:
    """`sh scripts/serve.sh --workers N` on a free loopback port, with its own metrics directory."""

    def __init__(self, tmp_path: Path, *, workers: int = 2, **env: str):
        self.port = free_port()
        self.workers = workers
        self.metrics_dir = tmp_path / "metrics"
        self.log = tmp_path / "serve.log"
        # /metrics is closed to anyone without it when DEBUG is off (the PostgreSQL run).
        self.metrics_token = secrets.token_urlsafe(32)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "SQLITE_PATH", "PROMETHEUS_MULTIPROC_DIR")
        }
        self.env.update(
            database_env(),
            PYTHON=sys.executable,
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            SECRET_KEY=os.environ.get("SECRET_KEY", "monitoring-test-" + "x" * 40),
            ALLOWED_HOSTS="127.0.0.1",
            SOLARIS_LOOKUP_CACHE_SECONDS="0",
            SOLARIS_METRICS_TOKEN=self.metrics_token,
            **env,
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Workers":
        command = ["sh", "scripts/serve.sh", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--log-level", "warning", "--no-access-log"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        # Each worker writes its live-gauge file when it imports the metrics.
        while len(self.pids()) < self.workers or not self.healthy():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "the workers did not start:\n" + self.output()
            time.sleep(0.2)
        return self

    def healthy(self) -> bool:
        with contextlib.suppress(OSError):
            return _get(f"{self.url}/healthz", timeout=2)[0] == 200
        return False

    def pids(self) -> set[str]:
        files = glob.glob(str(self.metrics_dir / "gauge_livesum_*.db"))
        return {Path(name).stem.rsplit("_", 1)[1] for name in files}

    def per_worker(self, sample: str) -> dict[str, float]:
        """A counter's total in each worker's own file (what a per-process scrape would show)."""
        totals = {}
        for name in glob.glob(str(self.metrics_dir / "counter_*.db")):
            pid = Path(name).stem.rsplit("_", 1)[1]
            totals[pid] = sum(
                value
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(name)
                if json.loads(key)[1] == sample
            )
        return totals

    def scrape(self) -> str:
        status, body = _get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"}
        )
        assert status == 200, body[:500]
        return body.decode()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


class Prometheus:
    """Debian's Prometheus on a free loopback port with temporary storage."""

    def __init__(self, tmp_path: Path, config: dict):
        self.port = free_port()
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.log = self.dir / "prometheus.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Prometheus":
        self.process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()[-4000:]
            assert time.monotonic() < deadline, "Prometheus did not start"
            with contextlib.suppress(OSError):
                if _get(f"{self.url}/-/ready", timeout=2)[0] == 200:
                    return self
            time.sleep(0.2)

    def api(self, path: str, **params: str) -> dict:
        query = f"?{urlencode(params)}" if params else ""
        status, body = _get(f"{self.url}/api/v1/{path}{query}")
        document = json.loads(body)
        assert status == 200 and document["status"] == "success", document
        return document["data"]

    def alerts(self) -> dict[str, str]:
        """Alert name -> state (pending or firing) of the alerts active now."""
        found: dict[str, str] = {}
        for alert in self.api("alerts")["alerts"]:
            name, state = alert["labels"]["alertname"], alert["state"]
            if found.get(name) != "firing":
                found[name] = state
        return found

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
