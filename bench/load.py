"""The load generator: one separate process, raw asyncio streams, one keep-alive connection per
concurrent client. `python -m bench.load` reads a job (JSON) on stdin and prints its result (JSON).

Kept lean on purpose: on 2 cores it competes for CPU with the servers it measures. Bodies are built
once, responses are parsed only as far as needed to know they are whole and correct.

Job kinds:
- "load": `concurrency` clients send back to back for `warmup` + `duration` seconds (or until
  `requests` calls were sent); latencies of calls that started after the warm-up are kept.
- "hold": `concurrency` streams opened at once (ramped over `ramp` seconds), each read to its end.

`"window": W` (load) also gives p50/p99 per W seconds of the measured run (the soak).

`"method": "GET"` with `"path": "/v1/models"` measures the model list instead of chat calls.
"""

import asyncio
import json
import random
import sys
import time

PATH = "/v1/chat/completions"
# What a connection that broke, stalled or answered garbage raises while a call is read.
BROKEN_CONNECTION = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    TimeoutError,
    ValueError,
)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def build_bodies(job: dict) -> list[bytes]:
    """Request bodies; `vary` gives different prompt lengths and max_tokens (exercises rounding)."""
    rng = random.Random(job.get("seed", 8))
    bodies = []
    variants = 64 if job.get("vary") else 1
    for index in range(variants):
        words = rng.randint(1, 60) if job.get("vary") else 12
        body: dict = {
            "model": job.get("model", "bench-model"),
            "messages": [{"role": "user", "content": " ".join(["word"] * words) + f" #{index}"}],
        }
        if job.get("vary"):
            max_tokens = rng.choice([None, 1, 5, 17, 33, 50, 64])
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
        elif job.get("max_tokens"):
            body["max_tokens"] = job["max_tokens"]
        if job.get("stream"):
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        bodies.append(json.dumps(body).encode())
    return bodies


def build_request(job: dict, body: bytes, headers: dict) -> bytes:
    method = job.get("method", "POST")
    head = [f"{method} {job.get('path', PATH)} HTTP/1.1", f"host: {job['host']}:{job['port']}"]
    if method == "POST":
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Broken(Exception):
    """The answer was not a complete, correct one (the message says what was wrong)."""


async def read_response(
    reader: asyncio.StreamReader, stream: bool
) -> tuple[int, bytes, bool, float]:
    """(status, body, keep_alive, time of the first byte); raises Broken on a malformed answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    first = time.perf_counter()
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and "close" in value.lower():
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        keep_alive = False
    return status, body, keep_alive, first


def check(status: int, body: bytes, stream: bool, listing: bool = False) -> str | None:
    """What is wrong with an answer, None when it is whole and correct."""
    if status != 200:
        try:
            return f"{status} {json.loads(body)['error'].get('code')}"
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"{status}"
    if listing:
        return None if b'"data"' in body else "model list without data"
    if stream:
        if not body.rstrip().endswith(b"data: [DONE]"):
            return "stream without [DONE]"
        if b'"error"' in body:
            return "error event in stream"
        if b'"usage"' not in body:
            return "stream without usage"
    elif b'"usage"' not in body or b'"choices"' not in body:
        return "answer without usage"
    return None


class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.ttfb: list[float] = []
        self.errors: dict[str, int] = {}
        self.sent = 0
        self.opened = 0
        self.open = 0
        self.peak_open = 0
        self.finished: list[tuple[float, float]] = []  # (end, latency ms) when windows are asked

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def client(
    job: dict, requests: list[bytes], stats: Stats, measure_from: float, stop_at: float
):
    stream = bool(job.get("stream"))
    limit = job.get("requests")
    windowed = bool(job.get("window"))
    reader = writer = None
    index = random.randrange(len(requests))
    try:
        while time.perf_counter() < stop_at and (limit is None or stats.sent < limit):
            stats.sent += 1
            if writer is None:
                reader, writer = await asyncio.open_connection(
                    job["host"], job["port"], limit=1 << 20
                )
            index = (index + 1) % len(requests)
            start = time.perf_counter()
            try:
                writer.write(requests[index])
                status, body, keep_alive, first = await asyncio.wait_for(
                    read_response(reader, stream), job.get("timeout", 60)
                )
            except BROKEN_CONNECTION as exc:
                stats.error(type(exc).__name__)
                writer.close()
                reader = writer = None
                continue
            end = time.perf_counter()
            problem = check(status, body, stream, listing=job.get("method") == "GET")
            if problem:
                stats.error(problem)
            elif start >= measure_from:
                stats.latencies.append((end - start) * 1000)
                stats.ttfb.append((first - start) * 1000)
                if windowed:
                    stats.finished.append((end, (end - start) * 1000))
            if not keep_alive:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def one_stream(job: dict, request: bytes, stats: Stats, delay: float):
    await asyncio.sleep(delay)
    start = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection(job["host"], job["port"], limit=1 << 20)
        writer.write(request)
        stats.opened += 1
        stats.open += 1
        stats.peak_open = max(stats.peak_open, stats.open)
        try:
            status, body, _keep, first = await asyncio.wait_for(
                read_response(reader, True), job.get("timeout", 120)
            )
        finally:
            stats.open -= 1
    except BROKEN_CONNECTION as exc:
        stats.error(type(exc).__name__)
        return
    finally:
        if writer is not None:
            writer.close()
    problem = check(status, body, True)
    if problem:
        stats.error(problem)
    else:
        stats.latencies.append((time.perf_counter() - start) * 1000)
        stats.ttfb.append((first - start) * 1000)


def windows(finished: list[tuple[float, float]], start: float, width: float) -> list[dict]:
    """p50/p99 of the calls that ended in each `width`-second window from `start`; a last window
    shorter than half a width is folded into the one before."""
    if not finished:
        return []
    last = max(end for end, _latency in finished) - start
    count = max(1, int(last // width) + (1 if last % width >= width / 2 else 0))
    buckets: list[list[float]] = [[] for _ in range(count)]
    for end, latency in finished:
        buckets[min(count - 1, max(0, int((end - start) // width)))].append(latency)
    found = []
    for index, bucket in enumerate(buckets):
        bucket.sort()
        found.append(
            {
                "from_s": index * width,
                "calls": len(bucket),
                "p50": percentile(bucket, 0.50),
                "p99": percentile(bucket, 0.99),
            }
        )
    return found


async def run(job: dict) -> dict:
    # Client i sends as caller i mod n when several callers are given (many users, as in production).
    callers = job.get("header_sets") or [job.get("headers", {})]
    bodies = build_bodies(job) if job.get("method", "POST") == "POST" else [b""]
    per_caller = [[build_request(job, body, headers) for body in bodies] for headers in callers]
    stats = Stats()
    concurrency = int(job["concurrency"])
    started = measure_from = time.perf_counter()
    if job.get("kind") == "hold":
        ramp = float(job.get("ramp", 2.0))
        await asyncio.gather(
            *(
                one_stream(job, per_caller[i % len(per_caller)][0], stats, ramp * i / concurrency)
                for i in range(concurrency)
            )
        )
        measured = time.perf_counter() - started
    else:
        warmup = float(job.get("warmup", 0))
        duration = float(job.get("duration", 5))
        measure_from = started + warmup
        stop_at = measure_from + duration if job.get("requests") is None else float("inf")
        await asyncio.gather(
            *(
                client(job, per_caller[i % len(per_caller)], stats, measure_from, stop_at)
                for i in range(concurrency)
            )
        )
        measured = time.perf_counter() - max(measure_from, started)
    latencies = sorted(stats.latencies)
    ttfb = sorted(stats.ttfb)
    extra = {}
    if job.get("window"):
        extra["windows"] = windows(stats.finished, measure_from, float(job["window"]))
    return {
        **extra,
        "ok": len(latencies),
        "sent": stats.sent,
        "errors": stats.errors,
        "elapsed": measured,
        "rps": len(latencies) / measured if measured > 0 else 0.0,
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else None,
        "ttfb_p50": percentile(ttfb, 0.50),
        "opened": stats.opened,
        "peak_open": stats.peak_open,
    }


def main() -> None:
    from bench.loop import install

    loop_name = install()
    job = json.loads(sys.stdin.read())
    result = asyncio.run(run(job))
    result["loop"] = loop_name
    print(json.dumps(result))


if __name__ == "__main__":
    main()
