"""The anchoring worker: batches, one transaction each, crash safety, outages.

Runs on the in-process EVM and on a real anvil node (the ``net`` fixture). A "crash"
is an exception thrown from a crash point, after which a brand-new Batcher (as after a
process restart) must finish the job; the anvil test at the end kills a real process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.backends import RpcChain, RpcNode
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.registry import deploy_registry, register_issuer
from anchor.store import ANCHORED, Batch, Leaf, create_schema, make_engine

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Crash(BaseException):
    """Stands for the process dying: nothing after the crash point runs."""


def leaves(n: int, tag: str = "") -> list[bytes]:
    return [merkle.leaf_hash(f"eyJ.{tag}{i}.sig") for i in range(n)]


@pytest.fixture
def setup(net, people, tmp_path: Path):
    gov = net.deploy(people.governance)
    register_issuer(
        gov,
        people.city_a.address,
        issuer_id="https://a.example",
        name="A市",
        municipality_code="402052",
    )
    chain = gov.using(people.city_a)
    engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
    create_schema(engine)
    return chain, engine, people.city_a.address


def queue(engine, items: list[bytes], now: float) -> None:
    with Session(engine) as s:
        for leaf in items:
            enqueue(s, leaf, now=now)
        s.commit()


def assert_all_anchored_once(engine, chain, address: str, expected: list[bytes]) -> None:
    with Session(engine) as s:
        rows = s.execute(select(Leaf.leaf, Leaf.receipt, Leaf.batch_id)).all()
        batches = s.scalars(select(Batch)).all()
    assert sorted(r.leaf for r in rows) == sorted(expected)
    assert all(b.state == ANCHORED for b in batches)
    for b in batches:
        rec = chain.read_anchor(address, b.root)
        assert rec is not None and rec.block == b.block and rec.timestamp == b.block_time
        assert rec.tx == b.tx_hash
    by_batch = {b.id: b for b in batches}
    for r in rows:
        receipt = merkle.Receipt.from_bytes(r.receipt)
        assert receipt.batch_id == r.batch_id
        merkle.verify_inclusion(r.leaf, receipt, by_batch[r.batch_id].root)


def test_one_transaction_per_batch_and_every_receipt(setup) -> None:
    chain, engine, address = setup
    clock = Clock()
    items = leaves(300)
    queue(engine, items, clock.now)
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=address,
        clock=clock,
        policy=BatchPolicy(max_leaves=128, max_age=5),
    )
    start = chain.block_number()
    clock.now += 10
    batcher.run_until_idle(timeout=60, interval=0)
    with Session(engine) as s:
        sizes = sorted(s.scalars(select(Batch.size)))
    assert sizes == [44, 128, 128]
    assert chain.block_number() - start == 3  # one block (one transaction) per batch
    assert_all_anchored_once(engine, chain, address, items)
    ev = batcher.evidence(items[5])
    assert ev is not None and ev.tx and ev.block > start
    merkle.verify_inclusion(items[5], ev.receipt, ev.root)


def test_batch_waits_for_age_or_size(setup) -> None:
    chain, engine, address = setup
    clock = Clock()
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=address,
        clock=clock,
        policy=BatchPolicy(max_leaves=10, max_age=30),
    )
    assert batcher.step() == "idle"
    queue(engine, leaves(3, "age"), clock.now)
    assert batcher.step() == "waiting"
    assert batcher.status()["pending"] == 3 and batcher.status()["pending_since"] == clock.now
    clock.now += 31
    assert batcher.step() == "sent"
    assert batcher.step() == "anchored"
    assert batcher.step() == "idle"
    queue(engine, leaves(10, "size"), clock.now)
    assert batcher.step() == "sent"  # full batch: no need to wait


CRASH_POINTS = [
    "after_close",
    "before_broadcast",
    "after_broadcast",
    "before_finalize",
    "after_finalize",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_any_point_then_restart_anchors_exactly_once(setup, point: str) -> None:
    chain, engine, address = setup
    clock = Clock()
    items = leaves(20, point)
    queue(engine, items, clock.now)
    clock.now += 60

    def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    dying = Batcher(
        engine=engine, chain=chain, issuer_address=address, clock=clock, crash_hook=crash
    )
    with pytest.raises(Crash):
        for _ in range(10):
            dying.step()
    restarted = Batcher(engine=engine, chain=chain, issuer_address=address, clock=clock)
    restarted.run_until_idle(timeout=60, interval=0)
    assert_all_anchored_once(engine, chain, address, items)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 1


def test_rpc_outage_backs_off_and_loses_nothing(anvil, people, dead_url, tmp_path) -> None:
    """A real node that goes away mid-way (dead URL) and comes back."""
    node_chain = RpcChain([anvil.url], anvil.chain_id, _deploy(anvil, people), people.city_a)
    down = RpcChain([dead_url], anvil.chain_id, node_chain.registry_address, people.city_a)
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    create_schema(engine)
    clock = Clock()
    items = leaves(7, "outage")
    queue(engine, items, clock.now)
    clock.now += 60
    batcher = Batcher(engine=engine, chain=down, issuer_address=people.city_a.address, clock=clock)
    assert batcher.step() == "retry"
    st = batcher.status()
    assert st["pending"] == 7 and st["in_flight"]["attempts"] == 1
    assert "pending since" in batcher.describe() and st["in_flight"]["last_error"]
    assert batcher.step() == "backoff"  # not hammering a dead endpoint
    clock.now += 1.5
    assert batcher.step() == "retry"
    assert batcher.status()["in_flight"]["next_try_at"] >= clock.now + 2  # exponential
    batcher.chain = node_chain  # the endpoint is back
    clock.now += 10
    batcher.run_until_idle(timeout=60, interval=0)
    assert_all_anchored_once(engine, node_chain, people.city_a.address, items)


def _deploy(anvil, people) -> str:
    node = RpcNode([anvil.url], anvil.chain_id)
    address = deploy_registry(node, people.governance)
    gov = RpcChain([anvil.url], anvil.chain_id, address, people.governance)
    register_issuer(
        gov,
        people.city_a.address,
        issuer_id=f"https://{address}.example",
        name="A市",
        municipality_code="402052",
    )
    return address


WORKER = textwrap.dedent(
    """
    import os, sys
    from anchor.accounts import ChainAccount
    from anchor.batcher import Batcher
    from anchor.backends import RpcChain
    from anchor.store import make_engine

    url, registry, db, point = sys.argv[1:5]
    account = ChainAccount.dev(1)
    chain = RpcChain([url], 31337, registry, account)

    def crash(at):
        if at == point:
            os.kill(os.getpid(), 9)

    batcher = Batcher(engine=make_engine(db), chain=chain, issuer_address=account.address,
                      crash_hook=crash)
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0.01)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_broadcast", "before_finalize"])
def test_kill_9_real_worker_then_restart(anvil, people, tmp_path, point: str) -> None:
    registry = _deploy(anvil, people)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(db)
    create_schema(engine)
    items = leaves(50, f"kill-{point}")
    queue(engine, items, 0.0)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    died = subprocess.run(
        [sys.executable, str(script), anvil.url, registry, db, point],
        env=env,
        timeout=60,
        capture_output=True,
    )
    assert died.returncode == -9, died.stderr.decode()
    again = subprocess.run(
        [sys.executable, str(script), anvil.url, registry, db, "none"],
        env=env,
        timeout=60,
        capture_output=True,
    )
    assert again.returncode == 0, again.stderr.decode()
    chain = RpcChain([anvil.url], anvil.chain_id, registry, None)
    assert_all_anchored_once(engine, chain, people.city_a.address, items)


def test_leaf_is_32_bytes(setup) -> None:
    _chain, engine, _address = setup
    with Session(engine) as s, pytest.raises(ValueError, match="32 bytes"):
        enqueue(s, hashlib.sha256(b"x").digest()[:31], now=0)


def test_a_lone_credential_never_puts_its_own_leaf_on_chain(setup) -> None:
    chain, engine, address = setup
    clock = Clock()
    (only,) = leaves(1, "lone")
    queue(engine, [only], clock.now)
    clock.now += 60
    Batcher(engine=engine, chain=chain, issuer_address=address, clock=clock).run_until_idle(
        timeout=30, interval=0
    )
    with Session(engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
    assert batch.size == 2 and batch.root != only
    assert chain.read_anchor(address, only) is None
    assert_all_anchored_once(engine, chain, address, [only, *_padding(engine, only)])


def _padding(engine, real: bytes) -> list[bytes]:
    with Session(engine) as s:
        return [leaf for leaf in s.scalars(select(Leaf.leaf)) if leaf != real]
