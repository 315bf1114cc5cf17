"""The anchoring worker under public-testnet conditions, simulated on a real anvil node.

Sepolia is not a dev chain: a mined anchor can be reorganised away, a node can drop a
transaction from its pool, the base fee can jump far above what a transaction offers,
and public RPC endpoints rate-limit, time out and answer garbage. Each test starts its
own anvil (Sepolia's chain id, mining on demand only), so a reorg or a base-fee change
never leaks into another test; a fake clock drives the worker, and blocks are mined
explicitly, so nothing waits for real 12-second blocks.

Whatever happens, every batch must end anchored exactly once on the canonical chain
(one ``Anchored`` event for its root, by one of the issuer's transactions), no receipt
may be written before the anchor's block is final, and every queued leaf must end with
one receipt that leads to its batch's root.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from anchor_testing import Anvil
from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anchor import merkle
from anchor._web3chain import address_topic, event_topic
from anchor.accounts import ChainAccount
from anchor.backends import RpcChain, RpcNode
from anchor.batcher import Batcher, BatchPolicy, enqueue, find_evidence
from anchor.chain import AnchorRecord
from anchor.registry import deploy_registry, register_issuer
from anchor.store import ANCHORED, SENT, Batch, Leaf, create_schema, make_engine

SEPOLIA = 11_155_111
K = 4  # confirmations: deeper than any reorg below
FINALITY_DEPTH = 64  # anvil's `finalized` block is the head minus 64 (two epochs)
MAX_AGE = 5.0
REBROADCAST = 5.0
REPLACE_AFTER = 60.0
MIN_BUMP = 1.10  # what geth and anvil require of a replacement, on both fee fields
CLIENT_TIMEOUT = (0.5, 0.5)  # (connect, read) seconds of the worker's RPC client
HANG = 0.8  # a hanging endpoint answers after this long: past the client's timeout
#: What a step says while the anchor is in a block that is not final yet.
NOT_FINAL = ("mined", "confirming")


class Clock:
    """A settable clock, in seconds since the epoch."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def leaves(n: int, tag: str) -> list[bytes]:
    return [merkle.leaf_hash(f"eyJ.{tag}{i}.sig") for i in range(n)]


@dataclass
class Network:
    """A private anvil with a registry and one issuer, the issuer's queue database, a
    fake clock, and a direct connection to the node (mining, reading the truth)."""

    anvil: Anvil
    node: RpcNode
    chain: RpcChain  # the issuer's, straight to the node
    engine: Engine
    clock: Clock
    account: ChainAccount
    start_block: int
    _opened: list[RpcChain] = field(default_factory=list, init=False)

    @property
    def address(self) -> str:
        return self.account.address

    def rpc(self, method: str, *params: Any) -> Any:
        return self.node.w3.manager.request_blocking(method, list(params))

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def issuer_chain(self, urls: Sequence[str]) -> RpcChain:
        """The issuer's chain over other RPC URLs (closed by the fixture)."""
        chain = RpcChain(
            urls, SEPOLIA, self.chain.registry_address, self.account, timeout=CLIENT_TIMEOUT
        )
        self._opened.append(chain)
        return chain

    def batcher(self, chain: RpcChain | None = None, **policy: Any) -> Batcher:
        settings: dict[str, Any] = {
            "max_age": MAX_AGE,
            "replace_after": REPLACE_AFTER,
            "rebroadcast_every": REBROADCAST,
            "backoff_max": 4.0,
        }
        return Batcher(
            engine=self.engine,
            chain=chain or self.chain,
            issuer_address=self.address,
            clock=self.clock,
            policy=BatchPolicy(**(settings | policy)),
        )

    def queue(self, items: list[bytes]) -> list[bytes]:
        """Queue ``items`` now, then let the clock pass the batch age."""
        with Session(self.engine) as s:
            for leaf in items:
                enqueue(s, leaf, now=self.clock.now)
            s.commit()
        self.clock.now += MAX_AGE + 1
        return items

    def pool_size(self) -> int:
        return int(self.rpc("txpool_status")["pending"], 16)

    def close(self) -> None:
        for chain in self._opened:
            chain.close()
        self.chain.close()
        self.node.close()


@pytest.fixture
def testnet(people, tmp_path: Path) -> Iterator[Network]:
    """A fresh anvil on a free port, a registry with one issuer, mining only on demand."""
    server = Anvil(tmp_path / "anvil.log", "--chain-id", str(SEPOLIA))
    try:
        node = RpcNode([server.url], SEPOLIA)
        gov = RpcChain(
            [server.url],
            SEPOLIA,
            deploy_registry(node, people.governance),
            people.governance,
        )
        register_issuer(
            gov,
            people.city_a.address,
            issuer_id="https://city-a.example",
            name="A市",
            municipality_code="402052",
        )
        gov.close()
        node.set_automine(False)
        engine = make_engine(f"sqlite:///{tmp_path / 'anchor.db'}")
        create_schema(engine)
        net = Network(
            anvil=server,
            node=node,
            chain=RpcChain([server.url], SEPOLIA, gov.registry_address, people.city_a),
            engine=engine,
            clock=Clock(),
            account=people.city_a,
            start_block=int(node.w3.eth.block_number),
        )
        try:
            yield net
        finally:
            net.close()
            engine.dispose()
    finally:
        server.stop()


# --------------------------------------------------------------------------- the truth


def the_batch(net: Network) -> Batch:
    with Session(net.engine) as s:
        (batch,) = s.scalars(select(Batch)).all()
        s.expunge(batch)
        return batch


def anchored_events(net: Network) -> list[Any]:
    """Every Anchored event of the issuer on the canonical chain since the setup."""
    return net.node.w3.eth.get_logs(
        {
            "address": net.chain.registry_address,
            "fromBlock": net.start_block,
            "toBlock": "latest",
            "topics": [event_topic("Anchored"), address_topic(net.address)],
        }
    )


def mined_from(net: Network, sender: str) -> list[dict[str, Any]]:
    """The transactions ``sender`` got mined on the canonical chain since the setup."""
    w3 = net.node.w3
    found = []
    for n in range(net.start_block + 1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == sender:
                status = w3.eth.get_transaction_receipt(tx["hash"])["status"]
                found.append({"hash": tx["hash"].to_0x_hex(), "tx": tx, "status": status})
    return found


def assert_nothing_final(net: Network, items: list[bytes]) -> None:
    """While the anchor is not final: no receipt stored, no evidence handed out."""
    with Session(net.engine) as s:
        assert (
            s.scalar(select(func.count()).select_from(Leaf).where(Leaf.receipt.is_not(None))) == 0
        )
        assert s.scalar(select(func.count()).select_from(Batch).where(Batch.state == ANCHORED)) == 0
        assert all(find_evidence(s, leaf) is None for leaf in items)


def assert_all_anchored_once(net: Network, items: list[bytes]) -> list[Batch]:
    """Every batch anchored, its root exactly once on the canonical chain where the
    batch row says; every leaf (``items`` and any padding) with one receipt that leads
    to its batch's root. Returns the batches."""
    with Session(net.engine) as s:
        batches = list(s.scalars(select(Batch).order_by(Batch.id)))
        rows = s.execute(select(Leaf.leaf, Leaf.receipt, Leaf.batch_id)).all()
        for b in batches:
            s.expunge(b)
        evidence = {leaf: find_evidence(s, leaf) for leaf in items}
    assert batches and all(b.state == ANCHORED for b in batches)
    events = anchored_events(net)
    roots = Counter(bytes(e["topics"][2]) for e in events)
    assert [r for r, n in roots.items() if n > 1] == []  # no root twice
    assert set(roots) == {b.root for b in batches}  # and none but the batches'
    by_root = {bytes(e["topics"][2]): e for e in events}
    w3 = net.node.w3
    for b in batches:
        event = by_root[b.root]
        assert event["blockNumber"] == b.block
        assert event["transactionHash"].to_0x_hex() == b.tx_hash
        assert w3.eth.get_block(b.block)["timestamp"] == b.block_time
        record = net.chain.read_anchor(net.address, b.root)
        assert record is not None and (record.block, record.timestamp) == (b.block, b.block_time)
    assert sorted(set(items) - {r.leaf for r in rows}) == []  # nothing lost
    assert len(rows) == len({r.leaf for r in rows})
    root_of = {b.id: b.root for b in batches}
    for r in rows:
        assert r.receipt is not None and r.batch_id in root_of
        receipt = merkle.Receipt.from_bytes(r.receipt)
        assert receipt.batch_id == r.batch_id
        merkle.verify_inclusion(r.leaf, receipt, root_of[r.batch_id])
    for leaf, ev in evidence.items():
        assert ev is not None and ev.root == root_of[ev.receipt.batch_id]
        merkle.verify_inclusion(leaf, ev.receipt, ev.root)
    return batches


def confirm(net: Network, batcher: Batcher, items: list[bytes], *, blocks: int) -> None:
    """``blocks`` times: the worker waits (no receipt yet), then one more block."""
    for _ in range(blocks):
        assert batcher.step() in NOT_FINAL
        assert_nothing_final(net, items)
        net.mine()


def resend_after_reorg(net: Network, batcher: Batcher, sent: Batch) -> None:
    """The worker notices that its anchor is gone and, once ``rebroadcast_every`` has
    passed, broadcasts the stored transaction again (anvil does not return a reorged
    transaction to its pool: only the worker can)."""
    assert net.pool_size() == 0
    assert batcher.step() in ("polled", "reorged")
    net.clock.now += REBROADCAST
    assert batcher.step() == "polled"
    assert net.pool_size() == 1
    assert the_batch(net).tx_hash == sent.tx_hash  # the same transaction, not a new one


# --------------------------------------------------------------------------- reorgs


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_reorg_removes_the_anchor_before_k_confirmations(testnet: Network, depth: int) -> None:
    net = testnet
    items = net.queue(leaves(6, f"reorg{depth}-"))
    batcher = net.batcher(confirmations=K)
    assert batcher.step() == "sent"
    sent = the_batch(net)
    net.mine()  # the anchor's block...
    mined_at = net.chain.read_anchor(net.address, sent.root)
    assert mined_at is not None and mined_at.tx == sent.tx_hash
    confirm(net, batcher, items, blocks=depth - 1)  # ...and depth - 1 blocks on top
    assert batcher.step() in NOT_FINAL
    assert_nothing_final(net, items)

    net.rpc("anvil_reorg", depth, [])  # a new branch of the same length, without it
    assert net.chain.read_anchor(net.address, sent.root) is None
    assert net.chain.receipt(sent.tx_hash) is None
    resend_after_reorg(net, batcher, sent)
    assert_nothing_final(net, items)
    net.mine()
    again = net.chain.read_anchor(net.address, sent.root)
    assert again is not None and again.block > mined_at.block
    confirm(net, batcher, items, blocks=K - 1)
    assert batcher.step() == "anchored"

    (batch,) = assert_all_anchored_once(net, items)
    assert batch.block == again.block and batch.tx_hash == sent.tx_hash
    (mined,) = mined_from(net, net.address)  # one of the issuer's transactions
    assert mined["hash"] == sent.tx_hash and mined["status"] == 1
    assert batcher.step() == "idle"


def test_reorg_moves_the_anchor_to_a_later_block(testnet: Network) -> None:
    """The new branch includes the anchor again, one block later: confirmations count
    from the canonical block, and the batch records that block."""
    net = testnet
    items = net.queue(leaves(5, "moved"))
    batcher = net.batcher(confirmations=K)
    assert batcher.step() == "sent"
    sent = the_batch(net)
    assert sent.raw_tx is not None
    net.mine()
    first = net.chain.read_anchor(net.address, sent.root)
    assert first is not None
    confirm(net, batcher, items, blocks=1)
    net.rpc("anvil_reorg", 2, [["0x" + sent.raw_tx.hex(), 1]])
    moved = net.chain.read_anchor(net.address, sent.root)
    assert moved is not None and moved.block == first.block + 1
    # Counted from the old block this would be K confirmations now; from the new, K - 1.
    net.mine(K - 2)
    assert net.chain.block_number() - first.block + 1 == K
    assert batcher.step() in NOT_FINAL
    assert_nothing_final(net, items)
    net.mine()
    assert batcher.step() == "anchored"
    (batch,) = assert_all_anchored_once(net, items)
    assert batch.block == moved.block
    assert len(mined_from(net, net.address)) == 1


def test_reorg_while_waiting_for_the_finalized_block(testnet: Network) -> None:
    """With ``finalized=True`` no receipt exists before the anchor's block is at or below
    the network's ``finalized`` block, whatever happened to the branch before."""
    net = testnet
    items = net.queue(leaves(7, "finalized"))
    batcher = net.batcher(finalized=True)
    assert batcher.step() == "sent"
    sent = the_batch(net)
    net.mine(3)  # the anchor and two blocks on top
    assert net.chain.read_anchor(net.address, sent.root) is not None
    assert batcher.step() in NOT_FINAL
    assert_nothing_final(net, items)
    net.rpc("anvil_reorg", 3, [])
    assert net.chain.read_anchor(net.address, sent.root) is None
    resend_after_reorg(net, batcher, sent)
    net.mine()
    anchor = net.chain.read_anchor(net.address, sent.root)
    assert anchor is not None
    net.mine(FINALITY_DEPTH - 1)
    assert net.chain.finalized_block() == anchor.block - 1
    assert batcher.step() in NOT_FINAL
    assert_nothing_final(net, items)
    net.mine()
    assert net.chain.finalized_block() == anchor.block
    assert batcher.step() == "anchored"
    (batch,) = assert_all_anchored_once(net, items)
    assert batch.block == anchor.block
    assert [m["hash"] for m in mined_from(net, net.address)] == [sent.tx_hash]


def batches_of(net: Network) -> list[Batch]:
    with Session(net.engine) as s:
        found = list(s.scalars(select(Batch).order_by(Batch.id)))
        for b in found:
            s.expunge(b)
        return found


def assert_receipts_only_when_final(net: Network, confirmations: int) -> None:
    """Every batch with receipts is anchored where it says on the canonical chain, at
    least ``confirmations`` deep (checked right after a step: nothing was mined since)."""
    head = net.chain.block_number()
    for b in batches_of(net):
        if b.state != ANCHORED:
            continue
        assert b.block is not None and head - b.block + 1 >= confirmations
        record = net.chain.read_anchor(net.address, b.root)
        assert record is not None and record.block == b.block


@pytest.mark.parametrize("lost", ["both", "younger"])
def test_reorg_of_pipelined_batches(testnet: Network, lost: str) -> None:
    """Two batches mined and waiting for finality side by side; a reorg removes both, or
    only the younger while more leaves arrive (the next batch may then take its nonce)."""
    net = testnet
    k = 6
    items = net.queue(leaves(8, f"pipelined-{lost}-"))
    batcher = net.batcher(confirmations=k, max_leaves=4)
    mined: list[AnchorRecord] = []
    for _ in range(10):  # step and mine until both roots are in blocks
        batcher.step()
        net.mine()
        net.clock.now += 1.0
        records = [net.chain.read_anchor(net.address, b.root) for b in batches_of(net)]
        mined = [r for r in records if r is not None]
        if len(mined) == 2:
            break
    assert len(mined) == 2
    assert batcher.step() in NOT_FINAL  # the worker has seen both in their blocks
    first, second = mined
    assert first.block < second.block
    assert_nothing_final(net, items)
    head = net.chain.block_number()
    depth = head - (first.block if lost == "both" else second.block) + 1
    assert depth < k  # shallower than the confirmations: no receipt may be lost to it
    sent = {b.root: b.tx_hash for b in batches_of(net)}

    net.rpc("anvil_reorg", depth, [])
    assert net.chain.read_anchor(net.address, second.root) is None
    assert (net.chain.read_anchor(net.address, first.root) is None) == (lost == "both")
    if lost == "younger":
        items += net.queue(leaves(3, "pipelined-more-"))
    for _ in range(60):
        outcome = batcher.step()
        assert_receipts_only_when_final(net, k)
        if outcome == "idle":
            break
        net.mine()
        net.clock.now += 1.0
    batches = assert_all_anchored_once(net, items)
    assert len(batches) == (2 if lost == "both" else 3)
    mined_txs = mined_from(net, net.address)  # one transaction per batch
    assert len(mined_txs) == len(batches) and all(m["status"] == 1 for m in mined_txs)
    if lost == "both":  # both stored transactions broadcast again: none signed anew
        assert {b.root: b.tx_hash for b in batches} == sent


# --------------------------------------------------------------------------- the pool


@pytest.mark.parametrize("restart", [False, True], ids=["same-worker", "restarted-worker"])
def test_dropped_transaction_is_sent_again_from_the_stored_bytes(
    testnet: Network, restart: bool
) -> None:
    net = testnet
    items = net.queue(leaves(4, f"dropped-{restart}"))
    batcher = net.batcher(confirmations=K)
    assert batcher.step() == "sent"
    sent = the_batch(net)
    net.rpc("anvil_dropTransaction", sent.tx_hash)
    assert net.pool_size() == 0
    net.mine(3)
    assert mined_from(net, net.address) == []  # really gone
    if restart:
        batcher = net.batcher(confirmations=K)  # a new process: it rebroadcasts at once
    else:
        assert batcher.step() == "polled"  # not time to rebroadcast yet
        assert net.pool_size() == 0
        net.clock.now += REBROADCAST
    assert batcher.step() == "polled"
    assert net.pool_size() == 1
    assert bytes(HexBytes(net.rpc("eth_getRawTransactionByHash", sent.tx_hash))) == sent.raw_tx
    assert the_batch(net).tx_hash == sent.tx_hash
    net.mine()
    confirm(net, batcher, items, blocks=K - 1)
    assert batcher.step() == "anchored"
    assert_all_anchored_once(net, items)
    (mined,) = mined_from(net, net.address)
    assert mined["hash"] == sent.tx_hash


def test_base_fee_spike_is_outbid_by_a_replacement(testnet: Network) -> None:
    net = testnet
    items = net.queue(leaves(5, "spike"))
    batcher = net.batcher(confirmations=K)
    assert batcher.step() == "sent"
    first = the_batch(net)
    assert first.max_fee_per_gas and first.max_priority_fee_per_gas
    spike = 10 * first.max_fee_per_gas
    net.rpc("anvil_setNextBlockBaseFeePerGas", hex(spike))
    net.mine()
    assert net.node.w3.eth.get_block("latest")["baseFeePerGas"] == spike
    assert net.chain.receipt(first.tx_hash) is None  # priced out: not mined
    assert mined_from(net, net.address) == []
    assert net.chain.suggest_fees()[0] >= 2 * spike  # the worker's fees see the spike

    net.clock.now += REBROADCAST
    # anvil evicts the priced-out transaction and refuses its bytes (geth would keep it
    # queued): either way the worker waits, and signs nothing new before replace_after.
    assert batcher.step() in ("polled", "retry")
    assert the_batch(net).tx_hash == first.tx_hash
    net.clock.now += REPLACE_AFTER
    assert batcher.step() == "sent"
    second = the_batch(net)
    assert second.state == SENT and second.nonce == first.nonce
    assert second.tx_hash != first.tx_hash
    assert second.max_fee_per_gas is not None and second.max_priority_fee_per_gas is not None
    assert second.max_fee_per_gas >= 2 * spike  # above the new base fee, with headroom
    assert second.max_fee_per_gas >= MIN_BUMP * first.max_fee_per_gas
    assert second.max_priority_fee_per_gas >= MIN_BUMP * first.max_priority_fee_per_gas

    net.mine()
    assert net.chain.receipt(second.tx_hash) is not None
    confirm(net, batcher, items, blocks=K - 1)
    assert batcher.step() == "anchored"
    assert_all_anchored_once(net, items)
    (mined,) = mined_from(net, net.address)  # one of the issuer's transactions, not two
    assert mined["hash"] == second.tx_hash and mined["status"] == 1
    assert mined["tx"]["nonce"] == first.nonce


# --------------------------------------------------------------------------- flaky RPC


class FlakyRpc:
    """An HTTP proxy in front of a node that, for a share of the requests (seeded),
    fails like a public RPC endpoint does: HTTP 429 or a JSON-RPC rate-limit error
    (request not forwarded), or it forwards the request and then hangs past the client's
    timeout or answers garbage (not JSON, or JSON that is not JSON-RPC)."""

    MODES = ("rate_limited", "hang", "not_json", "not_json_rpc")
    WEIGHTS = (3, 1, 3, 3)  # a hang costs the client its whole timeout: keep them rarer

    def __init__(self, upstream: str, *, failure_rate: float, seed: int) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.failure_rate = failure_rate
        self.seen: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            failing = self._rng.random() < self.failure_rate
            mode = self._rng.choices(self.MODES, self.WEIGHTS)[0] if failing else "ok"
            variant = self._rng.randrange(3)
            self.seen[mode] += 1
        if mode == "rate_limited":
            if variant == 0:  # Infura's daily limit: HTTP 200, JSON-RPC error -32005
                request_id = json.loads(body).get("id")
                error = {"code": -32005, "message": "daily request count exceeded"}
                answer = {"jsonrpc": "2.0", "id": request_id, "error": error}
                return _reply(h, 200, json.dumps(answer).encode())
            return _reply(h, 429, b"Too Many Requests", "text/plain")
        status, answer = self._forward(body)  # the node does the work...
        if mode == "hang":
            time.sleep(HANG)  # ...but the client has given up by the time we answer
        elif mode == "not_json":
            status = 200 if variant else 502
            answer = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        elif mode == "not_json_rpc":
            answer = [
                b'{"message": "upstream busy, try again later"}',
                b'{"jsonrpc": "2.0", "id": 1, "error": "rate limited"}',
                b"[]",
            ][variant]
        _reply(h, status, answer)

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def _reply(
    h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json"
) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
    except OSError:  # the client gave up (timeout) and closed the connection
        h.close_connection = True


@pytest.fixture
def proxies(testnet: Network) -> Iterator[list[FlakyRpc]]:
    """Flaky proxies in front of the testnet's node: ``proxies[i]`` seeded with ``i``."""
    made = [FlakyRpc(testnet.anvil.url, failure_rate=0.3, seed=i) for i in range(2)]
    try:
        yield made
    finally:
        for proxy in made:
            proxy.close()


def drive(net: Network, batcher: Batcher, *, steps: int, until_idle: bool = True) -> Counter[str]:
    """Step (until idle, or ``steps`` times), mining a block and letting a second pass
    after every step. Returns how often each outcome happened."""
    outcomes: Counter[str] = Counter()
    for _ in range(steps):
        outcome = batcher.step()
        outcomes[outcome] += 1
        if outcome == "idle" and until_idle:
            return outcomes
        net.mine()
        net.clock.now += 1.0
    if until_idle:
        raise AssertionError(f"not idle after {steps} steps: {outcomes}, {batcher.describe()}")
    return outcomes


@pytest.mark.parametrize("route", ["flaky-then-node", "two-flaky-endpoints"])
def test_flaky_rpc_endpoints_fail_over_and_anchor_once(
    testnet: Network, proxies: list[FlakyRpc], route: str
) -> None:
    net = testnet
    urls = [proxies[0].url, net.anvil.url if route == "flaky-then-node" else proxies[1].url]
    items: list[bytes] = []
    outcomes: Counter[str] = Counter()
    for wave in range(3):
        # A new worker process each time (a deploy): its provider starts at the first
        # URL again, and it takes over the batches the last one left in flight.
        batcher = net.batcher(net.issuer_chain(urls), max_leaves=6, confirmations=2)
        items += net.queue(leaves(12 + wave, f"flaky-{route}-{wave}-"))
        outcomes += drive(net, batcher, steps=5, until_idle=False)
    outcomes += drive(net, batcher, steps=300)
    batches = assert_all_anchored_once(net, items)
    assert len(batches) >= 7
    mined = mined_from(net, net.address)
    assert len(mined) == len(batches) and all(m["status"] == 1 for m in mined)
    seen = proxies[0].seen + proxies[1].seen
    assert seen["ok"] and sum(seen[m] for m in FlakyRpc.MODES)  # it really was flaky
    if route == "two-flaky-endpoints":
        assert all(seen[m] for m in FlakyRpc.MODES)
        assert outcomes["retry"]  # both failed at once at least once: the worker backed off


def test_only_endpoint_down_then_healed(testnet: Network, proxies: list[FlakyRpc]) -> None:
    net = testnet
    (proxy, _) = proxies
    proxy.failure_rate = 1.0
    batcher = net.batcher(net.issuer_chain([proxy.url]), max_leaves=8, confirmations=2)
    items = net.queue(leaves(13, "outage"))
    assert batcher.step() == "retry"
    assert batcher.step() == "backoff"  # not hammering a broken endpoint
    for _ in range(4):
        net.clock.now += 5.0  # past every backoff (backoff_max is 4 s)
        assert batcher.step() == "retry"
        net.mine()
    status = batcher.status()
    assert status["pending"] == len(items)
    assert status["in_flight"]["attempts"] == 5 and status["in_flight"]["state"] == "closed"
    assert status["in_flight"]["last_error"]
    assert_nothing_final(net, items)
    assert anchored_events(net) == [] and mined_from(net, net.address) == []
    assert not proxy.seen["ok"]

    proxy.failure_rate = 0.0  # healed
    net.clock.now += 5.0
    drive(net, batcher, steps=100)
    batches = assert_all_anchored_once(net, items)
    assert len(batches) == 2
    assert len(mined_from(net, net.address)) == 2
