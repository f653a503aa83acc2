"""`python -m bench`: what Solaris adds to a call, how many streams it holds, and that every credit
is exact — side by side with LiteLLM. See docs/performance.md for what is measured and how to read it.
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import subprocess
import sys
import threading
import time
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import psycopg

from bench import report
from bench.stack import (
    BENCH_ROOT,
    LOOPS,
    SERVERS,
    Solaris,
    Stack,
    StackError,
    http,
    process_tree,
    rss_kib,
    tree_usage,
)

MODES = ("non-stream", "stream")
# The concurrency --scale-workers compares at: where one process is already busy on 2 cores.
SCALE_CONCURRENCY = 16


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkout",
        type=Path,
        default=BENCH_ROOT,
        help="Solaris checkout to measure (default: this repository)",
    )
    parser.add_argument(
        "--python", type=Path, help="Python that runs Solaris (default: CHECKOUT/.venv/bin/python)"
    )
    parser.add_argument(
        "--server", default="uvicorn", help=f"ASGI server(s), comma-separated: {', '.join(SERVERS)}"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Solaris worker processes (default 2, as LiteLLM's)"
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="Solaris's event loop (default auto: what an install gives, uvloop where it installs)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds measured per cell (default 10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per cell, not measured"
    )
    parser.add_argument(
        "--concurrency", default="1,16,64", help="client concurrencies (default 1,16,64)"
    )
    parser.add_argument(
        "--users",
        dest="load_users",
        type=int,
        default=64,
        help="callers the load is spread over, one per client (default 64; 1 = one shared account)",
    )
    parser.add_argument(
        "--streams", type=int, default=1000, help="slow streams held open at once (default 1000)"
    )
    parser.add_argument(
        "--stream-workers",
        type=int,
        help="Solaris worker processes holding the streams (default: --workers)",
    )
    parser.add_argument(
        "--upstream-connections",
        type=int,
        help="SOLARIS_UPSTREAM_MAX_CONNECTIONS per worker (default: max(2000, 2 × --streams))",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        help="seconds of sustained non-streaming load after the cells (default 0: none)",
    )
    parser.add_argument(
        "--soak-window", type=float, default=10.0, help="seconds per soak p99 window (default 10)"
    )
    parser.add_argument(
        "--soak-concurrency", type=int, default=64, help="soak clients (default 64)"
    )
    parser.add_argument(
        "--scale-workers",
        default="",
        help="worker counts compared at c=16, comma-separated, e.g. 1,2 (default: none)",
    )
    parser.add_argument(
        "--slow-gap", type=float, default=0.2, help="seconds between chunks of a slow stream"
    )
    parser.add_argument(
        "--accounting-calls", type=int, default=2000, help="calls checked for exact credits"
    )
    parser.add_argument(
        "--database-url", help="PostgreSQL server URL (default: a throw-away cluster)"
    )
    parser.add_argument("--redis-url", help="Redis URL (default: a throw-away redis-server)")
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="embedded SQLite and local cache instead (smoke test only)",
    )
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=Path(os.environ.get("LITELLM_VENV", BENCH_ROOT / ".litellm-venv")),
    )
    parser.add_argument("--litellm-workers", type=int, default=2)
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM column")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profile of Solaris's hot path at c=16"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds of everything (the smoke test)"
    )
    parser.add_argument(
        "--out", type=Path, help="markdown report (default bench/results/<timestamp>.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = min(args.duration, 1.0), min(args.warmup, 0.3)
        args.concurrency = "1,4"
        args.streams, args.slow_gap = min(args.streams, 50), min(args.slow_gap, 0.02)
        args.accounting_calls = min(args.accounting_calls, 60)
        args.load_users = min(args.load_users, 4)
        args.soak, args.soak_window = min(args.soak or 2.0, 2.0), min(args.soak_window, 1.0)
        args.soak_concurrency = min(args.soak_concurrency, 8)
    args.stream_workers = args.stream_workers or args.workers
    args.upstream_connections = args.upstream_connections or max(2000, args.streams * 2)
    args.scale = [int(w) for w in args.scale_workers.split(",") if w.strip()]
    args.concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.servers = [s.strip() for s in args.server.split(",") if s.strip()]
    for server in args.servers:
        if server not in SERVERS:
            parser.error(f"--server: {server!r} is not one of {', '.join(SERVERS)}")
    if args.loop != "auto" and "gunicorn" in args.servers:
        parser.error("--loop: gunicorn's uvicorn worker picks its own loop; leave it at auto")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out = args.out or BENCH_ROOT / "bench" / "results" / f"{stamp}.md"
    args.checkout = args.checkout.resolve()
    if args.python is None:
        own = args.checkout / ".venv" / "bin" / "python"
        args.python = own if own.exists() else Path(sys.executable)
    return args


def load(job: dict) -> dict:
    """Run one load job in a separate process (the load generator) and return its result."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=BENCH_ROOT,
        check=False,
        timeout=job.get("duration", 0) + job.get("warmup", 0) + 600,
    )
    if result.returncode != 0:
        raise StackError(f"load generator failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def cell(target: dict, mode: str, concurrency: int, args, **extra) -> dict:
    job = {
        "host": "127.0.0.1",
        "port": target["port"],
        "headers": target["headers"],
        "stream": mode == "stream",
        "concurrency": concurrency,
        "duration": args.duration,
        "warmup": args.warmup,
        "max_tokens": 64,
        "header_sets": target.get("header_sets"),
        **extra,
    }
    result = load(job)
    print(report.cell_line(target["name"], mode, concurrency, result), flush=True)
    return result


def credits_expected(calls: list[dict], input_weight: Decimal, output_weight: Decimal) -> int:
    """Σ ceil(prompt × input + completion × output), computed here independently of Solaris."""
    total = 0
    for call in calls:
        exact = call["prompt"] * input_weight + call["completion"] * output_weight
        total += int(exact.to_integral_value(rounding=ROUND_CEILING))
    return total


def mock_calls(mock_port: int) -> list[dict]:
    status, body = http("GET", f"http://127.0.0.1:{mock_port}/_bench/usage", timeout=30)
    if status != 200:
        raise StackError("the mock did not give its usage log")
    return json.loads(body)["calls"]


def mock_reset(mock_port: int) -> None:
    http("POST", f"http://127.0.0.1:{mock_port}/_bench/reset", body=b"")


def recorded(results: list[dict]) -> int:
    """Calls that leave a call record: answered, or refused once the caller was known."""
    return sum(
        r["ok"]
        + sum(n for what, n in r["errors"].items() if what[:3].isdigit() and what[:3] != "401")
        for r in results
    )


def ledger_settled(solaris: Solaris, user_id: int, records: int, timeout: float = 60) -> dict:
    """The user's books once every call answered so far is settled: Solaris answers first and
    settles right after, so the last calls' holds may still be open when the load ends."""
    deadline = time.monotonic() + timeout
    while True:
        book = solaris.django("ledger", "--users", str(user_id))[str(user_id)]
        landed = book["calls"] is None or book["calls"]["count"] >= records
        if (book["open_holds"] == 0 and landed) or time.monotonic() > deadline:
            return book
        time.sleep(0.2)


def accounting(solaris: Solaris, seeded: dict, port: int, mock_port: int, args) -> dict:
    """(e) N varied calls, half streamed, then the ledger against the mock's usage × weights."""
    weights = Decimal(seeded["input_weight"]), Decimal(seeded["output_weight"])
    user = seeded["users"]["accounting"]
    headers = {"authorization": f"Bearer {user['key']}"}
    mock_reset(mock_port)
    base = {"host": "127.0.0.1", "port": port, "headers": headers, "concurrency": 16, "vary": True}
    half = args.accounting_calls // 2
    results = [
        load({**base, "stream": False, "requests": half}),
        load({**base, "stream": True, "requests": args.accounting_calls - half, "seed": 9}),
    ]
    calls = [c for c in mock_calls(mock_port) if c["model"] == "bench-model"]
    expected = credits_expected(calls, *weights)
    book = ledger_settled(solaris, user["id"], recorded(results))
    ok = sum(r["ok"] for r in results)
    errors = {k: v for r in results for k, v in r["errors"].items()}
    return {
        "calls": ok,
        "errors": errors,
        "upstream_calls": len(calls),
        "expected": expected,
        "booked": book["usage_credits"],
        "usage_entries": book["usage_entries"],
        "open_holds": book["open_holds"],
        "flagged": book["flagged"],
        "call_records": book["calls"],
        "difference": book["usage_credits"] - expected,
        "exact": book["usage_credits"] == expected
        and not errors
        and book["open_holds"] == 0
        and book["usage_entries"] == len(calls) == ok,
    }


def overspend(solaris: Solaris, seeded: dict, port: int, mock_port: int, args) -> dict:
    """(e) A small balance hammered at concurrency 64 (streams and not): spending never exceeds it."""
    weights = Decimal(seeded["input_weight"]), Decimal(seeded["output_weight"])
    user = seeded["users"]["overspend"]
    headers = {"authorization": f"Bearer {user['key']}"}
    mock_reset(mock_port)
    base = {"host": "127.0.0.1", "port": port, "headers": headers, "max_tokens": 64}
    calls_each = max(40, args.accounting_calls // 4)
    results: list[dict] = [{}, {}]

    def run(index: int, job: dict) -> None:
        results[index] = load(job)

    threads = [
        threading.Thread(
            target=run,
            args=(0, {**base, "stream": False, "concurrency": 32, "requests": calls_each}),
        ),
        threading.Thread(
            target=run,
            args=(
                1,
                {**base, "stream": True, "concurrency": 32, "requests": calls_each, "seed": 3},
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = [c for c in mock_calls(mock_port) if c["model"] == "bench-model"]
    expected = credits_expected(calls, *weights)
    book = ledger_settled(solaris, user["id"], recorded(results))
    refused = sum(
        v for r in results for k, v in r["errors"].items() if k == "429 insufficient_quota"
    )
    other = {k: v for r in results for k, v in r["errors"].items() if k != "429 insufficient_quota"}
    return {
        "granted": user["granted"],
        "booked": book["usage_credits"],
        "expected": expected,
        "balance": book["balance"],
        "debt": book["debt"],
        "open_holds": book["open_holds"],
        "served": sum(r["ok"] for r in results),
        "refused": refused,
        "other_errors": other,
        "held_within": book["usage_credits"] <= user["granted"]
        and book["balance"] >= 0
        and book["debt"] == 0
        and book["usage_credits"] == expected
        and not other
        and book["open_holds"] == 0,
    }


def open_streams(solaris: Solaris, callers: list[dict], server: str, args) -> dict:
    """(d) Many slow streams at once through --stream-workers Solaris processes: peak resident
    memory (the largest process and the whole tree), streams opened and completed, errors."""
    workers = args.stream_workers
    name = f"solaris-streams-{server}"
    port = solaris.serve(name, server, workers, args.loop)
    root = solaris.stack.processes[name].pid
    headers = callers[0]
    # One warm call so the baseline includes the loaded code, not the import-time footprint.
    load(
        {
            "host": "127.0.0.1",
            "port": port,
            "headers": headers,
            "concurrency": 1,
            "requests": 5,
            "stream": True,
        }
    )
    # The largest process is a worker (uvicorn with workers, granian and gunicorn add a supervisor).
    idle = [rss_kib(pid) for pid in process_tree(root)]
    peak = {"tree": 0, "largest": 0, "fds": 0, "sockets": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            usage = tree_usage(root)
            peak["tree"] = max(peak["tree"], usage["rss_mib"])
            peak["largest"] = max(peak["largest"], usage["largest_mib"])
            peak["fds"] = max(peak["fds"], usage["fds"])
            peak["sockets"] = max(peak["sockets"], usage["sockets"])

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = load(
            {
                "kind": "hold",
                "host": "127.0.0.1",
                "port": port,
                "headers": headers,
                "header_sets": callers,
                "stream": True,
                "model": "bench-slow",
                "concurrency": args.streams,
                "ramp": 2.0 if not args.quick else 0.2,
                "timeout": 120 + 60 * args.slow_gap * 50,
            }
        )
    finally:
        done.set()
        sampler.join()
        solaris.stack.stop(name)
    return {
        "server": server,
        "workers": workers,
        "upstream_connections": args.upstream_connections,
        "streams": args.streams,
        "opened": result["opened"],
        "ok": result["ok"],
        "errors": result["errors"],
        "peak_open": result["peak_open"],
        "baseline_mib": max(idle, default=0) / 1024,
        "baseline_tree_mib": sum(idle) / 1024,
        "peak_mib": peak["largest"],
        "peak_tree_mib": peak["tree"],
        "peak_fds": peak["fds"],
        "peak_sockets": peak["sockets"],
        "p50_s": (result["p50"] or 0) / 1000,
        "p99_s": (result["p99"] or 0) / 1000,
    }


def soak(solaris: Solaris, name: str, target: dict, args) -> dict:
    """Sustained non-streaming load: p99 per window, and the server's memory, open files and
    PostgreSQL sessions near the start and near the end of it."""
    root = solaris.stack.processes[name].pid
    job = {
        "host": "127.0.0.1",
        "port": target["port"],
        "headers": target["headers"],
        "header_sets": target["header_sets"],
        "stream": False,
        "concurrency": args.soak_concurrency,
        "duration": args.soak,
        "warmup": args.warmup,
        "max_tokens": 64,
        "window": args.soak_window,
    }
    found: dict = {}
    runner = threading.Thread(target=lambda: found.update(load(job)))
    with contextlib.ExitStack() as closing:
        database = solaris.env.get("DATABASE_URL")
        # Connected before the load: reading the sessions then costs the machine nothing.
        sessions = closing.enter_context(psycopg.connect(database)) if database else None

        def usage_at(seconds: float) -> dict:
            # Read while the load still runs: its connections are part of what is open.
            time.sleep(max(0.0, began + seconds - time.monotonic()))
            postgres = None
            if sessions is not None:
                postgres = sessions.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                sessions.rollback()
            at = time.monotonic() - began - args.warmup
            return {"at_s": at, **tree_usage(root), "postgres": postgres}

        began = time.monotonic()
        runner.start()
        first = usage_at(args.warmup + min(1.0, args.soak * 0.1))
        last = usage_at(args.warmup + args.soak * 0.9)
        runner.join()
    windows = found["windows"]
    head, tail = (windows[0]["p99"], windows[-1]["p99"]) if windows else (None, None)
    return {
        "seconds": args.soak,
        "window_s": args.soak_window,
        "concurrency": args.soak_concurrency,
        "ok": found["ok"],
        "rps": found["rps"],
        "errors": found["errors"],
        "p99": found["p99"],
        "windows": windows,
        "stable": None if not head or tail is None else abs(tail - head) <= 0.2 * head,
        "start": first,
        "end": last,
    }


def worker_scaling(solaris: Solaris, server: str, callers: list[dict], args) -> dict:
    """Throughput at c=16 with each of --scale-workers processes, on fresh servers."""
    found = {}
    for workers in args.scale:
        name = f"solaris-{server}-{workers}w"
        port = solaris.serve(name, server, workers, args.loop)
        target = {
            "name": f"solaris[{server}] {workers}w",
            "port": port,
            "headers": callers[0],
            "header_sets": callers,
        }
        try:
            warm(target)
            found[str(workers)] = {
                mode: cell(target, mode, SCALE_CONCURRENCY, args) for mode in MODES
            }
        finally:
            solaris.stack.stop(name)
    return found


def profile(stack: Stack, name: str, target: dict, server: str, args) -> dict:
    """py-spy on every Solaris worker while c=16 load runs (non-streaming, then streaming)."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        return {"error": "py-spy is not installed: pip install -e '.[bench]'"}
    root = stack.processes[name].pid
    out = {}
    for mode in MODES:
        raw = args.out.with_name(f"{args.out.stem}-profile-{server}-{mode}.txt")
        seconds = max(3, int(args.duration))
        spy = subprocess.Popen(
            [
                str(pyspy),
                "record",
                "--pid",
                str(root),
                "--subprocesses",
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        cell(target, mode, 16, args, duration=seconds, warmup=0)
        _stdout, err = spy.communicate(timeout=seconds + 60)
        if not raw.exists():
            out[mode] = {"error": err.decode("utf-8", "replace")[-500:]}
            continue
        out[mode] = report.profile_summary(raw.read_text())
        out[mode]["file"] = raw.name
    return out


def per_call(solaris: Solaris, headers: dict, port: int, args) -> dict:
    """Database statements and Redis commands one call costs, counted by the servers themselves."""
    calls = 20 if args.quick else 200
    found = {}
    for mode in MODES:
        solaris.django("stats", "--reset")
        result = load(
            {
                "host": "127.0.0.1",
                "port": port,
                "headers": headers,
                "concurrency": 1,
                "requests": calls,
                "stream": mode == "stream",
                "max_tokens": 64,
            }
        )
        found[mode] = {"calls": result["ok"], **solaris.django("stats")}
    return found


def models_latency(seeded: dict, port: int, args) -> dict:
    """GET /v1/models as LibreChat asks it before every chat call: the integration key and one
    LibreChat user's e-mail, spread over the load users, at each concurrency."""
    callers = [
        {
            "authorization": f"Bearer {seeded['integration_key']}",
            "x-librechat-user-email": user["email"],
        }
        for role, user in seeded["users"].items()
        if role == "load" or role.startswith("load-")
    ]
    found = {}
    for concurrency in args.concurrencies:
        found[str(concurrency)] = result = load(
            {
                "host": "127.0.0.1",
                "port": port,
                "method": "GET",
                "path": "/v1/models",
                "headers": callers[0],
                "header_sets": callers,
                "concurrency": concurrency,
                "duration": args.duration,
                "warmup": args.warmup,
            }
        )
        print(report.models_line(concurrency, result), flush=True)
    return found


def warm(target: dict) -> None:
    """First calls pay for imports, connections and caches; none of that is measured."""
    for stream in (False, True):
        load(
            {
                "host": "127.0.0.1",
                "port": target["port"],
                "headers": target["headers"],
                "concurrency": 4,
                "requests": 40,
                "stream": stream,
                "max_tokens": 64,
            }
        )


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": os.getloadavg(),
    }


def commit_of(path: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (found.stdout.strip() or "unknown") + (
        " (with uncommitted changes)" if dirty.stdout.strip() else ""
    )


def database_create(python: Path, url: str) -> None:
    """CREATE DATABASE unless it exists (through the server's `postgres` database)."""
    script = (
        "import sys, psycopg\n"
        "from urllib.parse import urlsplit\n"
        "url = urlsplit(sys.argv[1]); name = url.path.lstrip('/')\n"
        "with psycopg.connect(url._replace(path='/postgres').geturl(), autocommit=True) as c:\n"
        "    if not c.execute('SELECT 1 FROM pg_database WHERE datname = %s', [name]).fetchone():\n"
        "        c.execute('CREATE DATABASE \"%s\"' % name.replace('\"', ''))\n"
    )
    done = subprocess.run(
        [str(python), "-c", script, url], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StackError(f"cannot create the database of {url}:\n{done.stderr[-2000:]}")


def run(args) -> dict:
    results: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": machine(),
        "commit": commit_of(args.checkout),
        "bench_commit": commit_of(BENCH_ROOT),
        "cells": {},
        "servers": {},
    }
    stack = Stack(args.out.parent / f"{args.out.stem}-logs")
    try:
        mock_port = stack.mock(chunks=50, slow_gap=args.slow_gap)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        env.update(
            SECRET_KEY="bench-" + secrets.token_hex(24),
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LITELLM_BASE_URL=f"http://127.0.0.1:{mock_port}",
            LITELLM_API_KEY="sk-bench-dummy",
            SOLARIS_UPSTREAM_MAX_CONNECTIONS=str(args.upstream_connections),
            PYTHONPATH=str(args.checkout),
            DJANGO_SETTINGS_MODULE="solaris.settings",
        )
        if args.sqlite:
            env["SQLITE_PATH"] = str(stack.tmp / "bench.sqlite3")
            results["backend"] = (
                "SQLite + local-memory cache (smoke test only: not a production setup)"
            )
        else:
            server_url = args.database_url or stack.postgres()
            database_url = server_url if args.database_url else f"{server_url}/solaris_bench"
            database_create(args.python, database_url)
            env["DATABASE_URL"] = database_url
            env["REDIS_URL"] = args.redis_url or stack.redis()
            results["backend"] = "PostgreSQL + Redis"
        solaris = Solaris(stack, args.checkout, args.python, env)
        # What the install holds; each server's section says what its processes actually loaded.
        results["solaris_python"] = {
            "python": str(args.python),
            **{module: solaris.has_module(module) for module in ("uvloop", "httptools")},
        }
        solaris.run("manage.py", "migrate", "--noinput")
        seeded = solaris.django(
            "seed", "--tag", secrets.token_hex(4), "--load-users", str(args.load_users)
        )
        solaris_headers = {"authorization": f"Bearer {seeded['users']['load']['key']}"}
        load_callers = [
            {"authorization": f"Bearer {user['key']}"}
            for role, user in seeded["users"].items()
            if role == "load" or role.startswith("load-")
        ]
        targets = [{"name": "direct", "port": mock_port, "headers": {}}]

        if not args.no_litellm:
            litellm_port, litellm_key = stack.litellm(
                args.litellm_venv, mock_port, args.litellm_workers
            )
            targets.append(
                {
                    "name": "litellm",
                    "port": litellm_port,
                    "headers": {"authorization": f"Bearer {litellm_key}"},
                }
            )

        for target in targets:
            warm(target)
            for mode in MODES:
                for concurrency in args.concurrencies:
                    results["cells"][f"{target['name']}|{mode}|{concurrency}"] = cell(
                        target, mode, concurrency, args
                    )
        if "litellm" in stack.processes:
            stack.stop("litellm")  # its CPU is not Solaris's to share

        for server in args.servers:
            name = f"solaris-{server}"
            port = solaris.serve(name, server, args.workers, args.loop)
            target = {
                "name": f"solaris[{server}]",
                "port": port,
                "headers": solaris_headers,
                "header_sets": load_callers,
            }
            probe = load(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "headers": solaris_headers,
                    "concurrency": 1,
                    "requests": 3,
                }
            )
            if probe["ok"] == 0:
                raise StackError(
                    f"Solaris does not serve /v1/chat/completions: {probe['errors']}\n{stack.log_tail(name)}"
                )
            warm(target)
            section: dict = {"cells": {}, "runtime": solaris.runtime(name, server)}
            print(report.runtime_line(server, section["runtime"]), flush=True)
            for mode in MODES:
                for concurrency in args.concurrencies:
                    section["cells"][f"{mode}|{concurrency}"] = cell(
                        target, mode, concurrency, args
                    )
            if args.soak:
                section["soak"] = soak(solaris, name, target, args)
                print(report.soak_line(section["soak"]), flush=True)
            section["per_call"] = per_call(solaris, solaris_headers, port, args)
            section["models"] = models_latency(seeded, port, args)
            if args.profile:
                section["profile"] = profile(stack, name, target, server, args)
            # Fresh accounting and overspend users per server: each check starts from its own grant.
            fresh = solaris.django("seed", "--tag", secrets.token_hex(4), "--load-users", "1")
            section["accounting"] = accounting(solaris, fresh, port, mock_port, args)
            print(report.accounting_line(section["accounting"]), flush=True)
            section["overspend"] = overspend(solaris, fresh, port, mock_port, args)
            print(report.overspend_line(section["overspend"]), flush=True)
            stack.stop(name)
            section["streams"] = open_streams(solaris, load_callers, server, args)
            print(report.streams_line(section["streams"]), flush=True)
            if args.scale:
                section["scaling"] = worker_scaling(solaris, server, load_callers, args)
            results["servers"][server] = section
    finally:
        stack.close()
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    from bench.loop import install

    install()  # the open-files limit, inherited by every process started from here
    asyncio.set_event_loop_policy(None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        results = run(args)
    except StackError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    results["wall_seconds"] = time.monotonic() - started
    text = report.markdown(results)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    print()
    print(text)
    print(f"written: {args.out}")
    return 0 if report.sound(results) else 1


if __name__ == "__main__":
    sys.exit(main())
