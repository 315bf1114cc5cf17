"""Browser fixtures: Debian's chromium driven by Playwright, and ``shomei demo`` serving
the whole system on free ports in a temporary data directory.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (Debian's
package, installed by ``.ci/run``). Without it the browser tests skip locally and
fail in CI (``CI=true``). Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SHOMEI_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOMEI = [sys.executable, "-c", "import shomei_cli; shomei_cli.main()"]


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e .[dev])")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass(frozen=True)
class Demo:
    data_dir: Path
    issuer_url: str
    verifier_url: str
    wallet_url: str
    log: Path


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``shomei demo`` running: local chain, registry, issuer service and its worker."""
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists():
        _missing("node_modules missing: run `npm ci`")
    data = tmp_path_factory.mktemp("demo-data")
    log = data / "demo.log"
    serve_port, verifier_port, wallet_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SHOMEI_DATA_DIR=str(data))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(*SHOMEI, "demo", "--port", str(free_port())),
                *("--serve-port", str(serve_port), "--verifier-port", str(verifier_port)),
                *("--wallet-port", str(wallet_port)),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{serve_port}"
    try:
        _wait_for(f"{url}/auth/login", proc, log, timeout=180)
        verifier = f"http://127.0.0.1:{verifier_port}"
        _wait_for(f"{verifier}/", proc, log, timeout=30)
        wallet = f"http://127.0.0.1:{wallet_port}"
        _wait_for(f"{wallet}/", proc, log, timeout=30)
        yield Demo(data_dir=data, issuer_url=url, verifier_url=verifier, wallet_url=wallet, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run([*SHOMEI, "chain", "down"], cwd=ROOT, env=env, timeout=60, check=False)


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"shomei demo exited ({proc.returncode}):\n{log.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"shomei demo did not serve {url} within {timeout} s:\n{log.read_text()}")


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """This test's screenshot folder (kept after the run, for people to look at)."""
    folder = SCREENSHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------ helpers of the tests
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(page: Any, demo: Demo, username: str) -> None:
    """Sign ``username`` in to the demo's issuer service in the browser."""
    from shomei_demo import DEMO_PASSWORD

    page.goto(f"{demo.issuer_url}/auth/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def clerk_session(demo: Demo, username: str = "kanri") -> requests.Session:
    """An HTTP session of ``username`` signed in to the demo's issuer service."""
    from shomei_demo import DEMO_PASSWORD

    s = requests.Session()
    token = CSRF.search(s.get(f"{demo.issuer_url}/auth/login").text)
    assert token
    r = s.post(
        f"{demo.issuer_url}/auth/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
    )
    assert r.ok
    return s


def issue_juminhyo(s: requests.Session, demo: Demo) -> str:
    """Issue the sample 住民票 through a signed-in issuer session; its certificate id."""
    from credentials import doctypes

    token = CSRF.search(s.get(f"{demo.issuer_url}/certificates/new/juminhyo").text)
    assert token
    claims = json.dumps(doctypes.sample("juminhyo"), ensure_ascii=False)
    r = s.post(
        f"{demo.issuer_url}/certificates/issue/juminhyo",
        data={"csrf_token": token.group(1), "claims": claims},
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    return str(r.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
