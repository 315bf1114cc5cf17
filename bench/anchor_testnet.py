"""Benchmark: issue → final receipt on a Sepolia-like chain (12-second blocks, K blocks).

Starts its own anvil on a free 127.0.0.1 port with ``--block-time`` (12 s by default, as
Sepolia), deploys the registry and registers an issuer (mined at once, then back to
interval mining), and runs a real-clock :class:`Batcher` (``max_age`` 2 s, K
confirmations) in a thread stepping every 0.2 s, as ``shomei issuer serve`` does, while a
producer thread queues leaves at a steady rate (20 a second for 60 s by default), each
in its own transaction as an issuance does. Another thread polls the database every
50 ms for stored receipts. Prints ``name: value unit`` lines:

- ``testnet_issue_to_receipt_{p50,p95,max}``: seconds from a leaf's commit to the queue
  to its receipt being stored (only ever once its anchor has K confirmations);
- ``testnet_batches``, ``testnet_transactions`` (the issuer's transactions mined on
  chain), ``testnet_leaves_per_transaction``, ``testnet_blocks``.

Run: ``.venv/bin/python bench/anchor_testnet.py [--confirmations 3] [--block-time 12]
[--duration 60] [--rate 20]`` (anvil from ``npm ci``); the defaults take about 2 minutes.
The anvil started here is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as `python bench/anchor_testnet.py`, Python puts bench/ first on sys.path, where a
# bench script named after a package (bench/anchor.py) would stand in for it.
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from anchor import merkle  # noqa: E402
from anchor.accounts import ChainAccount  # noqa: E402
from anchor.backends import RpcChain, RpcNode  # noqa: E402
from anchor.batcher import BUSY, Batcher, BatchPolicy, enqueue  # noqa: E402
from anchor.registry import deploy_registry, register_issuer  # noqa: E402
from anchor.store import Leaf, create_schema, make_engine  # noqa: E402

ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 11_155_111  # Sepolia's
ISS = "https://city.iizuka.example"
MAX_AGE = 2.0  # the policy's batch interval
STEP_EVERY = 0.2  # the worker's pause when a step leaves nothing to do at once
POLL_EVERY = 0.05  # how often the database is read for stored receipts


def report(name: str, value: float, unit: str) -> None:
    text = f"{value:.3f}" if unit in ("s", "ms") else f"{value:.0f}"
    if unit not in ("s", "ms") and value != int(value):
        text = f"{value:.1f}"
    print(f"{name}: {text} {unit}", flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < p ≤ 100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


# --------------------------------------------------------------------------- the node


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def testnet_anvil(block_time: int) -> Iterator[str]:
    """An anvil mining a block every ``block_time`` seconds, on a free 127.0.0.1 port,
    started here and stopped by its PID. Yields its URL."""
    if not ANVIL.exists():
        raise SystemExit(f"{ANVIL} is missing: run `npm ci` at the repository root")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--host", "127.0.0.1", "--port", str(port), "--silent"]
    args += ["--chain-id", str(CHAIN_ID), "--block-time", str(block_time)]
    proc = subprocess.Popen(
        [str(ANVIL), *args],
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


def setup_issuer(url: str, block_time: int) -> RpcChain:
    """A new registry with dev account 1 registered, mined at once (automine), then the
    node back to a block every ``block_time`` seconds. Returns the issuer's chain."""
    governance, issuer = ChainAccount.dev(0), ChainAccount.dev(1)
    node = RpcNode([url], CHAIN_ID)
    try:
        node.set_automine(True)
        gov = RpcChain([url], CHAIN_ID, deploy_registry(node, governance), governance)
        register_issuer(
            gov, issuer.address, issuer_id=ISS, name="飯塚市", municipality_code="402052"
        )
        node.w3.manager.request_blocking("evm_setIntervalMining", [block_time])
    finally:
        node.close()
    return gov.using(issuer)


# --------------------------------------------------------------------------- the run


class Run:
    """The worker, the producer and the receipt poller, each in a thread."""

    def __init__(self, engine: Engine, batcher: Batcher, *, rate: float, duration: float):
        self.engine, self.batcher = engine, batcher
        self.rate, self.duration = rate, duration
        self.queued_at: dict[bytes, float] = {}
        self.receipt_at: dict[bytes, float] = {}
        self.produced = threading.Event()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.outcomes: dict[str, int] = {}

    def _guard(self, target: Any) -> Any:
        def run() -> None:
            try:
                target()
            except BaseException as e:  # reported by the main thread
                self.errors.append(e)
                self.stop.set()

        return run

    def work(self) -> None:
        while not self.stop.is_set():
            outcome = self.batcher.step()
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome not in BUSY:
                self.stop.wait(STEP_EVERY)

    def produce(self) -> None:
        start = time.time()
        for i in range(int(self.rate * self.duration)):
            pause = start + i / self.rate - time.time()
            if pause > 0 and self.stop.wait(pause):
                return
            leaf = merkle.leaf_from_digest(hashlib.sha256(f"testnet {i}".encode()).digest())
            with Session(self.engine) as s:
                enqueue(s, leaf, now=time.time())
                s.commit()
            self.queued_at[leaf] = time.time()
        self.produced.set()

    def poll(self) -> None:
        while not self.stop.is_set():
            with Session(self.engine) as s:
                stored = s.scalars(select(Leaf.leaf).where(Leaf.receipt.is_not(None))).all()
            now = time.time()
            for leaf in stored:
                self.receipt_at.setdefault(leaf, now)
            if self.produced.is_set() and not self.missing():
                return
            self.stop.wait(POLL_EVERY)

    def missing(self) -> int:
        """Queued leaves without a stored receipt yet (padding leaves do not count)."""
        return sum(1 for leaf in list(self.queued_at) if leaf not in self.receipt_at)

    def go(self, timeout: float) -> None:
        threads = [
            threading.Thread(target=self._guard(f), name=f.__name__, daemon=True)
            for f in (self.work, self.produce, self.poll)
        ]
        for t in threads:
            t.start()
        poller = threads[2]
        poller.join(timeout=self.duration + timeout)
        self.stop.set()
        for t in threads:
            t.join(timeout=30)
        if self.errors:
            raise self.errors[0]
        if poller.is_alive() or self.missing():
            raise SystemExit(f"not all anchored in time: {self.batcher.describe()}")


def mined_transactions(chain: RpcChain, sender: str, first_block: int) -> tuple[int, int]:
    """(transactions ``sender`` got mined, blocks) from ``first_block`` to the head."""
    w3 = chain.node.w3
    head = int(w3.eth.block_number)
    count = 0
    for n in range(first_block, head + 1):
        block = w3.eth.get_block(n, full_transactions=True)
        count += sum(1 for tx in block["transactions"] if tx["from"] == sender)
    return count, head - first_block + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--confirmations", type=int, default=3, help="K (default 3)")
    parser.add_argument("--block-time", type=int, default=12, help="seconds (default 12)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of issuing")
    parser.add_argument("--rate", type=float, default=20.0, help="leaves a second")
    args = parser.parse_args()

    with testnet_anvil(args.block_time) as url, tempfile.TemporaryDirectory() as tmp:
        chain = setup_issuer(url, args.block_time)
        try:
            assert chain.account is not None
            address = chain.account.address
            engine = make_engine(f"sqlite:///{Path(tmp) / 'anchor.db'}")
            create_schema(engine)
            batcher = Batcher(
                engine=engine,
                chain=chain,
                issuer_address=address,
                policy=BatchPolicy(max_age=MAX_AGE, confirmations=args.confirmations),
            )
            first_block = chain.block_number() + 1
            run = Run(engine, batcher, rate=args.rate, duration=args.duration)
            # Enough for the last batch: its age, a block to get in, K - 1 more, margin.
            run.go(timeout=MAX_AGE + (args.confirmations + 3) * args.block_time + 60)
            txs, blocks = mined_transactions(chain, address, first_block)
            status = batcher.status()
            engine.dispose()
        finally:
            chain.close()

    latencies = [run.receipt_at[leaf] - t for leaf, t in run.queued_at.items()]
    report("testnet_block_time", args.block_time, "s")
    report("testnet_confirmations", args.confirmations, "blocks")
    report("testnet_leaves", len(latencies), "leaves")
    report("testnet_issue_rate", len(latencies) / args.duration, "/s")
    report("testnet_issue_to_receipt_p50", percentile(latencies, 50), "s")
    report("testnet_issue_to_receipt_p95", percentile(latencies, 95), "s")
    report("testnet_issue_to_receipt_max", max(latencies), "s")
    report("testnet_batches", status["anchored_batches"], "batches")
    report("testnet_transactions", txs, "tx")
    report("testnet_leaves_per_transaction", len(latencies) / max(txs, 1), "leaves")
    report("testnet_blocks", blocks, "blocks")


if __name__ == "__main__":
    main()
