"""Repair of databases damaged by the race of the first release, and of a root lost by
the node; ``shomei anchor status`` and ``shomei anchor repair``.

The damage is built the way the first release made it with two workers on one
database: both read the same pending leaves, both closed a batch (the second one's
``UPDATE … SET batch_id`` by id only took the first one's leaves over), both signed
with the same nonce; the first batch was mined, the second refused. That release then
retried the first batch for ever ("leaves do not match its root") and anchored
nothing after it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.chain import ChainRejected
from anchor.config import ChainConfig
from anchor.registry import register_issuer
from anchor.store import ABANDONED, ANCHORED, CLOSED, SENT, Batch, Leaf, create_schema, make_engine
from shomei_cli import main

T0 = 1_800_000_000.0


def leaves(n: int, tag: str) -> list[bytes]:
    return [merkle.leaf_hash(f"eyJ.{tag}{i}.sig") for i in range(n)]


def queue(engine, items: list[bytes], now: float = T0) -> None:
    with Session(engine) as s:
        for leaf in items:
            enqueue(s, leaf, now=now)
        s.commit()


def first_release_close(engine, rows, extra: bytes, now: float) -> int:
    """The first release's close, from rows read earlier: insert the batch, then
    ``UPDATE anchor_leaves SET batch_id, leaf_index`` by id only."""
    leaves_ = [r.leaf for r in rows] + [extra]
    tree = merkle.build(leaves_)
    with Session(engine) as s:
        batch = Batch(root=tree.root, size=tree.size, state=CLOSED, closed_at=now, attempts=0)
        s.add(batch)
        s.flush()
        s.execute(
            update(Leaf),
            [{"id": r.id, "batch_id": batch.id, "leaf_index": i} for i, r in enumerate(rows)],
        )
        s.add(Leaf(leaf=extra, queued_at=now, batch_id=batch.id, leaf_index=len(rows)))
        s.commit()
        return batch.id


def first_release_send(engine, chain, batch_id: int, nonce: int, now: float) -> None:
    with Session(engine) as s:
        batch = s.get_one(Batch, batch_id)
        max_fee, tip = chain.suggest_fees()
        tx = chain.sign_anchor(
            batch.root, nonce=nonce, max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip
        )
        batch.state, batch.nonce, batch.tx_hash, batch.raw_tx = SENT, nonce, tx.tx_hash, tx.raw
        batch.max_fee_per_gas, batch.max_priority_fee_per_gas, batch.sent_at = max_fee, tip, now
        s.commit()
    try:
        chain.broadcast(tx)
    except ChainRejected as e:
        assert e.reason == "NonceUsed"


def damage(engine, chain) -> list[bytes]:
    """A database as the first release left it after the race; returns every leaf that
    was issued (the credentials' and the two audit-head leaves)."""
    first = leaves(40, "first")
    queue(engine, first)
    with Session(engine) as s:
        rows_a = s.execute(select(Leaf.id, Leaf.leaf).where(Leaf.batch_id.is_(None))).all()
        later = leaves(5, "later")  # issued between the two workers' reads
        for leaf in later:
            enqueue(s, leaf, now=T0)
        s.commit()
        rows_b = s.execute(select(Leaf.id, Leaf.leaf).where(Leaf.batch_id.is_(None))).all()
    head_a, head_b = merkle.leaf_hash("eyJ.head.a"), merkle.leaf_hash("eyJ.head.b")
    a = first_release_close(engine, rows_a, head_a, T0 + 10)
    b = first_release_close(engine, rows_b, head_b, T0 + 10.026)
    nonce = chain.next_nonce(chain.account.address)
    first_release_send(engine, chain, a, nonce, T0 + 10.1)
    first_release_send(engine, chain, b, nonce, T0 + 10.1)  # the same nonce: refused
    after = leaves(30, "after")  # the clerks kept issuing
    queue(engine, after, T0 + 11)
    return first + later + after + [head_a, head_b]


@pytest.fixture
def world(net, people, tmp_path: Path):
    gov = net.deploy(people.governance)
    register_issuer(
        gov, people.city_a.address, issuer_id="https://a.example", name="A市",
        municipality_code="402052",
    )  # fmt: skip
    engine = make_engine(f"sqlite:///{tmp_path / 'shomei.db'}")
    create_schema(engine)
    yield gov.using(people.city_a), engine
    engine.dispose()


def assert_every_leaf_anchored_exactly_once(engine, chain, issued: list[bytes]) -> None:
    address = chain.account.address
    with Session(engine) as s:
        rows = {r.leaf: r for r in s.scalars(select(Leaf))}
        batches = {b.id: b for b in s.scalars(select(Batch))}
    for leaf in issued:
        row = rows[leaf]
        assert row.receipt is not None, "every issued leaf has a receipt"
        batch = batches[row.batch_id]
        assert batch.state == ANCHORED
        receipt = merkle.Receipt.from_bytes(row.receipt)
        merkle.verify_inclusion(leaf, receipt, batch.root)
        on_chain = chain.read_anchor(address, batch.root)
        assert on_chain is not None and on_chain.block == batch.block
    roots = [b.root for b in batches.values() if b.state == ANCHORED]
    assert len(roots) == len(set(roots))


def test_the_race_damage_of_the_first_release_is_repaired_by_the_leader(world) -> None:
    chain, engine = world
    issued = damage(engine, chain)
    with Session(engine) as s:
        first, second = s.scalars(select(Batch).order_by(Batch.id)).all()
        assert chain.read_anchor(chain.account.address, first.root) is not None  # mined
        assert chain.read_anchor(chain.account.address, second.root) is None  # refused
        # The first batch's credential leaves now all point at the second batch.
        assert s.scalar(select(func.count()).where(Leaf.batch_id == first.id)) == 1
    clock = [T0 + 100]
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=chain.account.address,
        clock=lambda: clock[0],
        policy=BatchPolicy(max_age=5, rebroadcast_every=0),
    )
    batcher.run_until_idle(timeout=60, interval=0)
    assert_every_leaf_anchored_exactly_once(engine, chain, issued)
    with Session(engine) as s:
        states = [b.state for b in s.scalars(select(Batch).order_by(Batch.id))]
    assert states[:2] == [ANCHORED, ABANDONED]  # the mined root repaired, the other given up
    assert set(states[2:]) == {ANCHORED}


def test_anchor_status_and_repair_commands_on_a_damaged_database(
    anvil, people, tmp_path: Path
) -> None:
    """The operator's view: status names the damage, repair says what it changed, and
    afterwards an ordinary ``shomei anchor --wait`` anchors the rest."""
    from anchor.backends import RpcChain
    from anchor.registry import deploy_registry

    data = tmp_path / "data"
    registry = deploy_registry(_node(anvil), people.governance)
    ChainConfig(rpc_urls=(anvil.url,), chain_id=anvil.chain_id, registry_address=registry).save(
        data
    )
    gov = RpcChain([anvil.url], anvil.chain_id, registry, people.governance)
    register_issuer(
        gov, people.city_a.address, issuer_id="https://a.example", name="A市",
        municipality_code="402052",
    )  # fmt: skip
    chain = gov.using(people.city_a)
    engine = make_engine(f"sqlite:///{data / 'shomei.db'}")
    create_schema(engine)
    issued = damage(engine, chain)
    # The first release left the mined batch "sent" with its leaves elsewhere.
    env = {k: None for k in os.environ if k.startswith("SHOMEI_")}
    env["SHOMEI_DATA_DIR"] = str(data)
    runner = CliRunner()

    status = runner.invoke(main, ["anchor", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    st = json.loads(status.stdout)
    assert st["leader"] is None and st["pending"] == len(issued)
    assert st["in_flight"]["batch"] == 1

    repaired = runner.invoke(main, ["anchor", "repair", "--dev", "1"], env=env)
    assert repaired.exit_code == 0, repaired.output
    assert "batch 1: receipts rebuilt from the root in block" in repaired.stdout
    assert "batch 2: abandoned, its leaves queued again" in repaired.stdout

    done = runner.invoke(main, ["anchor", "--wait", "--dev", "1"], env=env)
    assert done.exit_code == 0, done.output
    assert "nothing pending" in done.stdout
    assert_every_leaf_anchored_exactly_once(engine, chain, issued)

    again = runner.invoke(main, ["anchor", "repair", "--dev", "1"], env=env)
    assert again.exit_code == 0 and "nothing to repair" in again.stdout
    text = runner.invoke(main, ["anchor", "status"], env=env)
    assert text.exit_code == 0, text.output
    assert "epoch" in text.stdout and "記録待ち / pending: 0" in text.stdout
    assert "要対応 / needs attention: なし / none" in text.stdout
    engine.dispose()
    chain.close()


def _node(anvil):
    from anchor.backends import RpcNode

    return RpcNode([anvil.url], anvil.chain_id)


def test_an_anchored_root_the_node_lost_is_anchored_again(world, net) -> None:
    """A node that lost blocks (a reorg deeper than the confirmations, a restore from
    an old state): the repair anchors the same root again; the receipts stay valid."""
    if net.name != "anvil":
        pytest.skip("only anvil can reorganise its chain")
    chain, engine = world
    items = leaves(9, "lost")
    queue(engine, items)
    clock = [T0 + 60]
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=chain.account.address,
        clock=lambda: clock[0],
    )
    batcher.run_until_idle(timeout=30, interval=0)
    with Session(engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        receipts = {r.leaf: r.receipt for r in s.scalars(select(Leaf))}
    chain.node.w3.manager.request_blocking("anvil_reorg", [1, []])
    assert chain.read_anchor(chain.account.address, batch.root) is None
    from anchor.repair import repair

    assert batcher.lease.acquire(clock[0])
    assert repair(batcher, clock[0]) == [
        f"batch {batch.id}: root no longer on chain, anchoring it again"
    ]
    batcher.run_until_idle(timeout=30, interval=0)
    with Session(engine) as s:
        assert {r.leaf: r.receipt for r in s.scalars(select(Leaf))} == receipts
    assert_every_leaf_anchored_exactly_once(engine, chain, items)


def test_a_closed_batch_whose_root_is_already_on_chain_is_finalized(world) -> None:
    """Its transaction was mined but the record of it was lost (a database restored
    from a backup, an endpoint that lagged): the registry refuses the root a second
    time, and the leader finalizes the batch from the chain instead of retrying."""
    chain, engine = world
    items = leaves(5, "restored")
    queue(engine, items)
    clock = [T0 + 60]
    batcher = Batcher(
        engine=engine,
        chain=chain,
        issuer_address=chain.account.address,
        clock=lambda: clock[0],
        crash_hook=None,
    )
    batcher.flush()
    with Session(engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        assert batch.state == CLOSED
    chain.anchor(batch.root)  # on chain, while the database still says "closed"
    assert batcher.step() == "anchored"
    assert_every_leaf_anchored_exactly_once(engine, chain, items)
