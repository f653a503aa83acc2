"""Served the way production serves it, on the standard asyncio loop as on uvloop, Solaris sends
every piece of an answer at once: no call waits for the client's delayed ACK (docs/performance.md).

uvicorn's `--workers N` binds the listening socket itself with protocol number 0; asyncio's loop
then leaves Nagle's algorithm on for every connection, and each answer's body waited about 48 ms
behind its headers. uvloop always turned Nagle off, so only installs without it were slow.
"""

import importlib.util
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest
import uvicorn

from tests.conftest import ROOT

PROTOCOL = "solaris.serving:HTTPProtocol"
HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
NEEDS_UVLOOP = pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed (not on Windows)")
LOOPS = ["asyncio", pytest.param("uvloop", marks=NEEDS_UVLOOP)]
# A Host outside ALLOWED_HOSTS: the proxy lane answers 400 itself (headers, then body), no database.
REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: not-allowed.invalid\r\ncontent-length: 2\r\n\r\n{}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answer_read(client: socket.socket) -> bytes:
    """One whole answer on a keep-alive connection (it has a Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head.split(b"\r\n", 1)[0]


def calls_ms(port: int, calls: int) -> list[float]:
    """Milliseconds from request written to last byte, for `calls` calls on one connection."""
    took = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        for _ in range(calls):
            started = time.perf_counter()
            client.sendall(REQUEST)
            assert answer_read(client) == b"HTTP/1.1 400 Bad Request"
            took.append((time.perf_counter() - started) * 1000)
    return took


def production_command() -> list[str]:
    """The web service's server arguments in docker-compose.yml (after `scripts/serve.sh`)."""
    import yaml

    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"][
        "command"
    ]
    script = shlex.split(command)[-1]  # sh -c "migrate && exec sh scripts/serve.sh …"
    argv = shlex.split(script.split("exec ", 1)[1])
    assert argv[:2] == ["sh", "scripts/serve.sh"], argv
    return argv[2:]


def with_option(argv: list[str], name: str, value: str) -> list[str]:
    if name in argv:
        argv = list(argv)
        argv[argv.index(name) + 1] = value
        return argv
    return [*argv, name, value]


@pytest.mark.parametrize("loop", LOOPS)
def test_connections_of_a_supervisor_bound_socket_turn_nagle_off(loop):
    from solaris.asgi import application

    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=free_port(),
        http=PROTOCOL,
        loop=loop,
        lifespan="off",
        log_level="warning",
    )
    # The socket as `uvicorn --workers N` binds it in the supervisor: protocol number 0.
    listener = config.bind_socket()
    assert listener.proto == 0
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", config.port), timeout=10) as client:
            client.sendall(REQUEST)
            answer_read(client)
            (connection,) = server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@NEEDS_UVLOOP
def test_the_standard_loop_adds_no_wait_to_a_call_compared_with_uvloop(tmp_path):
    medians = {}
    for loop in ("asyncio", "uvloop"):
        port = free_port()
        argv = with_option(production_command(), "--host", "127.0.0.1")
        argv = with_option(with_option(argv, "--port", str(port)), "--loop", loop)
        with open(tmp_path / f"{loop}.log", "wb") as log:
            server = subprocess.Popen(
                ["sh", "scripts/serve.sh", *argv],
                cwd=ROOT,
                env={**os.environ, "PYTHON": sys.executable},
                stdout=log,
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, (tmp_path / f"{loop}.log").read_text()
                try:
                    calls_ms(port, 1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "uvicorn did not start"
                    time.sleep(0.2)
            # After its first few segments a Linux receiver delays its ACKs: 40 calls pass that.
            medians[loop] = statistics.median(calls_ms(port, 40))
        finally:
            server.terminate()
            server.wait(20)
    # Nagle's wait for the delayed ACK is ≥ 40 ms a call; noise on a busy machine is a few.
    assert medians["asyncio"] < medians["uvloop"] + 5, medians


def test_the_server_script_uses_the_protocol():
    (command,) = [
        line
        for line in (ROOT / "scripts/serve.sh").read_text().splitlines()
        if "-m uvicorn" in line
    ]
    assert f"--http {PROTOCOL}" in command, command


@pytest.mark.parametrize("path", ["docker-compose.yml", "README.md", "scripts/dev.sh"])
def test_every_documented_server_command_goes_through_the_script(path):
    text = (ROOT / path).read_text().replace("\\\n", " ")
    assert "scripts/serve.sh --host" in text, f"{path} does not serve with scripts/serve.sh"
    assert "uvicorn solaris.asgi" not in text, f"{path} runs uvicorn by hand"
