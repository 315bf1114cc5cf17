"""Benchmark: issuing 住民票 over HTTP through the clerk's service (DESIGN §6, issue #4).

The issuer app is served by ``shomei issuer serve --no-anchor`` (gunicorn with its
defaults, as at a counter) in its own process on a free 127.0.0.1 port; four clerks,
each a thread with its own signed-in session, post the issue form (the preview step's
output: the validated claims and the CSRF token) as fast as the server answers, and
follow the redirect to the new certificate's page as a browser does. The POST signs
the SD-JWT VC, draws a random status index, queues the Merkle leaf, seals the
credential and appends the audit entry in one transaction; the page unseals it and
records the view in the audit log. One issuance = both requests.

Prints ``name: value unit`` lines for each database:

- ``issuer_http_{sqlite,postgresql}_issue_rps``: issuances per second;
- ``issuer_http_{sqlite,postgresql}_issue_{p50,p95}``: latency of one issuance (ms).

PostgreSQL runs when ``SHOMEI_BENCH_POSTGRES_URL`` (or ``SHOMEI_TEST_POSTGRES_URL``) is
set, e.g. ``export SHOMEI_TEST_POSTGRES_URL="$(.ci/postgres.sh)"``; each run uses a
schema of its own, dropped afterwards.

Run: ``.venv/bin/python bench/issuer_http.py [--seconds 15]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import requests  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from credentials import doctypes  # noqa: E402

ROOT = _HERE.parent
SHOMEI = [sys.executable, "-c", "import shomei_cli; shomei_cli.main()"]
PASSPHRASE = "bench-passphrase"
PASSWORD = "bench-password-42"
CLERKS = 4
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shomei(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([*SHOMEI, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"shomei {' '.join(args)} failed: {done.stderr}")


@contextlib.contextmanager
def served(database_url: str | None) -> Iterator[str]:
    """An initialised issuer with CLERKS accounts, served on a free port."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            SHOMEI_DATA_DIR=tmp,
            SHOMEI_KEY_PASSPHRASE=PASSPHRASE,
            SHOMEI_USER_PASSWORD=PASSWORD,
        )
        env.pop("SHOMEI_RPC_URLS", None)
        if database_url:
            env["SHOMEI_DATABASE_URL"] = database_url
        shomei(
            env,
            *("issuer", "init", "--issuer-id", "https://bench.example.jp"),
            *("--name", "ベンチ市", "--municipality-code", "402052"),
        )
        for i in range(CLERKS):
            shomei(env, "issuer", "create-user", f"clerk{i}", "--role", "clerk",
                   "--display-name", f"職員 {i}")  # fmt: skip
        port = free_port()
        proc = subprocess.Popen(
            [*SHOMEI, "issuer", "serve", "--no-anchor", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/auth/login", timeout=1).ok:
                        break
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def clerk_session(url: str, username: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    token = CSRF.search(s.get(f"{url}/auth/login").text)
    assert token
    r = s.post(
        f"{url}/auth/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    page = s.get(f"{url}/certificates/new/juminhyo").text
    token = CSRF.search(page)
    assert token
    return s, token.group(1)


def run(url: str, seconds: float) -> tuple[float, list[float]]:
    claims = json.dumps(doctypes.sample("juminhyo"), ensure_ascii=False)
    sessions = [clerk_session(url, f"clerk{i}") for i in range(CLERKS)]
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    stop_at = time.monotonic() + seconds

    def clerk(session: requests.Session, token: str) -> None:
        form = {"csrf_token": token, "claims": claims, "include_household": "1"}
        mine = []
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            r = session.post(f"{url}/certificates/issue/juminhyo", data=form)
            mine.append(time.perf_counter() - t0)
            if r.status_code != 200 or "/certificates/" not in r.url:
                errors.append(f"{r.status_code}: {r.text[:200]}")
                return
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=clerk, args=s) for s in sessions]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - started
    if errors:
        raise SystemExit(f"issuance failed: {errors[0]}")
    return len(latencies) / elapsed, latencies


@contextlib.contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def report(name: str, rps: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"issuer_http_{name}_issue_rps: {rps:.0f} /s", flush=True)
    print(f"issuer_http_{name}_issue_p50: {statistics.median(ms):.1f} ms", flush=True)
    print(f"issuer_http_{name}_issue_p95: {p95:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    seconds = parser.parse_args().seconds
    with served(None) as url:
        report("sqlite", *run(url, seconds))
    base = os.environ.get("SHOMEI_BENCH_POSTGRES_URL") or os.environ.get("SHOMEI_TEST_POSTGRES_URL")
    if not base:
        print("issuer_http_postgresql: skipped (set SHOMEI_TEST_POSTGRES_URL)", flush=True)
        return
    with postgres_schema(base) as pg, served(pg) as url:
        report("postgresql", *run(url, seconds))


if __name__ == "__main__":
    main()
