"""One anchoring leader per database: the lease, takeover, and fencing (SQLite and
PostgreSQL). The chaos test (test_chaos.py) does the same with real processes."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.lease import Lease, NotLeader, current
from anchor.registry import register_issuer
from anchor.store import CLOSED, SENT, Batch, Leaf, create_schema, make_engine

T0 = 1_800_000_000.0


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def test_one_leads_the_other_follows_then_takes_over_when_it_expires(engine) -> None:
    a, b = Lease(engine, holder="a", ttl=5), Lease(engine, holder="b", ttl=5)
    assert a.acquire(T0) and a.epoch == 1
    assert not b.acquire(T0 + 1) and b.epoch is None
    assert a.acquire(T0 + 4.9)  # renewed: still ours after the first period
    assert not b.acquire(T0 + 6)
    assert b.acquire(T0 + 10.0) and b.epoch == 2  # a went silent: b takes over
    with Session(engine) as s:
        info = current(s)
        assert info is not None and (info.holder, info.epoch) == ("b", 2)


def test_a_deposed_leader_cannot_write(engine) -> None:
    a, b = Lease(engine, holder="a", ttl=5), Lease(engine, holder="b", ttl=5)
    assert a.acquire(T0)
    assert b.acquire(T0 + 6)  # a paused longer than its lease
    with Session(engine) as s, pytest.raises(NotLeader, match="lease lost"):
        a.fence(s, T0 + 6.5)
    assert a.epoch is None
    assert not a.acquire(T0 + 7)  # and it follows from now on
    with Session(engine) as s:
        assert b.fence(s, T0 + 7) == 2
        s.commit()


def test_release_hands_over_at_once(engine) -> None:
    a, b = Lease(engine, holder="a", ttl=60), Lease(engine, holder="b", ttl=60)
    assert a.acquire(T0)
    a.release()
    assert b.acquire(T0 + 0.1) and b.epoch == 2


def test_every_epoch_has_exactly_one_holder_under_contention(engine) -> None:
    """Eight processes' worth of leases race for a lease that expires all the time."""
    taken: list[tuple[int, str]] = []
    lock = threading.Lock()
    clock = [T0]

    def contend(name: str) -> None:
        lease = Lease(engine, holder=name, ttl=0.001)
        for i in range(40):
            lease.epoch = None  # forget: every call must take, not renew
            if lease.acquire(clock[0] + i):
                with lock:
                    taken.append((lease.epoch or 0, name))

    threads = [threading.Thread(target=contend, args=(f"p{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    epochs = Counter(e for e, _ in taken)
    assert taken and all(n == 1 for n in epochs.values()), epochs.most_common(3)


@pytest.fixture
def world(db_url: str, net, people, tmp_path: Path):
    gov = net.deploy(people.governance)
    register_issuer(
        gov, people.city_a.address, issuer_id="https://a.example", name="A市",
        municipality_code="402052",
    )  # fmt: skip
    engine = make_engine(db_url)
    create_schema(engine)
    with Session(engine) as s:
        for i in range(6):
            enqueue(s, merkle.leaf_hash(f"eyJ.lease{i}.sig"), now=T0)
        s.commit()
    yield gov.using(people.city_a), engine
    engine.dispose()


def test_a_leader_deposed_between_signing_and_recording_sends_nothing(world) -> None:
    """The fence is checked in the transaction that records the send: a leader that
    stalls after signing, while another takes over, neither records nor broadcasts."""
    chain, engine = world
    clock = [T0 + 60]

    def batcher(name: str, hook=None) -> Batcher:
        return Batcher(
            engine=engine,
            chain=chain,
            issuer_address=chain.account.address,
            clock=lambda: clock[0],
            policy=BatchPolicy(max_age=5),
            lease=Lease(engine, holder=name, ttl=5),
            crash_hook=hook,
        )

    def stall(point: str) -> None:
        if point == "before_record":
            clock[0] += 6  # longer than the lease
            assert b.lease.acquire(clock[0]) and b.lease.epoch == 2

    a = batcher("a", stall)
    b = batcher("b")
    start = chain.block_number()
    assert a.step() == "follower"  # closed the batch, signed, then was fenced out
    with Session(engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        assert (batch.state, batch.epoch, batch.tx_hash) == (CLOSED, 1, None)
    assert chain.block_number() == start  # nothing was broadcast
    assert a.step() == "follower"
    assert b.step() == "sent"
    b.run_until_idle(timeout=30, interval=0)
    with Session(engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        assert batch.epoch == 2 and batch.block is not None
        assert batch.state != SENT
        assert s.scalar(select(func.count()).select_from(Leaf).where(Leaf.receipt.is_(None))) == 0
    assert chain.block_number() == start + 1  # one transaction
