"""Helpers the anchoring tests share (imported by name: conftest modules are not)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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
