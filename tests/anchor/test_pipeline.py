"""Several batches in the pool at once (consecutive nonces): under a backlog the worker
does not wait a block per batch, and a dropped transaction in the middle, or a node
that lost its whole pool, still ends with every batch anchored exactly once.

On a real anvil with mining switched off, so the test decides when blocks come.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor import merkle
from anchor._web3chain import address_topic, event_topic
from anchor.backends import RpcChain, RpcNode
from anchor.batcher import Batcher, BatchPolicy, enqueue
from anchor.registry import deploy_registry, register_issuer
from anchor.store import ANCHORED, SENT, Batch, Leaf, create_schema, make_engine

T0 = 1_800_000_000.0
M = 16  # leaves a batch


@pytest.fixture
def world(anvil, people, tmp_path: Path):
    node = RpcNode([anvil.url], anvil.chain_id)
    registry = deploy_registry(node, people.governance)
    gov = RpcChain([anvil.url], anvil.chain_id, registry, people.governance)
    register_issuer(
        gov, people.city_b.address, issuer_id="https://pipeline.example", name="B市",
        municipality_code="402052",
    )  # fmt: skip
    engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
    create_schema(engine)
    chain = gov.using(people.city_b)
    start = chain.block_number()
    node.set_automine(False)
    try:
        yield chain, engine, start
    finally:
        node.set_automine(True)
        node.close()
        gov.close()
        engine.dispose()


def batcher(chain, engine, clock) -> Batcher:
    return Batcher(
        engine=engine,
        chain=chain,
        issuer_address=chain.account.address,
        clock=lambda: clock[0],
        policy=BatchPolicy(max_leaves=M, max_age=5, max_unmined=4, rebroadcast_every=1),
    )


def queue(engine, n: int, tag: str) -> list[bytes]:
    items = [merkle.leaf_hash(f"eyJ.{tag}{i}.sig") for i in range(n)]
    with Session(engine) as s:
        for leaf in items:
            enqueue(s, leaf, now=T0)
        s.commit()
    return items


def step_until_quiet(b: Batcher) -> list[str]:
    outcomes = []
    for _ in range(50):
        outcomes.append(b.step())
        if outcomes[-1] not in ("sent", "mined", "anchored", "abandoned", "reorged"):
            break
    return outcomes


def assert_each_root_once(chain, engine, start: int, items: list[bytes]) -> None:
    logs = chain.node.w3.eth.get_logs(
        {
            "address": chain.registry_address,
            "fromBlock": start,
            "toBlock": "latest",
            "topics": [event_topic("Anchored"), address_topic(chain.account.address)],
        }
    )
    roots = [bytes(log["topics"][2]) for log in logs]
    with Session(engine) as s:
        batches = {b.id: b for b in s.scalars(select(Batch))}
        rows = {r.leaf: r for r in s.scalars(select(Leaf))}
    assert sorted(roots) == sorted(b.root for b in batches.values())
    assert len(roots) == len(set(roots))
    for leaf in items:
        batch = batches[rows[leaf].batch_id]
        assert batch.state == ANCHORED
        merkle.verify_inclusion(leaf, merkle.Receipt.from_bytes(rows[leaf].receipt), batch.root)


def test_a_backlog_goes_out_in_one_block(world) -> None:
    chain, engine, start = world
    items = queue(engine, 4 * M + 3, "backlog")
    clock = [T0 + 10]
    b = batcher(chain, engine, clock)
    assert step_until_quiet(b)[:4] == ["sent"] * 4  # four batches before any block
    with Session(engine) as s:
        sent = s.scalars(select(Batch).order_by(Batch.id)).all()
        assert [x.state for x in sent] == [SENT] * 4
        assert [x.nonce for x in sent] == list(range(sent[0].nonce, sent[0].nonce + 4))
    chain.node.mine()
    outcomes = step_until_quiet(b)
    assert outcomes.count("anchored") == 4 and "sent" in outcomes  # then the fifth
    chain.node.mine()
    step_until_quiet(b)
    assert chain.block_number() == start + 2  # two blocks for five batches
    assert_each_root_once(chain, engine, start, items)


def test_a_dropped_transaction_in_the_middle_and_a_lost_pool(world) -> None:
    chain, engine, start = world
    items = queue(engine, 3 * M, "dropped")
    clock = [T0 + 10]
    b = batcher(chain, engine, clock)
    step_until_quiet(b)
    with Session(engine) as s:
        txs = [x.tx_hash for x in s.scalars(select(Batch).order_by(Batch.id))]
    assert len(txs) == 3
    w3 = chain.node.w3
    w3.manager.request_blocking("anvil_dropTransaction", [txs[1]])  # the middle one
    chain.node.mine()
    step_until_quiet(b)  # the first is mined; the third waits for the second's nonce
    for tx in txs[2:]:
        w3.manager.request_blocking("anvil_dropTransaction", [tx])  # and the pool is lost
    for _ in range(4):
        clock[0] += 1
        step_until_quiet(b)  # each stored transaction goes out again, in turn
        chain.node.mine()
    step_until_quiet(b)
    assert_each_root_once(chain, engine, start, items)
