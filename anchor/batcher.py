"""The anchoring worker: pending leaves -> Merkle batch -> one transaction -> receipts.

Crash-safe: every step writes what it is about to do, then does it; any step repeats
without harm.
1. close: claim the oldest pending leaves for a new batch and store its root and its
   ordered leaf list (one database transaction; a crash leaves either no batch or a
   whole one);
2. send: check that the batch's leaves still rebuild its root, sign ``anchor(root)``
   with a nonce and fees, *store* the signed transaction, then broadcast it (a restart
   rebroadcasts the stored bytes: harmless);
3. poll: ask the chain whether the root is anchored (by any of our transactions: a
   replacement or the original); if not, rebroadcast, replace a stuck transaction with
   higher fees, or sign again if the nonce was consumed elsewhere;
4. finalize: once the anchor's block is final (K confirmations, or the network's
   ``finalized`` block), store the block, time and every leaf's receipt. A reorg before
   that only sends the batch back to polling: its stored transaction is broadcast again.

Exactly one process drives the batches of a database: each step first holds the
:class:`~anchor.lease.Lease`, and every write of a step is fenced by it (the lease epoch
is checked in the very transaction that writes, and stored with the batch). Leaves are
claimed only ``WHERE batch_id IS NULL`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
the count is checked, so no leaf can ever be in two batches.

The registry refuses a root it has seen: no root is anchored twice. While one batch
waits in the pool, new leaves gather for the next (one transaction a block); only under
a backlog do up to ``max_unmined`` full batches wait at once. A batch that can never be
anchored is abandoned (its leaves requeued), a root on chain whose leaves were lost is
repaired from the chain (:mod:`anchor.repair`): neither blocks the batches behind it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session

from credentials.errors import AnchorError

from . import merkle, queue
from .chain import AnchorRecord, Chain, ChainRejected, ChainUnavailable, SignedTx
from .lease import Lease, LeaseInfo, NotLeader, current
from .nonces import choose_nonce
from .policy import BatchPolicy
from .queue import AnchorEvidence, enqueue, find_evidence
from .repair import check_recent, repair_from_chain
from .store import (
    ABANDONED,
    ANCHORED,
    CLOSED,
    MINED,
    SENT,
    UNMINED,
    Batch,
    Leaf,
)

__all__ = [
    "BUSY",
    "AnchorEvidence",
    "BatchPolicy",
    "Batcher",
    "CrashHook",
    "ExtraLeaves",
    "enqueue",  # the queue's (anchor.queue), here too for the callers of old
    "find_evidence",
]

log = logging.getLogger(__name__)

#: Called with the name of each crash point; tests make it kill the process there.
CrashHook = Callable[[str], None]
#: Called while a batch is being closed, in its transaction: leaves to add to it (for
#: example the head of an audit log), already domain-separated from credential leaves.
ExtraLeaves = Callable[[Session, float], list[bytes]]
#: What a step did. "busy" outcomes mean more can be done right away.
BUSY = frozenset(
    {"sent", "mined", "anchored", "retry", "abandoned", "repaired", "attention", "reorged"}
)


class Batcher:
    """Drives batches through close -> send -> poll -> finalize, one step at a time,
    while this process holds the anchoring lease."""

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
        lease: Lease | None = None,
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.address = issuer_address
        self.policy = policy or BatchPolicy()
        self.clock = clock
        self.lease = lease or Lease(engine)
        self._crash = crash_hook or (lambda _point: None)
        self._extra_leaves = extra_leaves
        self._broadcast_at: dict[int, float] = {}
        self._polled_at: dict[int, float] = {}
        self._checked_epoch: int | None = None

    # ------------------------------------------------------------------ driving
    def step(self) -> str:
        """Advance the state machine once. Returns what happened: ``follower`` (another
        process leads), ``idle``, ``waiting``, ``backoff``, ``sent``, ``polled``,
        ``confirming``, ``anchored``, ``abandoned``, ``repaired`` or ``retry``."""
        now = self.clock()
        if not self.lease.acquire(now):
            return "follower"
        try:
            if self._checked_epoch != self.lease.epoch:
                # A new leader first checks what the last one left (a race of an earlier
                # release, a batch anchored then lost by a node): cheap, and only once.
                if check_recent(self, now):
                    self._checked_epoch = self.lease.epoch
            return self._step(now)
        except NotLeader:
            log.warning("anchoring: another process took over; following it")
            return "follower"

    def _step(self, now: float) -> str:
        confirmed = self._confirm_oldest(now)
        if confirmed in BUSY:
            return confirmed
        with Session(self.engine) as s:
            unmined = [
                (b.id, b.state, b.next_try_at)
                for b in s.scalars(select(Batch).where(Batch.state.in_(UNMINED)).order_by(Batch.id))
            ]
        ready = [(i, state) for i, state, next_try in unmined if next_try <= now]
        if unmined and not ready:
            return "backoff"  # the chain refused or did not answer: no new batch either
        outcome: str | None = None
        if ready:
            # A closed batch is sent first; else the sent one looked at least recently.
            closed = [i for i, state in ready if state == CLOSED]
            target = (
                closed[0]
                if closed
                else min((i for i, _ in ready), key=lambda i: self._polled_at.get(i, float("-inf")))
            )
            self._polled_at[target] = now
            outcome = self._advance_or_retry(target, now)
            if outcome in BUSY:
                return outcome
        if len(unmined) < self.policy.max_unmined and not any(
            state == CLOSED for _, state, _ in unmined
        ):
            # Room in the pipeline: with a batch already in the pool, only a full one
            # goes out without waiting for a block (a backlog); smaller ones gather until
            # the block, so a quiet day still costs one transaction a block at most.
            new = self._close(now, full_only=bool(unmined))
            if new is not None:
                return self._advance_or_retry(new, now)
        if outcome is not None:
            return outcome
        if confirmed is not None:
            return confirmed
        return "waiting" if self.pending_count() else "idle"

    def _advance_or_retry(self, batch_id: int, now: float) -> str:
        try:
            return self._advance(batch_id, now)
        except (ChainUnavailable, ChainRejected) as e:
            self._record_failure(batch_id, e, now)
            return "retry"

    def _confirm_oldest(self, now: float) -> str | None:
        """Look at the oldest mined batch: final now, still confirming, or reorged out.
        Returns None when no batch waits to become final."""
        with Session(self.engine) as s:
            batch = s.scalars(
                select(Batch).where(Batch.state == MINED).order_by(Batch.id).limit(1)
            ).first()
            if batch is None:
                return None
            if batch.next_try_at > now:
                return "confirming"
            try:
                rec = self.chain.read_anchor(self.address, batch.root)
                if rec is None and self.chain.block_number() < (batch.block or 0):
                    return "confirming"  # an endpoint behind the one that saw it mined
                if rec is None:
                    # A reorg took its block away: back to polling, which broadcasts the
                    # stored transaction again (and replaces it if it gets stuck).
                    self.lease.fence(s, now)
                    batch.state, batch.sent_at, batch.block = SENT, now, None
                    s.commit()
                    self._broadcast_at.pop(batch.id, None)
                    log.warning("batch %s: its block was reorganised away; resending", batch.id)
                    return "reorged"
                return self._finalize(s, batch, rec, now)
            except (ChainUnavailable, ChainRejected) as e:
                s.rollback()
                self._record_failure(batch.id, e, now)
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
        """Close a batch now, whatever its age (used by ``shomei anchor``), when this
        process leads and no batch is in flight."""
        now = self.clock()
        if not self.lease.acquire(now):
            return
        with Session(self.engine) as s:
            if s.scalar(select(Batch.id).where(Batch.state.in_(UNMINED)).limit(1)):
                return
        try:
            self._close(now, force=True)
        except NotLeader:
            return

    # ------------------------------------------------------------------ steps
    def _close(self, now: float, *, force: bool = False, full_only: bool = False) -> int | None:
        p = self.policy
        # Read only first, so an idle step writes nothing (not even the lease).
        if not queue.due(self.engine, p, now, force=force, full_only=full_only):
            return None
        with Session(self.engine) as s:
            epoch = self.lease.fence(s, now)  # first: from here this transaction is ours
            query = (
                select(Leaf.id, Leaf.leaf, Leaf.queued_at)
                .where(Leaf.batch_id.is_(None))
                .order_by(Leaf.id)
                .limit(p.max_leaves)
            )
            if s.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = s.execute(query).all()
            if not rows or (
                not force
                and len(rows) < p.max_leaves
                and (full_only or now - rows[0].queued_at < p.max_age)
            ):
                s.commit()  # the renewed lease
                return None
            extra = self._extra_leaves(s, now) if self._extra_leaves else []
            rows = rows[: max(1, p.max_leaves - len(extra))]  # the rest wait for the next batch
            leaves = [r.leaf for r in rows] + extra
            padding: list[bytes] = []
            if len(leaves) == 1:
                # A tree of one has the credential's own leaf as its root: a per-person
                # hash on chain. A random second leaf makes the root say nothing.
                padding.append(os.urandom(merkle.HASH_SIZE))
            tree = merkle.build(leaves + padding)
            if s.scalar(select(Batch.id).where(Batch.root == tree.root)) is not None:
                # The same leaves as an abandoned batch: a random leaf makes a new root.
                padding.append(os.urandom(merkle.HASH_SIZE))
                tree = merkle.build(leaves + padding)
            batch = Batch(
                root=tree.root,
                size=tree.size,
                state=CLOSED,
                closed_at=now,
                attempts=0,
                epoch=epoch,
                leaf_list=b"".join(tree.leaves),
            )
            s.add(batch)
            s.flush()
            ids = [r.id for r in rows]
            claimed = cast(
                "CursorResult[Any]",
                s.execute(
                    update(Leaf)
                    .where(Leaf.id.in_(ids), Leaf.batch_id.is_(None))
                    .values(batch_id=batch.id)
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount
            if claimed != len(ids):  # cannot happen under the fence; never half-claim
                s.rollback()
                raise NotLeader(
                    "記録待ちの葉が他のバッチに取られました",
                    f"{len(ids) - claimed} leaves were claimed by another batch",
                )
            s.execute(update(Leaf), [{"id": i, "leaf_index": n} for n, i in enumerate(ids)])
            for i, leaf in enumerate(extra + padding, start=len(rows)):
                s.add(Leaf(leaf=leaf, queued_at=now, batch_id=batch.id, leaf_index=i))
            s.commit()
            batch_id = batch.id
        self._crash("after_close")
        return batch_id

    def _advance(self, batch_id: int, now: float) -> str:
        with Session(self.engine) as s:
            batch = s.get_one(Batch, batch_id)
            if batch.state == CLOSED:
                return self._send(s, batch, now)
            anchored = self.chain.read_anchor(self.address, batch.root)
            if anchored is not None:
                return self._finalize(s, batch, anchored, now)
            return self._nudge(s, batch, now)

    def members(self, s: Session, batch: Batch) -> list[bytes]:
        """The leaves assigned to ``batch``, in their order."""
        return list(
            s.scalars(select(Leaf.leaf).where(Leaf.batch_id == batch.id).order_by(Leaf.leaf_index))
        )

    def _send(self, s: Session, batch: Batch, now: float, *, replace: bool = False) -> str:
        members = self.members(s, batch)
        if not members or merkle.build(members).root != batch.root:
            return self.abandon(s, batch, now, "its leaves no longer rebuild its root")
        nonce, floor = choose_nonce(s, self.chain, self.address, batch, replace=replace)
        max_fee, tip = self.chain.suggest_fees()
        if floor is not None:
            # A replacement: the node accepts it only at clearly higher fees.
            max_fee = max(max_fee, int(floor[0] * self.policy.fee_bump) + 1)
            tip = max(tip, int(floor[1] * self.policy.fee_bump) + 1)
        try:
            tx = self.chain.sign_anchor(
                batch.root, nonce=nonce, max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip
            )
        except ChainRejected as e:
            # Already on chain (an earlier transaction of ours, seen late by a lagging
            # endpoint): finalize it rather than sign again.
            rec = self.chain.read_anchor(self.address, batch.root)
            if e.reason != "AlreadyAnchored" or rec is None:
                raise
            return self._finalize(s, batch, rec, now)
        self._crash("before_record")
        epoch = self.lease.fence(s, now)
        batch.state, batch.nonce, batch.tx_hash, batch.raw_tx = SENT, nonce, tx.tx_hash, tx.raw
        batch.max_fee_per_gas, batch.max_priority_fee_per_gas = max_fee, tip
        batch.sent_at, batch.epoch = now, epoch
        s.commit()
        self._crash("before_broadcast")
        self.chain.broadcast(tx)
        self._broadcast_at[batch.id] = now
        self._crash("after_broadcast")
        log.info("batch %s: sent %s (nonce %s, %s leaves)", batch.id, tx.tx_hash, nonce, batch.size)
        return "sent"

    def _nudge(self, s: Session, batch: Batch, now: float) -> str:
        """The root is not anchored (or no longer, after a reorg): find out why, act."""
        assert batch.tx_hash is not None and batch.nonce is not None
        receipt = self.chain.receipt(batch.tx_hash)
        if receipt is not None and not receipt.success:
            # Reverted and not anchored (read_anchor said so): sign again, fresh nonce.
            log.warning("batch %s: transaction %s reverted; signing again", batch.id, batch.tx_hash)
            return self._send(s, batch, now)
        if receipt is not None:
            return "polled"  # mined after read_anchor looked: the next poll finalizes it
        try:
            if now - (batch.sent_at or now) > self.policy.replace_after:
                log.warning("batch %s: %s stuck; replacing it", batch.id, batch.tx_hash)
                return self._send(s, batch, now, replace=True)
            if batch.raw_tx is None:
                return self._send(s, batch, now)
            if now - self._broadcast_at.get(batch.id, -1e18) >= self.policy.rebroadcast_every:
                # Rebroadcast the stored bytes: covers a crash before the first
                # broadcast, a node that dropped the transaction, and a reorg.
                self.chain.broadcast(
                    SignedTx(
                        raw=batch.raw_tx,
                        tx_hash=batch.tx_hash,
                        nonce=batch.nonce,
                        max_fee_per_gas=batch.max_fee_per_gas or 0,
                        max_priority_fee_per_gas=batch.max_priority_fee_per_gas or 0,
                    )
                )
                self._broadcast_at[batch.id] = now
        except ChainRejected as e:
            # Only the node can tell "our nonce was consumed by another transaction"
            # from "ours is still pending": the pending nonce count is the same for both.
            if e.reason != "NonceUsed":
                raise
            if self.chain.read_anchor(self.address, batch.root) is None:
                return self._send(s, batch, now)
        return "polled"

    def is_final(self, block: int) -> bool:
        """Whether a block is deep enough that its anchor can be handed out."""
        if self.policy.finalized:
            return self.chain.finalized_block() >= block
        k = self.policy.confirmations
        return not k or self.chain.block_number() - block + 1 >= k

    def _finalize(self, s: Session, batch: Batch, rec: AnchorRecord, now: float) -> str:
        if not self.is_final(rec.block):
            if batch.state == MINED and batch.block == rec.block:
                return "confirming"
            # Mined: wait for it to become final beside the next batches' sends.
            self.lease.fence(s, now)
            batch.state, batch.block, batch.block_time = MINED, rec.block, rec.timestamp
            batch.tx_hash = rec.tx or batch.tx_hash
            s.commit()
            return "mined"
        leaves = s.execute(
            select(Leaf.id, Leaf.leaf).where(Leaf.batch_id == batch.id).order_by(Leaf.leaf_index)
        ).all()
        tree = merkle.build([r.leaf for r in leaves]) if leaves else None
        if tree is None or tree.root != batch.root:
            return repair_from_chain(self, s, batch, rec, now)
        self._crash("before_finalize")
        self.lease.fence(s, now)
        s.execute(
            update(Leaf),
            [
                {"id": r.id, "receipt": rc.to_bytes()}
                for r, rc in zip(leaves, tree.receipts(batch.id), strict=True)
            ],
        )
        self.mark_anchored(batch, rec, now)
        s.commit()
        self._broadcast_at.pop(batch.id, None)
        self._crash("after_finalize")
        log.info("batch %s anchored in block %s", batch.id, rec.block)
        return "anchored"

    @staticmethod
    def mark_anchored(batch: Batch, rec: AnchorRecord, now: float) -> None:
        batch.state, batch.block, batch.block_time = ANCHORED, rec.block, rec.timestamp
        batch.tx_hash = rec.tx or batch.tx_hash
        batch.anchored_at, batch.last_error, batch.raw_tx = now, None, None

    def abandon(self, s: Session, batch: Batch, now: float, why: str) -> str:
        """Give ``batch`` up (it can never be anchored): its leaves go back to the queue.
        Its transaction, if one may still be waiting, is replaced by the next batch's."""
        self.lease.fence(s, now)
        s.execute(
            update(Leaf)
            .where(Leaf.batch_id == batch.id)
            .values(batch_id=None, leaf_index=None, receipt=None)
            .execution_options(synchronize_session=False)
        )
        batch.state, batch.last_error = ABANDONED, f"abandoned: {why}"
        s.commit()
        log.warning("batch %s abandoned (%s); its leaves go into the next batch", batch.id, why)
        return "abandoned"

    def _record_failure(self, batch_id: int, err: AnchorError, now: float) -> None:
        with Session(self.engine) as s:
            try:
                self.lease.fence(s, now)
            except NotLeader:
                return
            batch = s.get_one(Batch, batch_id)
            batch.attempts += 1
            delay = min(
                self.policy.backoff_max, self.policy.backoff_base * 2 ** (batch.attempts - 1)
            )
            batch.next_try_at = now + delay
            batch.last_error = str(err)
            s.commit()
        log.warning("batch %s: %s; retrying in %.0f s", batch_id, err.en, delay)

    def release(self) -> None:
        """Stop leading (a clean shutdown): a follower takes over at its next look."""
        self.lease.release()

    # ------------------------------------------------------------------ reading

    # ------------------------------------------------------------------ reading
    def pending_count(self) -> int:
        return queue.pending_count(self.engine)

    def leader(self) -> LeaseInfo | None:
        with Session(self.engine) as s:
            return current(s, self.lease.name)

    def status(self) -> dict[str, Any]:
        """Counts and the oldest unanchored leaf, for operators ("pending since …")."""
        return queue.status(self.engine)

    def describe(self) -> str:
        return queue.describe(self.engine)

    def evidence(self, leaf: bytes) -> AnchorEvidence | None:
        """The anchor evidence for a credential's leaf, or None while not anchored."""
        with Session(self.engine) as s:
            return find_evidence(s, leaf)
