"""Benchmark: the verifier's ``POST /api/verify`` under a steady load (DESIGN §6), and
the same load under attack.

The verifier runs as ``shomei verifier serve`` (gunicorn, its default 2 worker processes
with threads) on a free 127.0.0.1 port, trusting the issuer through a trust file
(``--trust``), rate limiting off. An open-loop client sends a 住民票 presentation (4 of
12 claims disclosed, as a company sees it) at a fixed rate — each request leaves at its
scheduled time, whether or not earlier ones have returned, so a slow server cannot hide
its queueing (no coordinated omission) — and measures each request from its scheduled
start.

With ``--attack``, beside the real presentations: 5 requests/s of the largest uploads the
verifier accepts (a PDF whose one page is the largest PDF page there is, 14,400 pt
square, carrying the QR code, padded to the upload limit; a PNG of the largest accepted
pixel count with the QR code; a contract PDF of 200 pages padded to its 10 MiB limit,
with the credential), and 50 requests/s of garbage (random bytes as a file, as JSON and
as text; deeply nested JSON; a truncated presentation). The verifier's memory (the sum
of the proportional set sizes of its whole process tree, render processes included, so
pages the forked workers share count once) is sampled every 50 ms.

Prints ``name: value unit`` lines:

- ``verifier_http_{rate}rps_{p50,p95,p99,max}``: latency of the real presentations in
  ms (goal p95 ≤ 50 ms at 200 requests/s, also under attack);
- ``verifier_http_{rate}rps_errors``: real presentations answered other than 200 with
  verdict valid, and failed connections (goal 0);
- ``verifier_http_{rate}rps_achieved``: the rate actually sent;
- with ``--attack``: ``…_attack_peak_memory`` (MiB, goal ≤ 500), ``…_attack_5xx`` (garbage
  answered 5xx: goal 0), and the status codes the uploads and the garbage got.

Run: ``.venv/bin/python bench/verifier_http.py [--rate 200] [--seconds 30] [--attack]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
from typing import Any

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
def verifier(folder: Path) -> Iterator[tuple[str, int]]:
    """``shomei verifier serve`` on a free port: its URL and its (master's) pid."""
    port = free_port()
    env = dict(os.environ, SHOMEI_VERIFIER_RATE_LIMIT="0")
    for name in ("SHOMEI_RPC_URLS", "SHOMEI_CHAIN_ID", "SHOMEI_REGISTRY_ADDRESS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [
            *(str(ROOT / ".venv" / "bin" / "shomei"), "verifier", "serve"),
            *("--port", str(port), "--data-dir", str(folder)),
            *("--trust", str(folder / "trust.json")),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
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
            raise SystemExit("the verifier did not start")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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


def _png_with_qr(text: str, pixels: int) -> bytes:
    """A white PNG of about ``pixels`` pixels with the QR code of ``text`` in its middle."""
    from PIL import Image

    from credentials import qr

    code = Image.open(io.BytesIO(qr.render_png(text, scale=6)))
    side = int(pixels**0.5)
    canvas = Image.new("L", (side, side), 255)
    canvas.paste(code.convert("L"), ((side - code.width) // 2, (side - code.height) // 2))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _pdf(pages: int, side_pt: float, target_bytes: int, qr_png: bytes | None) -> bytes:
    """A PDF of ``pages`` square pages (the first with the QR code) padded with a random
    attachment to about ``target_bytes``."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(side_pt, side_pt))
    pdf.set_auto_page_break(False)
    for i in range(pages):
        pdf.add_page()
        if i == 0 and qr_png is not None:
            size = side_pt / 3
            pdf.image(io.BytesIO(qr_png), x=size, y=size, w=size, h=size)
    bare = len(bytes(pdf.output()))
    pad = max(0, target_bytes - bare - 4096)
    pdf.embed_file(bytes=os.urandom(pad), basename="padding.bin", compress=False)
    return bytes(pdf.output())


def attack_bodies(presentation_text: str) -> tuple[list[Body], list[Body]]:
    """The largest accepted uploads and the garbage, as ready-made requests."""
    from credentials import qr
    from verifier import app as verifier_app
    from verifier import documents
    from verifier.config import Limits

    limits = Limits()
    embedded = qr.encode_embedded(presentation_text)
    code = qr.render_png(embedded, scale=8)
    upload = verifier_app.MAX_UPLOAD - 16 * 1024
    big_page = _pdf(1, 14_400.0, upload, code)
    big_image = _png_with_qr(embedded, limits.max_pixels - 1000)
    contract = _pdf(documents.MAX_PAGES, 595.0, documents.MAX_BYTES - 16 * 1024, None)
    uploads: list[Body] = [
        ("pdf", {"files": {"file": ("qr.pdf", big_page, "application/pdf")}}),
        ("png", {"files": {"file": ("qr.png", big_image, "image/png")}}),
        (
            "contract",
            {
                "files": {
                    "file": ("p.txt", presentation_text.encode(), "text/plain"),
                    "document": ("contract.pdf", contract, "application/pdf"),
                }
            },
        ),
    ]
    json_header = {"Content-Type": "application/json"}
    garbage: list[Body] = [
        ("random-file", {"files": {"file": ("x.bin", os.urandom(64 * 1024))}}),
        ("random-json", {"data": os.urandom(8 * 1024), "headers": json_header}),
        ("deep-json", {"data": b"[" * 60_000 + b"]" * 60_000, "headers": json_header}),
        (
            "truncated",
            {
                "data": json.dumps({"presentation": presentation_text[:-40]}).encode(),
                "headers": json_header,
            },
        ),
        (
            "text",
            {"data": json.dumps({"presentation": "x" * 30_000}).encode(), "headers": json_header},
        ),
    ]
    return uploads, garbage


Body = tuple[str, dict[str, Any]]


def attack(url: str, bodies: list[Body], *, rate: float, seconds: float) -> dict[str, int]:
    """Send ``bodies`` in turn at ``rate`` per second; count the answers by kind and status."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def one(kind: str, kwargs: dict[str, Any]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            status = str(session.post(f"{url}/api/verify", timeout=30, **kwargs).status_code)
        except requests.RequestException:
            status = "failed"
        with lock:
            counts[f"{kind} {status}"] = counts.get(f"{kind} {status}", 0) + 1

    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            kind, kwargs = bodies[i % len(bodies)]
            pool.submit(one, kind, kwargs)
    return counts


def _tree_rss(root: int) -> int:
    """The memory (bytes) of ``root`` and every process below it: the sum of their
    proportional set sizes (a page shared by n processes counts 1/n in each)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:  # proportional set sizes: pages the forked workers share count once
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
    return total


class PeakMemory:
    """Samples the process tree's memory every 50 ms while it runs."""

    def __init__(self, root: int) -> None:
        self.root, self.peak = root, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _tree_rss(self.root))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--attack", action="store_true", help="add the attack mix")
    args = parser.parse_args()
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shown = presentation(folder)
        body = json.dumps({"presentation": shown}).encode()
        uploads, garbage = attack_bodies(shown) if args.attack else ([], [])
        with verifier(folder) as (url, pid), PeakMemory(pid) as memory:
            load(url, body, rate=args.rate, seconds=2.0)  # warm-up: imports, caches
            with ThreadPoolExecutor(max_workers=2) as side:
                jobs = [
                    side.submit(attack, url, b, rate=r, seconds=args.seconds)
                    for b, r in ((uploads, 5.0), (garbage, 50.0))
                    if b
                ]
                latencies, errors, sent = load(url, body, rate=args.rate, seconds=args.seconds)
                for job in jobs:
                    for k, v in job.result().items():
                        counts[k] = counts.get(k, 0) + v
    ms = sorted(x * 1000 for x in latencies)
    name = f"verifier_http_{args.rate:.0f}rps" + ("_attack" if args.attack else "")

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * q))]

    print(f"{name}_p50: {statistics.median(ms):.1f} ms")
    print(f"{name}_p95: {pct(0.95):.1f} ms")
    print(f"{name}_p99: {pct(0.99):.1f} ms")
    print(f"{name}_max: {ms[-1]:.1f} ms")
    print(f"{name}_errors: {errors} requests")
    print(f"{name}_achieved: {sent:.0f} /s")
    if args.attack:
        print(f"{name}_peak_memory: {memory.peak / 2**20:.0f} MiB")
        fives = sum(v for k, v in counts.items() if k.split()[1].startswith("5"))
        garbage_kinds = {kind for kind, _ in garbage}
        g5 = sum(
            v
            for k, v in counts.items()
            if k.split()[0] in garbage_kinds and k.split()[1].startswith("5")
        )
        print(f"{name}_5xx: {g5} garbage requests ({fives} of all attack requests, 503 busy)")
        for k in sorted(counts):
            print(f"{name}_answers {k}: {counts[k]} requests")


if __name__ == "__main__":
    main()
