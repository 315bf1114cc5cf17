"""Helpers the anchoring tests share (imported by name: conftest modules are not)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def free_port() -> int:
    """A TCP port nothing listens on right now (also used as a dead RPC endpoint)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_anvil() -> None:
    if ANVIL.exists():
        return
    reason = f"{ANVIL.relative_to(ROOT)} is missing: run `npm ci` at the repository root"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def postgres_base_url() -> str:
    """The PostgreSQL server of the storage tests (.ci/run starts it and sets the URL);
    without it the PostgreSQL cases skip locally and fail in CI."""
    url = os.environ.get("SHOMEI_TEST_POSTGRES_URL")
    if url:
        return url
    reason = "SHOMEI_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL and sets it)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL on a schema of its own, dropped afterwards."""
    import secrets

    from sqlalchemy import create_engine, make_url, text

    base = postgres_base_url()
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(base, pool_pre_ping=True)  # the chaos test restarts the server
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


ANVIL_CHAIN_ID = 31337


class Anvil:
    """A local anvil process on 127.0.0.1, started and stopped by us."""

    chain_id = ANVIL_CHAIN_ID

    def __init__(self, log_path: Path, *extra_args: str) -> None:
        require_anvil()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent", *extra_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: the npm wrapper (node) runs the real binary as a child,
            # and a hard stop must reach both without touching anything else.
            start_new_session=True,
        )
        self._wait_ready(log_path)

    def _wait_ready(self, log_path: Path, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"anvil exited ({self.proc.returncode}): {log_path.read_text()}")
            with contextlib.suppress(requests.RequestException):
                with requests.post(self.url, json=body, timeout=1) as r:
                    if r.ok:
                        return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the wrapper forwards SIGTERM to anvil
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group started above
                self.proc.wait(timeout=5)
        self._log.close()
