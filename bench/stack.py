"""Starting and stopping what the benchmark measures, all on loopback: a throw-away PostgreSQL
cluster and Redis (unless URLs are given), the mock upstream, Solaris under an ASGI server, and a
LiteLLM proxy pointed at the mock. Every process is ours: each runs in its own session and is
stopped by its process group when the benchmark ends, however it ends.
"""

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH_ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("uvicorn", "granian", "gunicorn")
LOOPS = ("auto", "asyncio", "uvloop")
# The protocol production serves with (docker-compose.yml, README); older checkouts lack it.
PROTOCOL = "solaris.serving:HTTPProtocol"


class StackError(Exception):
    """Something the benchmark needs could not be started; the message says what and where."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout=5.0
):
    """(status, body) of one plain request; status 0 when nothing answered."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mapped(pid: int, package: str) -> bool:
    """Whether the process has an extension module of `package` loaded (it imported it)."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return any(f"/{package}/" in line for line in maps)
    except OSError:
        return False


def open_files(pid: int) -> tuple[int, int]:
    """(open file descriptors, of which sockets) of one process."""
    fds = sockets = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            fds += 1
            with contextlib.suppress(OSError):
                sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return fds, sockets


def tree_usage(root: int) -> dict:
    """Resident memory and open files of a server's whole process tree (workers and supervisor)."""
    pids = process_tree(root)
    rss = [rss_kib(pid) for pid in pids]
    files = [open_files(pid) for pid in pids]
    return {
        "processes": len(pids),
        "rss_mib": sum(rss) / 1024,
        "largest_mib": max(rss, default=0) / 1024,
        "fds": sum(fds for fds, _sockets in files),
        "sockets": sum(sockets for _fds, sockets in files),
    }


def process_tree(root: int) -> list[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class Stack:
    """The processes of one benchmark run; `close()` stops them all (also on errors)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        self.cleanups: list = []
        self.tmp = Path(tempfile.mkdtemp(prefix="solaris-bench-"))
        self.tmp.chmod(0o755)

    def spawn(
        self, name: str, argv: list[str], *, env: dict | None = None, cwd=None
    ) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def close(self) -> None:
        for name in list(self.processes)[::-1]:
            self.stop(name)
        for cleanup in self.cleanups[::-1]:
            with contextlib.suppress(Exception):
                cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, name: str, size: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_bytes()[-size:].decode("utf-8", "replace") if path.exists() else ""

    def wait_http(self, name: str, url: str, timeout: float = 60.0, ok=(200,)) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            status, _body = http("GET", url, timeout=2.0)
            if status in ok:
                return
            time.sleep(0.2)
        raise StackError(
            f"{name} did not answer {url} within {timeout:.0f} s:\n{self.log_tail(name)}"
        )

    # --- services ---

    def postgres(self) -> str:
        """A throw-away cluster (as user postgres when we are root); its URL without a database."""
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        pgbin = bins[-1] if bins else os.path.dirname(shutil.which("initdb") or "")
        if not pgbin or not os.path.exists(os.path.join(pgbin, "initdb")):
            raise StackError("PostgreSQL is not installed (initdb not found); pass --database-url")
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        data = self.tmp / "pg"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
        port = free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {data} -c max_connections=1200 -c shared_buffers=256MB"
        )
        options += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        # The log sits in the cluster's own folder: the postgres user may not write ours.
        log = data / "postgres.log"
        for argv in (
            [
                f"{pgbin}/initdb",
                "-D",
                str(data / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            [
                f"{pgbin}/pg_ctl",
                "-D",
                str(data / "data"),
                "-l",
                str(log),
                "-w",
                "-o",
                options,
                "start",
            ],
        ):
            done = subprocess.run([*as_pg, *argv], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise StackError(
                    f"{argv[0]} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}{tail}"
                )
        self.cleanups.append(lambda: shutil.copy(log, self.log_dir / "postgres.log"))
        self.cleanups.append(
            lambda: subprocess.run(  # runs before the log is copied: cleanups run last first
                [*as_pg, f"{pgbin}/pg_ctl", "-D", str(data / "data"), "-m", "fast", "stop"],
                capture_output=True,
                check=False,
            )
        )
        return f"postgres://postgres@127.0.0.1:{port}"

    def redis(self) -> str:
        if not shutil.which("redis-server"):
            raise StackError("redis-server is not installed; pass --redis-url")
        port = free_port()
        self.spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.5) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
            time.sleep(0.1)
        raise StackError(f"redis did not start:\n{self.log_tail('redis')}")

    def mock(self, chunks: int, slow_gap: float) -> int:
        port = free_port()
        self.spawn(
            "mock",
            [
                sys.executable,
                "-m",
                "bench.mock",
                "--port",
                str(port),
                "--chunks",
                str(chunks),
                "--slow-gap",
                str(slow_gap),
            ],
            cwd=BENCH_ROOT,
        )
        self.wait_http("mock", f"http://127.0.0.1:{port}/health/liveliness", timeout=15)
        return port

    def litellm(self, venv: Path, mock_port: int, workers: int) -> tuple[int, str]:
        """LiteLLM proxy with `openai/bench-model` at the mock; (port, master key)."""
        binary = venv / "bin" / "litellm"
        if not binary.exists():
            raise StackError(
                f"no LiteLLM at {binary}: run `bash scripts/litellm.sh` or pass --no-litellm"
            )
        config = self.tmp / "litellm.yaml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(
            json.dumps(
                {
                    "model_list": [
                        {
                            "model_name": "bench-model",
                            "litellm_params": {
                                "model": "openai/bench-model",
                                "api_base": f"http://127.0.0.1:{mock_port}/v1",
                                "api_key": "dummy",
                            },
                        }
                    ],
                    "litellm_settings": {"num_retries": 0, "request_timeout": 120},
                    "router_settings": {"num_retries": 0, "disable_cooldowns": True},
                },
                indent=2,
            )
        )
        key = "sk-bench-" + secrets.token_urlsafe(24)
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(
                ("REDIS_", "OPENAI_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
            )
            and name not in ("DATABASE_URL", "DIRECT_URL", "STORE_MODEL_IN_DB", "LITELLM_LICENSE")
        }
        env.update(
            LITELLM_MASTER_KEY=key,
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_DONT_SHOW_FEEDBACK_BOX="True",
            DISABLE_ADMIN_UI="True",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        port = free_port()
        self.spawn(
            "litellm",
            [
                str(binary),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                str(workers),
                # A worker slower to start than uvicorn's 5 s health check (busy cores) is killed.
                "--timeout_worker_healthcheck",
                "120",
            ],
            env=env,
            cwd=self.tmp,
        )
        self.wait_http("litellm", f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
        return port, key


class Solaris:
    """One Solaris checkout: its Python, its environment, migrations, seeding and its server."""

    def __init__(self, stack: Stack, checkout: Path, python: Path, env: dict):
        self.stack = stack
        self.checkout = checkout
        self.python = python
        self.env = env

    def run(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [str(self.python), *args],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"`{' '.join(args)}` failed in {self.checkout}:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
            )
        return result.stdout

    def django(self, *args: str) -> dict:
        """Run bench/django_side.py in the checkout; its JSON answer."""
        out = self.run(str(BENCH_ROOT / "bench" / "django_side.py"), *args)
        return json.loads(out.strip().splitlines()[-1])

    def has_module(self, module: str) -> bool:
        probe = subprocess.run(
            [str(self.python), "-c", f"import {module}"],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def protocol(self) -> str:
        """uvicorn's --http as production passes it, or uvicorn's own choice for an older checkout."""
        return PROTOCOL if self.has_module(PROTOCOL.split(":")[0]) else "auto"

    def runtime(self, name: str, server: str) -> dict:
        """The event loop and HTTP parser the server's processes actually loaded."""
        pids = process_tree(self.stack.processes[name].pid)
        loop = next(
            (loop for loop in ("uvloop", "rloop") if any(mapped(pid, loop) for pid in pids)),
            "asyncio",
        )
        if server == "granian":
            parser = "granian's own (Rust)"
        else:
            parser = "httptools" if any(mapped(pid, "httptools") for pid in pids) else "h11"
        protocol = self.protocol() if server == "uvicorn" else None
        return {"loop": loop, "parser": parser, "protocol": protocol}

    def serve(self, name: str, server: str, workers: int, loop: str = "auto") -> int:
        port = free_port()
        app = "solaris.asgi:application"
        py = str(self.python)
        host = "127.0.0.1"
        if server == "uvicorn":
            argv = [
                py,
                "-m",
                "uvicorn",
                app,
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                "--loop",
                loop,
                "--http",
                self.protocol(),
            ]
        elif server == "granian":
            argv = [
                py,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-ws",
                "--loop",
                loop,
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                app,
            ]
        elif server == "gunicorn":
            argv = [
                py,
                "-m",
                "gunicorn",
                app,
                "-k",
                "uvicorn_worker.UvicornWorker",
                "-w",
                str(workers),
                "-b",
                f"{host}:{port}",
                "--backlog",
                "4096",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "5",
            ]
        else:
            raise StackError(f"unknown server {server!r}; choose from {', '.join(SERVERS)}")
        needed = {"uvicorn": "uvicorn", "granian": "granian", "gunicorn": "uvicorn_worker"}[server]
        if not self.has_module(needed):
            raise StackError(
                f"{needed} is not installed for {self.python}: pip install -e '.[bench]' (or pass --python)"
            )
        self.stack.spawn(name, argv, env=self.env, cwd=self.checkout)
        self.stack.wait_http(name, f"http://{host}:{port}/healthz", timeout=60)
        return port
