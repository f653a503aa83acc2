"""Turning the benchmark's results into lines while it runs and one markdown report at the end."""

import re
from collections import Counter

GOALS = {
    "added_p50": {"non-stream": 2.0, "stream": 3.0},
    "added_p99": 10.0,
    "throughput_ratio": 5.0,
    "streams_mib": 512,
    "models_p99": 20.0,
}
# py-spy names files relative to sys.path: "proxy/views.py", "django/db/...", "threading.py".
OWN = re.compile(r"^(proxy|credits|notifications|accounts|kernel|solaris)/")
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*):?(?P<line>\d*)\)$")


def _ms(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _errors(errors: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "0"


def cell_line(name: str, mode: str, concurrency: int, result: dict) -> str:
    return (
        f"{name:>18} {mode:>10} c={concurrency:<3} p50 {_ms(result['p50'])} p90 {_ms(result['p90'])} "
        f"p99 {_ms(result['p99'])} ms  {result['rps']:.0f} req/s  errors {_errors(result['errors'])}"
    )


def models_line(concurrency: int, result: dict) -> str:
    return (
        f"{'GET /v1/models':>18} {'':>10} c={concurrency:<3} p50 {_ms(result['p50'])} p90 "
        f"{_ms(result['p90'])} p99 {_ms(result['p99'])} ms  {result['rps']:.0f} req/s  errors "
        f"{_errors(result['errors'])}"
    )


def _models(found: dict) -> list[str]:
    out = [
        "",
        "### GET /v1/models (LibreChat asks it before every chat call)",
        "",
        "Integration key, each call for one of the load users (X-LibreChat-User-Email), answered "
        "from Solaris's tables and the cached LiteLLM list.",
        "",
        f"| c | p50 | p90 | p99 | req/s | errors | goal p99 ≤ {GOALS['models_p99']:.0f} ms |",
        "|---:|---:|---:|---:|---:|---|---|",
    ]
    for concurrency, r in found.items():
        met = None if r["p99"] is None else r["p99"] <= GOALS["models_p99"]
        out.append(
            f"| {concurrency} | {_ms(r['p50'])} | {_ms(r['p90'])} | {_ms(r['p99'])} | "
            f"{r['rps']:.0f} | {_errors(r['errors'])} | {_verdict(met)} |"
        )
    return out


def runtime_line(server: str, runtime: dict) -> str:
    served = f", --http {runtime['protocol']}" if runtime.get("protocol") else ""
    return f"solaris[{server}]: {runtime['loop']} loop, {runtime['parser']} parser{served}"


def accounting_line(found: dict) -> str:
    return (
        f"accounting: {found['calls']} calls, expected {found['expected']} credits, booked "
        f"{found['booked']}, difference {found['difference']} -> {'EXACT' if found['exact'] else 'WRONG'}"
    )


def overspend_line(found: dict) -> str:
    return (
        f"overspend: granted {found['granted']}, booked {found['booked']} (expected {found['expected']}), "
        f"balance {found['balance']}, served {found['served']}, refused {found['refused']}, other errors "
        f"{_errors(found['other_errors'])} -> {'HELD' if found['held_within'] else 'VIOLATED'}"
    )


def streams_line(found: dict) -> str:
    return (
        f"open streams [{found['server']}, {found.get('workers', 1)} workers]: "
        f"{found.get('opened', '?')} opened, {found['ok']}/{found['streams']} complete, peak open "
        f"{found['peak_open']}, errors {_errors(found['errors'])}, largest process RSS "
        f"{found['baseline_mib']:.0f} -> {found['peak_mib']:.0f} MiB, all processes "
        f"{found.get('baseline_tree_mib', 0):.0f} -> {found['peak_tree_mib']:.0f} MiB"
    )


def soak_line(found: dict) -> str:
    p99s = " ".join(_ms(w["p99"]) for w in found["windows"])
    start, end = found["start"], found["end"]
    return (
        f"soak: {found['seconds']:.0f} s at c={found['concurrency']}, {found['ok']} calls, errors "
        f"{_errors(found['errors'])}; p99 per {found['window_s']:.0f} s: {p99s} ms -> "
        f"{_stable(found['stable'])}; RSS {start['rss_mib']:.0f} -> {end['rss_mib']:.0f} MiB, fds "
        f"{start['fds']} -> {end['fds']}, PostgreSQL sessions {_count(start['postgres'])} -> "
        f"{_count(end['postgres'])}"
    )


def _stable(ok: bool | None) -> str:
    return "–" if ok is None else ("within 20 %" if ok else "**drifted more than 20 %**")


def _count(value) -> str:
    return "–" if value is None else str(value)


def _soak(found: dict) -> list[str]:
    out = [
        "",
        f"### Soak: {found['seconds']:.0f} s of non-streaming load at c={found['concurrency']}",
        "",
        f"{found['ok']} calls, {found['rps']:.0f} req/s, errors {_errors(found['errors'])}; p99 over "
        f"the whole soak {_ms(found['p99'])} ms. Last window's p99 against the first's: "
        f"{_stable(found['stable'])}.",
        "",
        "| window (s) | calls | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for window in found["windows"]:
        end = window["from_s"] + found["window_s"]
        out.append(
            f"| {window['from_s']:.0f}–{end:.0f} | {window['calls']} | {_ms(window['p50'])} | "
            f"{_ms(window['p99'])} |"
        )
    out += [
        "",
        "| Solaris's processes | RSS MiB (all) | open fds | of which sockets | PostgreSQL sessions |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in ("start", "end"):
        at = found[label]
        out.append(
            f"| {label} (at {at['at_s']:.0f} s, {at['processes']} processes) | {at['rss_mib']:.0f} | "
            f"{at['fds']} | {at['sockets']} | {_count(at['postgres'])} |"
        )
    return out


def _scaling(found: dict) -> list[str]:
    out = [
        "",
        "### Worker processes at c=16 (fresh server per count)",
        "",
        "| workers | non-stream req/s | p99 ms | stream req/s | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for workers, cells in found.items():
        plain, streamed = cells["non-stream"], cells["stream"]
        errors = {**plain["errors"], **streamed["errors"]}
        out.append(
            f"| {workers} | {plain['rps']:.0f} | {_ms(plain['p99'])} | {streamed['rps']:.0f} | "
            f"{_ms(streamed['p99'])} | {_errors(errors)} |"
        )
    counts = list(found)
    if len(counts) > 1 and found[counts[0]]["non-stream"]["rps"]:
        first, last = found[counts[0]], found[counts[-1]]
        out += [
            "",
            f"{counts[-1]} workers against {counts[0]}: "
            f"{last['non-stream']['rps'] / first['non-stream']['rps']:.2f}× non-streaming, "
            f"{last['stream']['rps'] / max(first['stream']['rps'], 1e-9):.2f}× streaming.",
        ]
    return out


def _package(file: str) -> str:
    if OWN.search(file):
        return "solaris (own code)"
    top = file.split("/", 1)[0]
    return top.removesuffix(".py") if top else "?"


def profile_summary(raw: str, top: int = 12) -> dict:
    """From py-spy's raw (collapsed) stacks: where the samples' leaves are, by package and by
    function, and the inclusive share of Solaris's own functions."""
    leaves: Counter = Counter()
    packages: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        leaf = FRAME.match(frames[-1])
        leaf_file = leaf["file"] if leaf else ""
        leaves[frames[-1] if not leaf else f"{leaf['func']} ({leaf_file}:{leaf['line']})"] += (
            samples
        )
        packages[_package(leaf_file)] += samples
        seen = set()
        for frame in frames:
            match = FRAME.match(frame)
            if match and OWN.search(match["file"]):
                key = f"{match['func']} ({match['file']})"
                if key not in seen:
                    seen.add(key)
                    own[key] += samples
    share = (lambda n: 100.0 * n / total) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "packages": [(name, share(n)) for name, n in packages.most_common(top)],
        "leaves": [(name, share(n)) for name, n in leaves.most_common(top)],
        "own_inclusive": [(name, share(n)) for name, n in own.most_common(top)],
    }


def sound(results: dict) -> bool:
    """Correctness only (exact credits, no overspend, no stream errors); speed goals are reported."""
    for section in results["servers"].values():
        if not section["accounting"]["exact"] or not section["overspend"]["held_within"]:
            return False
        if (
            section["streams"]["errors"]
            or section["streams"]["ok"] != section["streams"]["streams"]
        ):
            return False
    return True


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def _python(results: dict) -> str:
    found = results.get("solaris_python") or {}
    extras = [name for name in ("uvloop", "httptools") if found.get(name)]
    held = ", ".join(extras) + " installed" if extras else "neither uvloop nor httptools installed"
    return f"`{found.get('python', '?')}` ({held})"


def _runtimes(results: dict) -> str:
    """What each server's processes loaded, and the --loop asked for."""
    ran = [
        runtime_line(server, section["runtime"])
        for server, section in results["servers"].items()
        if "runtime" in section
    ]
    return f"{'; '.join(ran)} (`--loop {results['args'].get('loop', 'auto')}`)"


def _per_call(mode: str, found: dict) -> list[str]:
    calls = found["calls"] or 1
    out = ["", f"### What one {mode} call costs ({found['calls']} calls at c=1)", ""]
    redis = found.get("redis")
    if redis is not None:
        per = sum(redis.values()) / calls
        detail = ", ".join(
            f"{name} {n / calls:.2f}" for name, n in sorted(redis.items(), key=lambda x: -x[1])
        )
        out.append(f"- Redis commands per call: **{per:.2f}** ({detail or 'none'})")
    postgres = found.get("postgres")
    if isinstance(postgres, str):
        out.append(f"- PostgreSQL statements: not counted ({postgres})")
    elif postgres is not None:
        # Statements run about once per call or more; the counting's own few appear once.
        recurring = [row for row in postgres if row["calls"] >= calls / 2]
        per = sum(row["calls"] for row in recurring) / calls
        out += [
            f"- PostgreSQL statements per call: **{per:.1f}**",
            "",
            "| per call | mean ms | statement |",
            "|---:|---:|---|",
        ]
        out += [
            f"| {row['calls'] / calls:.2f} | {row['mean_ms']:.3f} | `{row['query'].replace('|', '¦')}` |"
            for row in recurring
        ]
    return out


def markdown(results: dict) -> str:
    args = results["args"]
    box = results["machine"]
    cells = results["cells"]
    concurrencies = [int(c) for c in args["concurrency"].split(",")]
    out = [
        "# Solaris benchmark",
        "",
        f"- Solaris commit: `{results['commit']}` at `{args['checkout']}`; harness commit `{results['bench_commit']}`",
        f"- Machine: {box['cpu']}, {box['cores']} cores, {box['memory_mib']} MiB, Linux {box['kernel']}, "
        f"Python {box['python']}; load average at start {', '.join(f'{x:.2f}' for x in box['load'])}",
        f"- Backend: {results.get('backend', '?')}; Solaris workers: {args['workers']}; load spread over "
        f"{args['load_users']} callers (own key and account each); LiteLLM workers: "
        f"{args['litellm_workers'] if args['no_litellm'] == 'False' else 'not run'}",
        f"- Solaris's Python: {_python(results)}",
        f"- Solaris ran on: {_runtimes(results)}",
        f"- Each cell: {args['warmup']} s warm-up, {args['duration']} s measured; streams of 50 chunks; "
        f"the load generator is one separate process on the same cores. Wall time {results.get('wall_seconds', 0):.0f} s.",
        "",
        "## Latency (ms, whole answer) and throughput",
        "",
        "| target | mode | c | p50 | p90 | p99 | req/s | errors |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    rows = [
        (key.split("|")[0], key.split("|")[1], key.split("|")[2], r) for key, r in cells.items()
    ]
    for server, section in results["servers"].items():
        for key, r in section["cells"].items():
            mode, c = key.split("|")
            rows.append((f"solaris[{server}]", mode, c, r))
    for name, mode, c, r in rows:
        out.append(
            f"| {name} | {mode} | {c} | {_ms(r['p50'])} | {_ms(r['p90'])} | {_ms(r['p99'])} | "
            f"{r['rps']:.0f} | {_errors(r['errors'])} |"
        )
    for server, section in results["servers"].items():
        out += ["", f"## Solaris[{server}] against LiteLLM", ""]
        out += [
            "| mode | Solaris added p50 (b−a) | Solaris added p99 | LiteLLM added p50 (c−a) | ratio | goal p50 | goal p99 ≤ 10 |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for mode in ("non-stream", "stream"):
            direct = cells.get(f"direct|{mode}|1")
            mine = section["cells"].get(f"{mode}|1")
            theirs = cells.get(f"litellm|{mode}|1")
            if not direct or not mine or mine["p50"] is None or direct["p50"] is None:
                continue
            added50 = mine["p50"] - direct["p50"]
            added99 = mine["p99"] - direct["p99"]
            other = theirs["p50"] - direct["p50"] if theirs and theirs["p50"] is not None else None
            ratio = f"{added50 / other:.2f}" if other else "–"
            out.append(
                f"| {mode} | {added50:.2f} | {added99:.2f} | {_ms(other)} | {ratio} | "
                f"≤ {GOALS['added_p50'][mode]:.0f} ms: {_verdict(added50 <= GOALS['added_p50'][mode])} | "
                f"{_verdict(added99 <= GOALS['added_p99'])} |"
            )
        out += [
            "",
            "| mode | c | Solaris req/s | LiteLLM req/s | ratio | goal ≥ 5× |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for mode in ("non-stream", "stream"):
            for c in concurrencies:
                mine = section["cells"].get(f"{mode}|{c}")
                theirs = cells.get(f"litellm|{mode}|{c}")
                if not mine:
                    continue
                ratio = mine["rps"] / theirs["rps"] if theirs and theirs["rps"] else None
                goal = None if ratio is None or c < 16 else ratio >= GOALS["throughput_ratio"]
                their_rps = f"{theirs['rps']:.0f}" if theirs else "–"
                shown = "–" if ratio is None else f"{ratio:.1f}×"
                out.append(
                    f"| {mode} | {c} | {mine['rps']:.0f} | {their_rps} | {shown} | {_verdict(goal)} |"
                )
        sat = {
            mode: max((section["cells"][f"{mode}|{c}"]["rps"] for c in concurrencies), default=0)
            for mode in ("non-stream", "stream")
        }
        out += [
            "",
            f"Throughput at saturation (best of the concurrencies): {sat['non-stream']:.0f} req/s "
            f"non-streaming, {sat['stream']:.0f} streams/s.",
        ]
        acc, over, streams = section["accounting"], section["overspend"], section["streams"]
        out += [
            "",
            "### Accounting",
            "",
            f"- {acc['calls']} calls with varied prompts and max_tokens (half streamed, c=16): upstream "
            f"usage × weights = **{acc['expected']}** credits, ledger = **{acc['booked']}**, difference "
            f"**{acc['difference']}** ({'exact' if acc['exact'] else 'NOT exact'}); usage entries "
            f"{acc['usage_entries']} for {acc['upstream_calls']} upstream calls; open holds {acc['open_holds']}; "
            f"flagged {acc['flagged']}; call records {acc['call_records']}; errors {_errors(acc['errors'])}.",
            f"- Overspend under concurrency (64 clients, 32 streaming and 32 not, on a grant of {over['granted']}): "
            f"booked {over['booked']} (upstream usage × weights {over['expected']}), balance "
            f"{over['balance']}, debt {over['debt']}, open holds {over['open_holds']}, served "
            f"{over['served']}, refused (429 insufficient_quota) {over['refused']}, other errors "
            f"{_errors(over['other_errors'])}: {'never overspent' if over['held_within'] else '**VIOLATED**'}.",
            "",
            f"### Concurrent open streams through {streams.get('workers', 1)} process(es)",
            "",
            f"- {streams['streams']} slow streams (50 chunks, {args['slow_gap']} s apart) through "
            f"{streams.get('workers', 1)} {streams['server']} worker(s), "
            f"SOLARIS_UPSTREAM_MAX_CONNECTIONS={streams.get('upstream_connections', '?')}: "
            f"{streams.get('opened', '?')} opened, {streams['ok']} complete, peak open "
            f"{streams['peak_open']}, errors {_errors(streams['errors'])}; largest process RSS "
            f"{streams['baseline_mib']:.0f} MiB warm idle, **{streams['peak_mib']:.0f} MiB** peak; all "
            f"Solaris processes together {streams.get('baseline_tree_mib', 0):.0f} MiB idle, "
            f"**{streams['peak_tree_mib']:.0f} MiB** peak, {streams.get('peak_fds', '?')} open fds at "
            f"peak ({streams.get('peak_sockets', '?')} sockets); "
            f"stream duration p50 {streams['p50_s']:.2f} s, p99 {streams['p99_s']:.2f} s (the upstream's own "
            f"pace: {float(args['slow_gap']) * 50:.1f} s). Goal per process < "
            f"{GOALS['streams_mib']} MiB with zero errors: "
            f"{_verdict(streams['peak_mib'] < GOALS['streams_mib'] and not streams['errors'] and streams['ok'] == streams['streams'])}.",
        ]
        if section.get("soak"):
            out += _soak(section["soak"])
        if section.get("scaling"):
            out += _scaling(section["scaling"])
        if section.get("models"):
            out += _models(section["models"])
        for mode, found in (section.get("per_call") or {}).items():
            out += _per_call(mode, found)
        for mode, found in (section.get("profile") or {}).items():
            out += [
                "",
                f"### Profile, {mode}, c=16 (py-spy, {found.get('samples', 0)} samples, file {found.get('file', '–')})",
                "",
            ]
            if "error" in found:
                out.append(f"py-spy failed: {found['error']}")
                continue
            out += ["| leaf package | % |", "|---|---:|"]
            out += [f"| {name} | {pct:.1f} |" for name, pct in found["packages"]]
            out += ["", "| Solaris function (inclusive) | % |", "|---|---:|"]
            out += [f"| `{name}` | {pct:.1f} |" for name, pct in found["own_inclusive"]]
            out += ["", "| leaf function (self) | % |", "|---|---:|"]
            out += [f"| `{name}` | {pct:.1f} |" for name, pct in found["leaves"]]
    out.append("")
    return "\n".join(out)
