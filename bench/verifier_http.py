"""Benchmark: the verifier's ``POST /api/verify`` under a steady load (DESIGN §6).

The verifier app runs under gunicorn (``verifier.app:create_app()``, 2 worker
processes, threads) on a free 127.0.0.1 port, trusting the issuer through a trust file
(``SHOMEI_TRUST_FILE``), rate limiting off. An open-loop client sends a 住民票
presentation (4 of 12 claims disclosed, as a company sees it) at a fixed rate — each
request leaves at its scheduled time, whether or not earlier ones have returned, so a
slow server cannot hide its queueing (no coordinated omission) — and measures each
request from its scheduled start.

Prints ``name: value unit`` lines:

- ``verifier_http_{rate}rps_{p50,p95,p99,max}``: latency in ms (goal p95 ≤ 50 ms at
  200 requests/s);
- ``verifier_http_{rate}rps_errors``: responses other than 200 with verdict valid,
  and failed connections (goal 0);
- ``verifier_http_{rate}rps_achieved``: the rate actually sent.

Run: ``.venv/bin/python bench/verifier_http.py [--rate 200] [--seconds 30]`` (gunicorn
comes with ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import requests  # noqa: E402

from credentials import doctypes, sdjwt  # noqa: E402
from credentials.keys import SigningKey  # noqa: E402
from credentials.trust import TrustList  # noqa: E402

ROOT = _HERE.parent
ISS = "https://city.iizuka.example"
SHOWN = ["family_name", "given_name", "birthdate", "address"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def presentation(folder: Path) -> str:
    """A 住民票 presentation and, in ``folder``, the trust file that trusts its issuer."""
    key = SigningKey.generate()
    dt = doctypes.get("juminhyo")
    now = int(time.time())
    issued = sdjwt.issue(
        doctypes.validate_claims("juminhyo", doctypes.sample("juminhyo")),
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=now,
        exp=now + 90 * 86400,
        always_plain=dt.never_disclosable,
    )
    trust = TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[key.jwk])
    (folder / "trust.json").write_text(json.dumps(trust, ensure_ascii=False))
    return sdjwt.present(issued.sd_jwt, disclose=SHOWN)


@contextlib.contextmanager
def gunicorn(folder: Path) -> Iterator[str]:
    port = free_port()
    env = dict(
        os.environ,
        SHOMEI_DATA_DIR=str(folder),
        SHOMEI_TRUST_FILE=str(folder / "trust.json"),
        SHOMEI_VERIFIER_RATE_LIMIT="0",
    )
    for name in ("SHOMEI_RPC_URLS", "SHOMEI_CHAIN_ID", "SHOMEI_REGISTRY_ADDRESS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "2", "--threads", "4", "--log-level", "warning"),
            "verifier.app:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/api/openapi.json", timeout=1).ok:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def load(url: str, body: bytes, *, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Latencies (s) from each request's scheduled time, the error count, the rate sent."""
    local = threading.local()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(scheduled: float) -> None:
        nonlocal errors
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            r = session.post(
                f"{url}/api/verify",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            ok = r.status_code == 200 and r.json().get("verdict") == "valid"
        except requests.RequestException:
            ok = False
        took = time.perf_counter() - scheduled
        with lock:
            latencies.append(took)
            errors += not ok

    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, scheduled)
        sent = total / (time.perf_counter() - start)
    return latencies, errors, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = json.dumps({"presentation": presentation(folder)}).encode()
        with gunicorn(folder) as url:
            load(url, body, rate=args.rate, seconds=2.0)  # warm-up: imports, caches
            latencies, errors, sent = load(url, body, rate=args.rate, seconds=args.seconds)
    ms = sorted(x * 1000 for x in latencies)
    name = f"verifier_http_{args.rate:.0f}rps"

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * q))]

    print(f"{name}_p50: {statistics.median(ms):.1f} ms")
    print(f"{name}_p95: {pct(0.95):.1f} ms")
    print(f"{name}_p99: {pct(0.99):.1f} ms")
    print(f"{name}_max: {ms[-1]:.1f} ms")
    print(f"{name}_errors: {errors} requests")
    print(f"{name}_achieved: {sent:.0f} /s")


if __name__ == "__main__":
    main()
