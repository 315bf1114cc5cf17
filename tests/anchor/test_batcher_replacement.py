"""The anchoring worker when its transaction is not mined at once: stuck, dropped, reverted.

Mining is switched off (anvil's ``evm_setAutomine``, the in-process EVM's auto-mine) so
a sent transaction waits in the pool until the test mines a block; a fake clock decides
when the worker calls it stuck. Whatever happens, a batch must end anchored exactly once
(one ``Anchored`` event for its root) by exactly one of the issuer's transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anchor import merkle
from anchor._web3chain import Web3Chain, address_topic, event_topic
from anchor.batcher import Batcher, BatchPolicy, CrashHook, enqueue
from anchor.registry import register_issuer
from anchor.store import ANCHORED, SENT, Batch, create_schema, make_engine

REPLACE_AFTER = 30.0
MIN_BUMP = 1.10  # what geth and anvil require of a replacement, on both fee fields


class Clock:
    """A settable clock, in seconds since the epoch."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Crash(BaseException):
    """Stands for the process dying at a crash point."""


@dataclass
class World:
    """A registry with one issuer, its queue database, a fake clock, and the governance."""

    chain: Web3Chain  # signing as the issuer
    gov: Web3Chain
    engine: Engine
    clock: Clock
    start_block: int

    @property
    def address(self) -> str:
        assert self.chain.account is not None
        return self.chain.account.address

    def batcher(self, crash_hook: CrashHook | None = None) -> Batcher:
        """A worker for the issuer that re-prices a transaction after REPLACE_AFTER."""
        return Batcher(
            engine=self.engine,
            chain=self.chain,
            issuer_address=self.address,
            clock=self.clock,
            policy=BatchPolicy(max_age=5, replace_after=REPLACE_AFTER, backoff_max=5),
            crash_hook=crash_hook,
        )

    def mine(self) -> None:
        self.chain.node.mine()


@pytest.fixture
def world(net, people, tmp_path: Path) -> Iterator[World]:
    """A fresh registry and a queue of five leaves; mining is off until the test ends."""
    gov = net.deploy(people.governance)
    register_issuer(
        gov,
        people.city_a.address,
        issuer_id=f"https://{gov.registry_address}.example",
        name="A市",
        municipality_code="402052",
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
    create_schema(engine)
    clock = Clock()
    with Session(engine) as s:
        for i in range(5):
            enqueue(s, merkle.leaf_hash(f"eyJ.stuck{i}.sig"), now=clock.now)
        s.commit()
    clock.now += 10  # older than max_age: the first step closes and sends the batch
    w = World(gov.using(people.city_a), gov, engine, clock, gov.block_number())
    w.chain.node.set_automine(False)
    try:
        yield w
    finally:
        w.chain.node.set_automine(True)
        gov.close()


def the_batch(world: World) -> Batch:
    with Session(world.engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        s.expunge(batch)
        return batch


def anchored_events(world: World, root: bytes) -> list[Any]:
    """Every Anchored event for ``root`` by the issuer since the fixture started."""
    return world.chain.node.w3.eth.get_logs(
        {
            "address": world.chain.registry_address,
            "fromBlock": world.start_block,
            "toBlock": "latest",
            "topics": [event_topic("Anchored"), address_topic(world.address), "0x" + root.hex()],
        }
    )


def mined_from(world: World, sender: str) -> list[dict[str, Any]]:
    """The transactions ``sender`` got mined since the fixture started, with their status."""
    w3 = world.chain.node.w3
    found = []
    for n in range(world.start_block + 1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == sender:
                status = w3.eth.get_transaction_receipt(tx["hash"])["status"]
                found.append({"hash": tx["hash"].to_0x_hex(), "tx": tx, "status": status})
    return found


def assert_anchored_once_by(world: World, tx_hash: str) -> None:
    """The batch is anchored, by ``tx_hash``, with one event and every receipt stored."""
    batch = the_batch(world)
    assert batch.state == ANCHORED
    (event,) = anchored_events(world, batch.root)
    assert event["transactionHash"].to_0x_hex() == tx_hash == batch.tx_hash
    record = world.chain.read_anchor(world.address, batch.root)
    assert record is not None and record.tx == tx_hash and record.block == batch.block
    leaf = merkle.leaf_hash("eyJ.stuck0.sig")
    evidence = world.batcher().evidence(leaf)
    assert evidence is not None
    merkle.verify_inclusion(leaf, evidence.receipt, batch.root)


def send_as_governance(world: World, function: str, *args: Any) -> None:
    """Sign and send a registry call as governance without waiting for it to be mined.

    Its tip is ten times the node's, so a block puts it before the issuer's anchor."""
    account = world.gov.account
    assert account is not None
    w3 = world.gov.node.w3
    max_fee, tip = world.gov.suggest_fees()
    signed = account.local.sign_transaction(
        {
            "type": 2,
            "chainId": world.gov.chain_id,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "to": world.gov.registry_address,
            "data": HexBytes(world.gov.contract.encode_abi(function, list(args))),
            "value": 0,
            "gas": 200_000,
            "maxFeePerGas": max_fee + 10 * tip,
            "maxPriorityFeePerGas": 10 * tip,
        }
    )
    w3.eth.send_raw_transaction(signed.raw_transaction)


def test_stuck_transaction_is_replaced_with_higher_fees(world: World) -> None:
    batcher = world.batcher()
    assert batcher.step() == "sent"
    first = the_batch(world)
    for _ in range(3):  # pending, not stuck yet: the worker waits, it sends nothing new
        world.clock.now += REPLACE_AFTER / 4
        assert batcher.step() == "polled"
        assert the_batch(world).tx_hash == first.tx_hash
    world.clock.now += REPLACE_AFTER
    assert batcher.step() == "sent"  # the replacement
    second = the_batch(world)
    assert second.state == SENT and second.nonce == first.nonce
    assert second.tx_hash != first.tx_hash and second.raw_tx != first.raw_tx
    assert second.max_fee_per_gas >= MIN_BUMP * first.max_fee_per_gas
    assert second.max_priority_fee_per_gas >= MIN_BUMP * first.max_priority_fee_per_gas
    world.mine()
    assert batcher.step() == "anchored"
    (mined,) = mined_from(world, world.address)  # one transaction of the issuer, not two
    assert mined["status"] == 1 and mined["hash"] == second.tx_hash
    assert mined["tx"]["nonce"] == first.nonce  # its hash commits to the bumped fees
    assert_anchored_once_by(world, second.tx_hash)
    assert batcher.step() == "idle"


def test_original_mined_after_its_replacement_was_signed(world: World) -> None:
    """The replacement is stored but the process dies before broadcasting it; the
    original gets mined. The restarted worker must credit the original."""
    assert world.batcher().step() == "sent"
    first = the_batch(world)
    world.clock.now += REPLACE_AFTER + 1

    def crash(point: str) -> None:
        if point == "before_broadcast":
            raise Crash(point)

    with pytest.raises(Crash):
        world.batcher(crash).step()
    assert the_batch(world).tx_hash != first.tx_hash  # the replacement, stored first
    world.mine()
    restarted = world.batcher()
    assert restarted.step() == "anchored"
    (mined,) = mined_from(world, world.address)
    assert mined["hash"] == first.tx_hash
    assert_anchored_once_by(world, first.tx_hash)


def test_dropped_transaction_is_broadcast_again(world: World, net) -> None:
    if net.name != "anvil":
        pytest.skip("only anvil can drop a transaction from its pool")
    batcher = world.batcher()
    assert batcher.step() == "sent"
    sent = the_batch(world)
    w3 = world.chain.node.w3
    w3.manager.request_blocking("anvil_dropTransaction", [sent.tx_hash])
    world.mine()
    assert mined_from(world, world.address) == []  # really gone
    world.clock.now += BatchPolicy().rebroadcast_every
    assert batcher.step() == "polled"  # not stuck yet: the stored bytes go out again
    assert the_batch(world).tx_hash == sent.tx_hash
    world.mine()
    assert batcher.step() == "anchored"
    assert_anchored_once_by(world, sent.tx_hash)


def test_reverted_transaction_is_signed_again(world: World) -> None:
    """Governance deactivates the issuer in the block that mines its anchor: the anchor
    reverts. The worker retries (refused while inactive) and anchors once reactivated."""
    send_as_governance(world, "deactivateIssuer", world.address)
    batcher = world.batcher()
    assert batcher.step() == "sent"  # estimated against the latest block: still active
    reverted = the_batch(world)
    world.mine()
    assert [m["status"] for m in mined_from(world, world.address)] == [0]
    assert batcher.step() == "retry"
    assert "not an active registered issuer" in (the_batch(world).last_error or "")
    send_as_governance(world, "reactivateIssuer", world.address)
    world.mine()
    world.clock.now += 10  # past the backoff
    assert batcher.step() == "sent"  # signed again with the next nonce
    again = the_batch(world)
    assert again.tx_hash != reverted.tx_hash and again.nonce == reverted.nonce + 1
    world.mine()
    assert batcher.step() == "anchored"
    assert [m["status"] for m in mined_from(world, world.address)] == [0, 1]
    assert_anchored_once_by(world, again.tx_hash)
