"""Benchmark: anchoring credentials on chain (DESIGN §6).

Prints ``name: value unit`` lines:

- ``merkle_root_and_receipts_100k``: ``build()`` plus every receipt for 100,000 leaves,
  median of 5 (goal ≤ 1,000 ms);
- ``anchor_gas_{evm,anvil}_{1,1000,100000}``: gas used by the one ``anchor(root)``
  transaction of a batch of that many leaves, on the in-process EVM and on an anvil
  node started here on a free 127.0.0.1 port (goal ≤ 50,000, whatever the size);
- ``issue_to_anchored_{p50,p95,max}``: seconds from a credential's issuance (its leaf
  committed to the queue) to the moment its receipt is stored, for 200 credentials
  issued over about 2 s, a Batcher with ``max_age=2.0`` stepping every 50 ms on that
  anvil node (goal ≤ batch interval + 2 s);
- ``qr_embedded_juminhyo_4_claims_batch_{1,1024,100000}_version``: the QR version (level
  M) of an embedded-mode presentation of a 12-claim 住民票 disclosing four claims, with
  the anchor evidence of a batch of that size (goal ≤ 25), and its length in
  characters; ``…_kb_…`` adds a key-binding JWT.

Run: ``.venv/bin/python bench/anchor.py`` (anvil from ``npm ci``).
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as `python bench/anchor.py`, Python puts bench/ first on sys.path, where a bench
# script named after a package (bench/credentials.py) would stand in for it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import requests  # noqa: E402
from hexbytes import HexBytes  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from anchor import evidence, merkle  # noqa: E402
from anchor._web3chain import Node, Web3Chain  # noqa: E402
from anchor.accounts import ChainAccount  # noqa: E402
from anchor.backends import EvmChain, EvmNode, RpcChain, RpcNode  # noqa: E402
from anchor.batcher import Batcher, BatchPolicy, enqueue  # noqa: E402
from anchor.registry import deploy_registry, register_issuer  # noqa: E402
from anchor.store import ANCHORED, Batch, Leaf, create_schema, make_engine  # noqa: E402
from credentials import doctypes, qr, sdjwt  # noqa: E402
from credentials.keys import SigningKey  # noqa: E402

ROOT = _HERE.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_CHAIN_ID = 31337
ISS = "https://city.iizuka.example"
MERKLE_SIZE = 100_000
MERKLE_RUNS = 5
GAS_SIZES = (1, 1_000, 100_000)
LATENCY_COUNT = 200
LATENCY_SPREAD = 2.0  # seconds over which the credentials are issued
BATCH_INTERVAL = 2.0  # the policy's max_age
STEP_EVERY = 0.05
QR_SIZES = (1, 1_024, 100_000)
QR_CLAIMS = ("family_name", "given_name", "birthdate", "address")
QR_BATCH_ID = 8_760  # a year of hourly batches: a two-byte varint


def report(name: str, value: float, unit: str) -> None:
    text = f"{value:.3f}" if unit in ("s", "ms") else f"{value:.0f}"
    print(f"{name}: {text} {unit}", flush=True)


def fake_leaves(n: int, tag: str) -> list[bytes]:
    """``n`` distinct leaf hashes, as if of ``n`` issued JWTs."""
    return [
        merkle.leaf_from_digest(hashlib.sha256(f"{tag} {i}".encode()).digest()) for i in range(n)
    ]


# --------------------------------------------------------------------------- (a) Merkle


def bench_merkle() -> None:
    """Root and every receipt of a 100,000-leaf batch, median of MERKLE_RUNS."""
    leaves = fake_leaves(MERKLE_SIZE, "merkle")
    times = []
    for _ in range(MERKLE_RUNS):
        gc.collect()
        start = time.perf_counter()
        receipts = merkle.build(leaves).receipts(batch_id=1)
        times.append(time.perf_counter() - start)
        del receipts  # freeing them is not part of making them
    report("merkle_root_and_receipts_100k", 1000 * statistics.median(times), "ms")


# --------------------------------------------------------------------------- nodes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_anvil() -> Iterator[str]:
    """An anvil node on a free 127.0.0.1 port, started here and stopped by its PID.

    Yields its URL. Raises SystemExit when anvil is not installed or does not answer."""
    if not ANVIL.exists():
        raise SystemExit(f"{ANVIL} is missing: run `npm ci` at the repository root")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the npm wrapper and anvil in a group of their own
    )
    try:
        wait_ready(url, proc)
        yield url
    finally:
        stop(proc)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"anvil exited with {proc.returncode}")
        try:
            if requests.post(url, json=body, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit(f"anvil did not answer on {url}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process started above (the wrapper forwards SIGTERM to anvil)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group created for it
            proc.wait(timeout=5)


def issuer_chain(node: Node, make: Callable[[str, ChainAccount], Web3Chain]) -> Web3Chain:
    """A new registry on ``node`` with dev account 1 registered; its chain signs as it."""
    governance, issuer = ChainAccount.dev(0), ChainAccount.dev(1)
    gov = make(deploy_registry(node, governance), governance)
    register_issuer(gov, issuer.address, issuer_id=ISS, name="飯塚市", municipality_code="402052")
    return gov.using(issuer)


# --------------------------------------------------------------------------- (b) gas


def bench_gas(label: str, chain: Web3Chain) -> None:
    """Gas of the anchor transaction for each batch size: only the root goes on chain."""
    for size in GAS_SIZES:
        root = merkle.build(fake_leaves(size, f"gas {label}")).root
        tx = chain.anchor(root)
        used = chain.node.w3.eth.get_transaction_receipt(HexBytes(tx.tx_hash))["gasUsed"]
        report(f"anchor_gas_{label}_{size}", used, "gas")


# --------------------------------------------------------------------------- (c) latency


def juminhyo_claims() -> dict[str, object]:
    claims = doctypes.validate_claims("juminhyo", doctypes.sample("juminhyo"))
    assert len(claims) == 12, len(claims)
    return claims


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < p ≤ 100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


def run_worker(batcher: Batcher, done: threading.Event, stored_at: dict[int, float]) -> None:
    """Step every STEP_EVERY seconds; note when each batch's receipts were stored."""
    while True:
        outcome = batcher.step()
        if outcome == "anchored":
            now = time.time()
            with Session(batcher.engine) as s:
                for batch_id in s.scalars(select(Batch.id).where(Batch.state == ANCHORED)):
                    stored_at.setdefault(batch_id, now)
        elif outcome == "idle" and done.is_set():
            return
        time.sleep(STEP_EVERY)


def issue_paced(engine: Engine, key: SigningKey, done: threading.Event) -> dict[bytes, float]:
    """Issue LATENCY_COUNT credentials evenly over LATENCY_SPREAD seconds, queueing each
    leaf in its own transaction. Returns {leaf: time it was committed}."""
    claims, vct = juminhyo_claims(), doctypes.get("juminhyo").vct_for(ISS)
    issued_at: dict[bytes, float] = {}
    start = time.time()
    for i in range(LATENCY_COUNT):
        time.sleep(max(0.0, start + i * LATENCY_SPREAD / LATENCY_COUNT - time.time()))
        now = int(time.time())
        cred = sdjwt.issue(claims, key=key, issuer=ISS, vct=vct, iat=now, exp=now + 86400)
        leaf = merkle.leaf_hash(cred.jwt)
        with Session(engine) as s:
            enqueue(s, leaf, now=time.time())
            s.commit()
        issued_at[leaf] = time.time()
    done.set()
    return issued_at


def bench_latency(chain: Web3Chain, workdir: Path) -> None:
    """Issue → anchored on a real node, the worker in a thread as in production."""
    engine = make_engine(f"sqlite:///{workdir / 'latency.db'}")
    create_schema(engine)
    assert chain.account is not None
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=chain.account.address,
        policy=BatchPolicy(max_age=BATCH_INTERVAL),
    )
    done, stored_at = threading.Event(), dict[int, float]()
    with ThreadPoolExecutor(max_workers=1) as pool:
        worker = pool.submit(run_worker, batcher, done, stored_at)
        issued_at = issue_paced(engine, SigningKey.generate(), done)
        worker.result(timeout=60)
    with Session(engine) as s:
        batch_of = {r.leaf: r.batch_id for r in s.execute(select(Leaf.leaf, Leaf.batch_id))}
    latencies = [stored_at[batch_of[leaf]] - t for leaf, t in issued_at.items()]
    report("issue_to_anchored_p50", percentile(latencies, 50), "s")
    report("issue_to_anchored_p95", percentile(latencies, 95), "s")
    report("issue_to_anchored_max", max(latencies), "s")
    report("issue_to_anchored_batches", len(stored_at), "batches")


# --------------------------------------------------------------------------- (d) QR


def anchored_evidence(leaf: bytes, size: int) -> bytes:
    """The evidence for ``leaf`` in a batch of ``size``, at the index with the longest
    audit path (index 0: ⌈log2 size⌉ siblings)."""
    batch = merkle.build([leaf, *fake_leaves(size - 1, f"qr {size}")])
    receipt = batch.receipt(QR_BATCH_ID, 0)
    merkle.verify_inclusion(leaf, receipt, batch.root)
    return evidence.encode_receipt(receipt)  # kind byte + Receipt.to_bytes()


def bench_qr() -> None:
    """QR version of the four-claim 住民票 presentation with anchor evidence."""
    key, holder = SigningKey.generate(), SigningKey.generate()
    now = int(time.time())
    doctype = doctypes.get("juminhyo")
    cred = sdjwt.issue(
        juminhyo_claims(),
        key=key,
        issuer=ISS,
        vct=doctype.vct_for(ISS),
        iat=now,
        exp=now + 90 * 86400,
        always_plain=doctype.never_disclosable,
        holder_jwk=holder.jwk,
    )
    plain = sdjwt.present(cred.sd_jwt, disclose=QR_CLAIMS)
    bound = sdjwt.present(
        cred.sd_jwt, disclose=QR_CLAIMS, holder_key=holder, nonce="n-8Zq", aud=ISS, iat=now
    )
    leaf = merkle.leaf_hash(cred.jwt)
    for size in QR_SIZES:
        proof = anchored_evidence(leaf, size)
        for label, presentation in (("", plain), ("kb_", bound)):
            text = qr.encode_embedded(presentation, proof)
            decoded = qr.decode_embedded(text)
            assert decoded.presentation == presentation and decoded.evidence == proof
            name = f"qr_embedded_juminhyo_4_claims_{label}batch_{size}"
            report(f"{name}_version", qr.qr_version(text), "version")
            report(f"{name}_chars", len(text), "chars")


# --------------------------------------------------------------------------- main


def main() -> None:
    bench_merkle()
    evm = EvmNode()
    bench_gas(
        "evm",
        issuer_chain(evm, lambda addr, acct: EvmChain(evm, registry_address=addr, account=acct)),
    )
    with local_anvil() as url, tempfile.TemporaryDirectory() as tmp:
        node = RpcNode([url], ANVIL_CHAIN_ID)
        chain = issuer_chain(node, lambda addr, acct: RpcChain([url], ANVIL_CHAIN_ID, addr, acct))
        bench_gas("anvil", chain)
        bench_latency(chain, Path(tmp))
        chain.close()
        node.close()
    bench_qr()


if __name__ == "__main__":
    main()
