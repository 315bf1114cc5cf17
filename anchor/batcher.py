"""The anchoring worker: pending leaves -> Merkle batch -> one transaction -> receipts.

Crash-safe by construction: every step first writes what it is about to do, then does
it, and every step can be repeated without harm.

1. close: assign the oldest pending leaves to a new batch and store its root (one
   database transaction; a crash leaves either no batch or a whole one);
2. send: sign ``anchor(root)`` with a nonce and fees, *store* the signed transaction,
   then broadcast it (a restart rebroadcasts the stored bytes: harmless);
3. poll: ask the chain whether the root is anchored (by any of our transactions: a
   replacement or the original); if not, rebroadcast, replace a stuck transaction with
   higher fees, or sign again if the nonce was consumed elsewhere;
4. finalize: with K confirmations, store the block, time and every leaf's receipt.

The registry refuses a root it has seen, so even a second transaction for one batch
cannot anchor it twice. One batch is in flight at a time; new leaves queue meanwhile and
go into the next batch, so the cost stays one transaction per batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from credentials.errors import AnchorError

from . import merkle
from .chain import AnchorRecord, Chain, ChainRejected, ChainUnavailable, SignedTx
from .store import ANCHORED, CLOSED, SENT, Batch, Leaf

log = logging.getLogger(__name__)

#: Called with the name of each crash point; tests make it kill the process there.
CrashHook = Callable[[str], None]
#: Called while a batch is being closed, in its transaction: leaves to add to it (for
#: example the head of an audit log), already domain-separated from credential leaves.
ExtraLeaves = Callable[[Session, float], list[bytes]]


@dataclass(frozen=True, kw_only=True)
class BatchPolicy:
    # M: close a batch at this many leaves... 1,024 keeps a receipt at ten sibling
    # hashes, so a 住民票 with its anchor evidence still fits one QR code (version 25).
    max_leaves: int = 1024
    max_age: float = 10.0  # N: ...or when the oldest pending leaf is this old (seconds)
    confirmations: int = 0  # K: blocks on top of the anchor's block (0 on a dev chain)
    replace_after: float = 120.0  # re-price a transaction not mined after this long
    fee_bump: float = 1.25  # nodes need >= 10 % more to accept a replacement
    backoff_base: float = 1.0
    backoff_max: float = 60.0


@dataclass(frozen=True, kw_only=True)
class AnchorEvidence:
    """What a wallet or verifier needs to check one credential's anchor."""

    receipt: merkle.Receipt
    root: bytes
    block: int
    timestamp: int
    tx: str | None


def enqueue(session: Session, leaf: bytes, *, now: float) -> None:
    """Queue ``leaf`` inside the caller's transaction (commit is the caller's)."""
    if len(leaf) != merkle.HASH_SIZE:
        raise ValueError("a leaf is 32 bytes")
    session.add(Leaf(leaf=leaf, queued_at=now))


class Batcher:
    """Drives batches through close -> send -> poll -> finalize, one step at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        chain: Chain,
        issuer_address: str,
        policy: BatchPolicy | None = None,
        clock: Callable[[], float] = time.time,
        crash_hook: CrashHook | None = None,
        extra_leaves: ExtraLeaves | None = None,
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.address = issuer_address
        self.policy = policy or BatchPolicy()
        self.clock = clock
        self._crash = crash_hook or (lambda _point: None)
        self._extra_leaves = extra_leaves

    # ------------------------------------------------------------------ driving
    def step(self) -> str:
        """Advance the state machine once. Returns what happened: ``idle``, ``waiting``,
        ``backoff``, ``sent``, ``polled``, ``anchored`` or ``retry``."""
        now = self.clock()
        with Session(self.engine) as s:
            batch = s.scalars(
                select(Batch).where(Batch.state.in_((CLOSED, SENT))).order_by(Batch.id).limit(1)
            ).first()
            if batch is not None and batch.next_try_at > now:
                return "backoff"
            batch_id = batch.id if batch else self._close(s, now)
        if batch_id is None:
            return "waiting" if self.pending_count() else "idle"
        try:
            return self._advance(batch_id, now)
        except (ChainUnavailable, ChainRejected) as e:
            self._record_failure(batch_id, e, now)
            return "retry"

    def run_until_idle(self, *, timeout: float = 60.0, interval: float = 0.05) -> None:
        """Step until nothing is pending or in flight (``shomei anchor --wait``).

        Raises :class:`AnchorError` on timeout, saying what is still pending.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.step() == "idle":
                return
            time.sleep(interval)
        raise AnchorError(
            f"時間内に記録が完了しませんでした（{self.describe()}）",
            f"anchoring did not finish in time ({self.describe()})",
        )

    def flush(self) -> None:
        """Close a batch now, whatever its age (used by ``shomei anchor``)."""
        with Session(self.engine) as s:
            self._close(s, self.clock(), force=True)

    # ------------------------------------------------------------------ steps
    def _close(self, s: Session, now: float, *, force: bool = False) -> int | None:
        p = self.policy
        rows = s.execute(
            select(Leaf.id, Leaf.leaf, Leaf.queued_at)
            .where(Leaf.batch_id.is_(None))
            .order_by(Leaf.id)
            .limit(p.max_leaves)
        ).all()
        if not rows:
            return None
        if not force and len(rows) < p.max_leaves and now - rows[0].queued_at < p.max_age:
            return None
        extra = self._extra_leaves(s, now) if self._extra_leaves else []
        rows = rows[: max(1, p.max_leaves - len(extra))]  # the rest wait for the next batch
        leaves = [r.leaf for r in rows] + extra
        padding = None
        if len(leaves) == 1:
            # A tree of one has the credential's own leaf as its root: a per-person hash
            # on chain. A random second leaf makes the root say nothing about anyone.
            padding = Leaf(leaf=os.urandom(merkle.HASH_SIZE), queued_at=now)
            leaves.append(padding.leaf)
        tree = merkle.build(leaves)
        batch = Batch(root=tree.root, size=tree.size, state=CLOSED, closed_at=now, attempts=0)
        s.add(batch)
        s.flush()
        s.execute(
            update(Leaf),
            [{"id": r.id, "batch_id": batch.id, "leaf_index": i} for i, r in enumerate(rows)],
        )
        for i, leaf in enumerate(extra, start=len(rows)):
            s.add(Leaf(leaf=leaf, queued_at=now, batch_id=batch.id, leaf_index=i))
        if padding is not None:
            padding.batch_id, padding.leaf_index = batch.id, 1
            s.add(padding)
        s.commit()
        self._crash("after_close")
        return batch.id

    def _advance(self, batch_id: int, now: float) -> str:
        with Session(self.engine) as s:
            batch = s.get_one(Batch, batch_id)
            if batch.state == CLOSED:
                self._send(s, batch, now)
                return "sent"
            anchored = self.chain.read_anchor(self.address, batch.root)
            if anchored is not None:
                return self._finalize(s, batch, anchored, now)
            self._nudge(s, batch, now)
            return "polled"

    def _send(self, s: Session, batch: Batch, now: float, *, nonce: int | None = None) -> None:
        if nonce is None:
            nonce = self.chain.next_nonce(self.address)
        max_fee, tip = self.chain.suggest_fees()
        if batch.max_fee_per_gas and nonce == batch.nonce:
            # A replacement: the node accepts it only at clearly higher fees.
            max_fee = max(max_fee, int(batch.max_fee_per_gas * self.policy.fee_bump) + 1)
            tip = max(tip, int((batch.max_priority_fee_per_gas or 0) * self.policy.fee_bump) + 1)
        tx = self.chain.sign_anchor(
            batch.root, nonce=nonce, max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip
        )
        batch.state, batch.nonce, batch.tx_hash, batch.raw_tx = SENT, nonce, tx.tx_hash, tx.raw
        batch.max_fee_per_gas, batch.max_priority_fee_per_gas = max_fee, tip
        batch.sent_at = now
        s.commit()
        self._crash("before_broadcast")
        self.chain.broadcast(tx)
        self._crash("after_broadcast")
        log.info("batch %s: sent %s (nonce %s, %s leaves)", batch.id, tx.tx_hash, nonce, batch.size)

    def _nudge(self, s: Session, batch: Batch, now: float) -> None:
        """The root is not anchored yet: find out why and act."""
        assert batch.tx_hash is not None and batch.raw_tx is not None and batch.nonce is not None
        receipt = self.chain.receipt(batch.tx_hash)
        if receipt is not None and not receipt.success:
            # Reverted and not anchored (read_anchor said so): sign again, fresh nonce.
            log.warning("batch %s: transaction %s reverted; signing again", batch.id, batch.tx_hash)
            self._send(s, batch, now)
            return
        if receipt is not None:
            return  # mined after read_anchor looked: the next poll finalizes it
        try:
            if now - (batch.sent_at or now) > self.policy.replace_after:
                log.warning("batch %s: %s stuck; replacing it", batch.id, batch.tx_hash)
                self._send(s, batch, now, nonce=batch.nonce)
                return
            # Rebroadcast the stored bytes: covers a crash before the first broadcast
            # and a node that dropped the transaction.
            self.chain.broadcast(
                SignedTx(
                    raw=batch.raw_tx,
                    tx_hash=batch.tx_hash,
                    nonce=batch.nonce,
                    max_fee_per_gas=batch.max_fee_per_gas or 0,
                    max_priority_fee_per_gas=batch.max_priority_fee_per_gas or 0,
                )
            )
        except ChainRejected as e:
            # Only the node can tell "our nonce was consumed by another transaction"
            # from "ours is still pending": the pending nonce count is the same for both.
            if e.reason != "NonceUsed":
                raise
            if self.chain.read_anchor(self.address, batch.root) is None:
                self._send(s, batch, now)

    def _finalize(self, s: Session, batch: Batch, rec: AnchorRecord, now: float) -> str:
        k = self.policy.confirmations
        if k and self.chain.block_number() - rec.block + 1 < k:
            return "polled"
        leaves = s.execute(
            select(Leaf.id, Leaf.leaf).where(Leaf.batch_id == batch.id).order_by(Leaf.leaf_index)
        ).all()
        tree = merkle.build([r.leaf for r in leaves])
        if tree.root != batch.root:
            raise AnchorError(
                "バッチの内容が記録された値と一致しません",
                f"batch {batch.id} leaves do not match its root",
            )
        self._crash("before_finalize")
        s.execute(
            update(Leaf),
            [
                {"id": r.id, "receipt": rc.to_bytes()}
                for r, rc in zip(leaves, tree.receipts(batch.id), strict=True)
            ],
        )
        batch.state, batch.block, batch.block_time = ANCHORED, rec.block, rec.timestamp
        batch.tx_hash = rec.tx or batch.tx_hash
        batch.anchored_at, batch.last_error, batch.raw_tx = now, None, None
        s.commit()
        self._crash("after_finalize")
        log.info("batch %s anchored in block %s", batch.id, rec.block)
        return "anchored"

    def _record_failure(self, batch_id: int, err: AnchorError, now: float) -> None:
        with Session(self.engine) as s:
            batch = s.get_one(Batch, batch_id)
            batch.attempts += 1
            delay = min(
                self.policy.backoff_max, self.policy.backoff_base * 2 ** (batch.attempts - 1)
            )
            batch.next_try_at = now + delay
            batch.last_error = str(err)
            s.commit()
        log.warning("batch %s: %s; retrying in %.0f s", batch_id, err.en, delay)

    # ------------------------------------------------------------------ reading
    def pending_count(self) -> int:
        with Session(self.engine) as s:
            return (
                s.scalar(select(func.count()).select_from(Leaf).where(Leaf.receipt.is_(None))) or 0
            )

    def status(self) -> dict[str, Any]:
        """Counts and the oldest unanchored leaf, for operators ("pending since …")."""
        with Session(self.engine) as s:
            oldest = s.scalar(select(func.min(Leaf.queued_at)).where(Leaf.receipt.is_(None)))
            inflight = s.scalars(
                select(Batch).where(Batch.state.in_((CLOSED, SENT))).order_by(Batch.id).limit(1)
            ).first()
            return {
                "pending": self.pending_count(),
                "pending_since": oldest,
                "in_flight": None
                if inflight is None
                else {
                    "batch": inflight.id,
                    "state": inflight.state,
                    "size": inflight.size,
                    "tx": inflight.tx_hash,
                    "attempts": inflight.attempts,
                    "last_error": inflight.last_error,
                    "next_try_at": inflight.next_try_at,
                },
                "anchored_batches": s.scalar(
                    select(func.count()).select_from(Batch).where(Batch.state == ANCHORED)
                ),
            }

    def describe(self) -> str:
        st = self.status()
        if not st["pending"]:
            return "all anchored"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st["pending_since"]))
        err = (st["in_flight"] or {}).get("last_error")
        return f"{st['pending']} pending since {since}" + (f"; last error: {err}" if err else "")

    def evidence(self, leaf: bytes) -> AnchorEvidence | None:
        """The anchor evidence for a credential's leaf, or None while not anchored."""
        with Session(self.engine) as s:
            return find_evidence(s, leaf)


def find_evidence(session: Session, leaf: bytes) -> AnchorEvidence | None:
    """The anchor evidence for ``leaf`` once its batch is anchored, else None. Reads the
    anchoring tables only: no chain needed (the issuer's pages and endpoints use it)."""
    row = session.execute(
        select(Leaf.receipt, Batch.root, Batch.block, Batch.block_time, Batch.tx_hash)
        .join(Batch, Leaf.batch_id == Batch.id)
        .where(Leaf.leaf == leaf, Batch.state == ANCHORED)
    ).first()
    if row is None or row.receipt is None or row.block is None or row.block_time is None:
        return None
    return AnchorEvidence(
        receipt=merkle.Receipt.from_bytes(row.receipt),
        root=row.root,
        block=row.block,
        timestamp=row.block_time,
        tx=row.tx_hash,
    )
