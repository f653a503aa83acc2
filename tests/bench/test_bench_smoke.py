"""The benchmark harness runs end to end for a few seconds, so it cannot rot (issue 8).

Speed goals are not asserted here (docs/performance.md has the numbers); correctness is: every call
answered, credits exact to the unit, no overspend, every held stream complete.
"""

import importlib.util
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.__main__ import credits_expected
from bench.report import profile_summary

ROOT = Path(__file__).resolve().parents[2]
LITELLM = ROOT / ".litellm-venv" / "bin" / "litellm"


def test_expected_credits_round_up_each_call_not_the_sum():
    calls = [{"prompt": 20, "completion": 50}, {"prompt": 3, "completion": 1}]
    # 20 × 0.37 + 50 × 1.13 = 63.9 → 64; 3 × 0.37 + 1 × 1.13 = 2.24 → 3 (the sum 66.14 would give 67).
    assert credits_expected(calls, Decimal("0.37"), Decimal("1.13")) == 67


def test_profile_summary_attributes_samples_to_solaris_code():
    raw = "\n".join(
        [
            'process 1:"x";run (proxy/views.py:48);hold_create (credits/services/holds.py:80);'
            "Connection.wait (psycopg/connection.py:495) 3",
            'process 1:"x";Runner.run (asyncio/runners.py:118) 1',
        ]
    )
    found = profile_summary(raw)
    assert found["samples"] == 4
    assert dict(found["packages"]) == {"psycopg": 75.0, "asyncio": 25.0}
    assert dict(found["own_inclusive"]) == {
        "run (proxy/views.py)": 75.0,
        "hold_create (credits/services/holds.py)": 75.0,
    }


@pytest.mark.slow
def test_quick_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / "quick.md"
    argv = [sys.executable, "-m", "bench", "--quick", "--out", str(out)]
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if database_url.startswith("postgres") and redis_url:
        server = urlsplit(database_url)
        smoke = server._replace(path=f"{server.path.rstrip('/')}_bench_smoke").geturl()
        argv += ["--database-url", smoke, "--redis-url", redis_url]
    else:
        argv.append("--sqlite")
    if not LITELLM.exists():
        argv.append("--no-litellm")
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    results = json.loads(out.with_suffix(".json").read_text())
    targets = {key.split("|")[0] for key in results["cells"]}
    assert targets == ({"direct", "litellm"} if LITELLM.exists() else {"direct"})
    solaris = results["servers"]["uvicorn"]
    for cells in (results["cells"], solaris["cells"]):
        for key, cell in cells.items():
            assert cell["ok"] > 0 and cell["errors"] == {}, (key, cell)
            assert cell["p50"] <= cell["p90"] <= cell["p99"], (key, cell)
    for concurrency, cell in solaris["models"].items():
        assert cell["ok"] > 0 and cell["errors"] == {}, ("GET /v1/models", concurrency, cell)
    accounting = solaris["accounting"]
    assert accounting["exact"] and accounting["difference"] == 0
    assert accounting["booked"] == accounting["expected"] > 0
    overspend = solaris["overspend"]
    assert overspend["held_within"] and overspend["balance"] >= 0
    assert overspend["refused"] > 0, "the small grant must run out during the overspend check"
    streams = solaris["streams"]
    assert streams["ok"] == streams["streams"] == streams["peak_open"] and streams["errors"] == {}
    assert streams["opened"] == streams["streams"] and streams["workers"] == 2
    # The whole tree (both workers and the supervisor) is more than its largest process.
    assert streams["peak_tree_mib"] > streams["peak_mib"] > 0
    soak = solaris["soak"]
    assert soak["ok"] > 0 and soak["errors"] == {}
    assert soak["windows"] and all(window["calls"] > 0 for window in soak["windows"])
    assert sum(window["calls"] for window in soak["windows"]) == soak["ok"]
    for moment in (soak["start"], soak["end"]):
        assert moment["rss_mib"] > 0 and moment["sockets"] > 0
        assert (moment["postgres"] is None) == ("--sqlite" in argv)
        assert moment["postgres"] is None or moment["postgres"] > 0
    # By default it measures what this install serves with, and says so.
    runtime = solaris["runtime"]
    assert runtime["loop"] == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    assert runtime["parser"] == ("httptools" if importlib.util.find_spec("httptools") else "h11")
    assert runtime["protocol"] == "solaris.serving:HTTPProtocol"
    report = out.read_text()
    assert f"- Solaris ran on: solaris[uvicorn]: {runtime['loop']} loop, " in report
    assert "| solaris[uvicorn] | stream | 4 |" in report
    assert "### Accounting" in report and "difference **0** (exact)" in report
    assert "### GET /v1/models (LibreChat asks it before every chat call)" in report
    assert "### Soak: 2 s of non-streaming load at c=8" in report
    assert "### Concurrent open streams through 2 process(es)" in report
