"""The Batcher's ``extra_leaves`` hook: its leaves join the batch being closed, in the
same transaction, get receipts like any other leaf, and never push a batch past
``max_leaves``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.registry import register_issuer
from anchor.store import ANCHORED, Batch, Leaf, create_schema, make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def leaves(n: int, tag: str = "") -> list[bytes]:
    return [merkle.leaf_hash(f"eyJ.{tag}{i}.sig") for i in range(n)]


@pytest.fixture
def setup(tmp_path: Path):
    gov = EvmChain.fresh()
    city = ChainAccount.dev(1)
    register_issuer(
        gov, city.address, issuer_id="https://a.example", name="A市", municipality_code="402052"
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
    create_schema(engine)
    yield gov.using(city), engine, city.address
    engine.dispose()


class Extra:
    """Hands out one fresh leaf per batch and remembers the session it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Session, float]] = []

    def __call__(self, session: Session, now: float) -> list[bytes]:
        self.calls.append((session, now))
        digest = hashlib.sha256(b"extra\x00%d" % len(self.calls)).digest()
        return [merkle.leaf_from_digest(digest)]


def queue(engine, items: list[bytes], now: float) -> None:
    with Session(engine) as s:
        for leaf in items:
            enqueue(s, leaf, now=now)
        s.commit()


def test_extra_leaf_joins_each_batch_and_gets_a_receipt(setup) -> None:
    chain, engine, address = setup
    clock, extra = Clock(), Extra()
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=address,
        clock=clock,
        policy=BatchPolicy(max_leaves=4, max_age=0),
        extra_leaves=extra,
    )
    assert batcher.step() == "idle" and not extra.calls  # nothing pending: no batch, no call
    items = leaves(5)
    queue(engine, items, clock.now)
    batcher.run_until_idle(timeout=30, interval=0)
    assert [now for _s, now in extra.calls] == [clock.now, clock.now]
    with Session(engine) as s:
        batches = s.scalars(select(Batch).order_by(Batch.id)).all()
        rows = s.execute(select(Leaf.leaf, Leaf.batch_id, Leaf.leaf_index, Leaf.receipt)).all()
    # 5 credentials, 4 per batch, one slot each for the extra leaf: 3 + 1, 2 + 1.
    assert [b.size for b in batches] == [4, 3]
    assert all(b.state == ANCHORED for b in batches)
    roots = {b.id: b.root for b in batches}
    extras = [r for r in rows if r.leaf not in items]
    assert len(extras) == 2 and {r.batch_id for r in extras} == set(roots)
    for r in rows:
        receipt = merkle.Receipt.from_bytes(r.receipt)
        merkle.verify_inclusion(r.leaf, receipt, roots[r.batch_id])
    for b in batches:
        assert chain.read_anchor(address, b.root) is not None


def test_extra_leaf_replaces_the_padding_of_a_batch_of_one(setup) -> None:
    chain, engine, address = setup
    clock, extra = Clock(), Extra()
    batcher = Batcher(
        engine=engine, chain=chain, issuer_address=address, clock=clock, extra_leaves=extra
    )
    queue(engine, leaves(1), clock.now)
    batcher.flush()
    with Session(engine) as s:
        rows = s.execute(select(Leaf.leaf).order_by(Leaf.leaf_index)).scalars().all()
    # The extra leaf is the second leaf: no random padding was needed.
    assert rows == [leaves(1)[0], Extra()(None, 0)[0]]  # type: ignore[arg-type]


def test_a_failing_hook_closes_no_batch(setup) -> None:
    chain, engine, address = setup

    def broken(session: Session, now: float) -> list[bytes]:
        session.add(Leaf(leaf=b"\x01" * 32, queued_at=now))
        raise RuntimeError("hook failed")

    batcher = Batcher(engine=engine, chain=chain, issuer_address=address, extra_leaves=broken)
    queue(engine, leaves(2), 0.0)
    with pytest.raises(RuntimeError, match="hook failed"):
        batcher.flush()
    with Session(engine) as s:
        assert s.scalars(select(Batch)).all() == []
        assert s.scalars(select(Leaf.batch_id)).all() == [None, None]  # nothing half-written
