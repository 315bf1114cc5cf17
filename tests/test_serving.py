"""``shomei issuer|verifier|wallet serve`` as an operator runs them: gunicorn on a free
port of 127.0.0.1, a request, then SIGTERM (or Ctrl-C's SIGINT): requests in flight
are answered, the process exits 0 and leaves no worker or anchoring process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SHOMEI = Path(sys.executable).with_name("shomei")
PASSPHRASE = "serving 証明"
#: A node nobody listens on: the anchoring worker runs and retries, never anchors.
DEAD_RPC = "http://127.0.0.1:9"

pytestmark = [
    pytest.mark.slow,  # real servers: a few seconds each
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [str(SHOMEI), *args, "--host", "127.0.0.1", "--port", str(port)],
                stdout=output,  # the access log, when asked for
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                env=dict(os.environ, PYTHONWARNINGS="error", **(env or {})),
            )
        server = Server(process, port, log)
        started.append(server)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, server.output()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server
            except OSError:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.1)

    yield start
    for server in started:
        if server.process.poll() is None:
            for pid in descendants(server.process.pid):
                os.kill(pid, signal.SIGKILL)
            server.process.kill()
            server.process.wait()


def issuer_data(tmp_path: Path) -> dict[str, str]:
    """An initialised issuer with a chain configured (a dead node): its environment."""
    data = tmp_path / "data"
    env = dict(
        os.environ,
        SHOMEI_DATA_DIR=str(data),
        SHOMEI_KEY_PASSPHRASE=PASSPHRASE,
        SHOMEI_ANCHOR_ACCOUNT="dev:1",
    )
    city = ["--issuer-id", "https://city.example.jp", "--name", "飯塚市"]
    init = subprocess.run(
        [str(SHOMEI), "issuer", "init", *city, "--municipality-code", "402052"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    chain = {
        "rpc_urls": [DEAD_RPC],
        "chain_id": 31337,
        "registry_address": "0x5FbDB2315678afecb367f032d315d1a0fa180aa3",
    }
    (data / "chain.json").write_text(json.dumps(chain))
    return {
        k: env[k] for k in ("SHOMEI_DATA_DIR", "SHOMEI_KEY_PASSPHRASE", "SHOMEI_ANCHOR_ACCOUNT")
    }


def lease(database: Path) -> tuple[str, float] | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT holder, expires_at FROM anchor_lease").fetchone()
    return None if row is None else (str(row[0]), float(row[1]))


def test_issuer_serve_anchors_beside_gunicorn_and_stops_with_it(
    tmp_path: Path, serve: object
) -> None:
    env = issuer_data(tmp_path)
    server = serve("issuer", "serve", "--workers", "2", env=env)  # type: ignore[operator]
    assert server.get("/.well-known/jwt-vc-issuer") == 200
    assert server.get("/auth/login") == 200
    database = tmp_path / "data" / "shomei.db"
    deadline = time.monotonic() + 30
    while (held := lease(database)) is None or held[1] == 0:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    anchoring = int(held[0].rpartition(":")[2])
    master = server.process.pid
    while len(below := descendants(master)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # gunicorn forks its workers one after another
    assert anchoring != master, "the anchoring worker is not in the server's process"
    assert anchoring in below and len(below) == 3, "two web workers and the anchoring one"
    for name in ("shomei.db", "shomei.db-wal", "shomei.db-shm"):
        if (tmp_path / "data" / name).exists():
            assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0, name

    assert server.stop(signal.SIGTERM) == 0, server.output()

    assert not [pid for pid in below if running(pid)], "no worker is left behind"
    assert lease(database) == (held[0], 0.0), "the anchoring worker stopped cleanly"
    assert "Traceback" not in server.output()


def test_issuer_serve_restarts_a_dead_anchoring_process(tmp_path: Path, serve: object) -> None:
    env = issuer_data(tmp_path)
    server = serve("issuer", "serve", "--workers", "1", env=env)  # type: ignore[operator]
    database = tmp_path / "data" / "shomei.db"
    deadline = time.monotonic() + 30
    while (held := lease(database)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    first = int(held[0].rpartition(":")[2])
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (held := lease(database)) is None or held[0].endswith(f":{first}"):
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    assert int(held[0].rpartition(":")[2]) in descendants(server.process.pid)
    assert server.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_verifier_serve_answers_the_request_in_flight_then_exits(
    tmp_path: Path, serve: object, sig: signal.Signals
) -> None:
    server = serve("verifier", "serve", env={"SHOMEI_DATA_DIR": str(tmp_path)})  # type: ignore[operator]
    assert server.get("/") == 200
    deadline = time.monotonic() + 20  # the first worker may answer before the second forks
    while len(workers := descendants(server.process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2, "two processes, sharing cross-device requests (requests.db)"
    body = json.dumps({"presentation": "not a credential"}).encode()
    head = (
        b"POST /api/verify HTTP/1.1\r\nHost: verifier\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as client:
        client.sendall(head + body[:5])  # the app is now waiting for the rest
        time.sleep(0.5)
        server.process.send_signal(sig)
        time.sleep(1.0)
        client.sendall(body[5:])
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b'"code"' in answer
    assert server.process.wait(timeout=30) == 0, server.output()
    assert not [pid for pid in workers if running(pid)]


def test_a_stalled_client_is_dropped_after_the_timeout(tmp_path: Path, serve: object) -> None:
    server = serve("wallet", "serve", "--timeout", "2")  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: wal")  # and nothing more
        started = time.monotonic()
        assert client.recv(1024) == b""
        assert time.monotonic() - started < 10
    body = b'{"text": "x"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as client:
        client.sendall(
            b"POST /api/scan HTTP/1.1\r\nHost: wallet\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:3]
        )
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert server.get("/") == 200, "the server still answers the others"
    assert server.stop() == 0
    assert "Traceback" not in server.output()


def test_the_access_log_is_off_and_never_holds_a_token(serve: object) -> None:
    quiet = serve("wallet", "serve")  # type: ignore[operator]
    logged = serve("wallet", "serve", "--access-log")  # type: ignore[operator]
    for server in (quiet, logged):
        assert server.get("/?credential_offer=SECRET-OFFER") == 200
        assert server.get("/contract-sign/SECRET-TOKEN/document.pdf") == 404
        assert server.stop() == 0
    assert "GET" not in quiet.output()
    lines = [line for line in logged.output().splitlines() if '"GET ' in line]
    assert len(lines) == 2
    assert '"GET /" 200' in lines[0] and '"GET /contract-sign/…" 404' in lines[1]
    assert "SECRET" not in logged.output()
