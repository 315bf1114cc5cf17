"""Repairs of the anchoring tables, with the chain as the truth.

A root on chain is what a verifier will check, so when the leaves a batch lists no
longer rebuild the root it anchored (a race of an earlier release took some of them
into another batch), the leaf set that does rebuild it is found and every leaf of it
gets its receipt. A batch that can never be anchored is abandoned and its leaves go back
to the queue, so it never blocks the batches behind it. The leader runs these checks
itself (on finalizing a batch, and over the recent batches when it takes over);
``shomei anchor repair`` runs them over every batch on demand and says what changed.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from credentials.errors import AnchorError

from . import merkle
from .chain import AnchorRecord, Chain
from .lease import Lease, NotLeader
from .store import ABANDONED, ANCHORED, ATTENTION, CLOSED, IN_FLIGHT, Batch, Leaf


class Leader(Protocol):
    """What a repair needs of the leader (:class:`anchor.batcher.Batcher`, which imports
    this module: the protocol keeps the import one way)."""

    engine: Engine
    chain: Chain
    address: str
    lease: Lease

    def is_final(self, block: int) -> bool: ...

    def abandon(self, s: Session, batch: Batch, now: float, why: str) -> str: ...

    def mark_anchored(self, batch: Batch, rec: AnchorRecord, now: float) -> None: ...


log = logging.getLogger(__name__)

#: Anchored batches a new leader re-checks against the chain when it takes over.
RECENT = 20


def find_leaf_set(s: Session, batch: Batch) -> list[bytes] | None:
    """The ordered leaves that rebuild ``batch.root``, or None when none is found.

    First the leaf list stored when the batch was closed; for batches of earlier
    releases (no list), the members whose positions are still known, with the other
    positions filled, in queue order, from a run of leaves not in an anchored batch."""
    size = batch.size
    if batch.leaf_list:
        n = merkle.HASH_SIZE
        stored = [batch.leaf_list[i : i + n] for i in range(0, len(batch.leaf_list), n)]
        if len(stored) == size and merkle.build(stored).root == batch.root:
            return stored
    known: dict[int, bytes] = {}
    for index, leaf in s.execute(
        select(Leaf.leaf_index, Leaf.leaf).where(Leaf.batch_id == batch.id)
    ).all():
        if index is not None and 0 <= index < size and index not in known:
            known[index] = leaf
    missing = [i for i in range(size) if i not in known]
    if not missing:
        full = [known[i] for i in range(size)]
        return full if merkle.build(full).root == batch.root else None
    taken = set(known.values())
    candidates = [
        leaf
        for (leaf,) in s.execute(
            select(Leaf.leaf)
            .outerjoin(Batch, Leaf.batch_id == Batch.id)
            .where(
                Leaf.receipt.is_(None),
                (Leaf.batch_id.is_(None)) | (Batch.state != ANCHORED),
            )
            .order_by(Leaf.id)
        ).all()
        if leaf not in taken
    ]
    for start in range(len(candidates) - len(missing) + 1):
        window = iter(candidates[start : start + len(missing)])
        full = [known[i] if i in known else next(window) for i in range(size)]
        if merkle.build(full).root == batch.root:
            return full
    return None


def repair_from_chain(
    batcher: Leader, s: Session, batch: Batch, rec: AnchorRecord, now: float
) -> str:
    """``batch``'s root is on chain (``rec``, final) but its members do not rebuild it:
    give the leaf set that does its receipts. Returns ``repaired``, or ``attention``
    when no leaf set was found (its members then go back to the queue)."""
    found = find_leaf_set(s, batch)
    batcher.lease.fence(s, now)
    if found is None:
        _release(s, batch.id)
        batcher.mark_anchored(batch, rec, now)
        batch.state = ATTENTION
        batch.last_error = (
            f"root anchored in block {rec.block}, but no leaf set found that rebuilds it; "
            "its leaves were queued again"
        )
        s.commit()
        log.error("batch %s: %s", batch.id, batch.last_error)
        return "attention"
    rows = {
        r.leaf: r
        for r in s.scalars(select(Leaf).where(Leaf.leaf.in_(found)))  # leaf is unique
    }
    others = {r.batch_id for r in rows.values()} - {None, batch.id}
    chosen = set(found)
    for r in s.scalars(select(Leaf).where(Leaf.batch_id == batch.id)):
        if r.leaf not in chosen:
            r.batch_id, r.leaf_index, r.receipt = None, None, None
    receipts = merkle.build(found).receipts(batch.id)
    for i, (leaf, receipt) in enumerate(zip(found, receipts, strict=True)):
        row = rows.get(leaf)
        if row is None:  # a padding leaf whose row was lost
            row = Leaf(leaf=leaf, queued_at=now)
            s.add(row)
        row.batch_id, row.leaf_index, row.receipt = batch.id, i, receipt.to_bytes()
    batcher.mark_anchored(batch, rec, now)
    s.flush()
    for other_id in sorted(i for i in others if i is not None):
        other = s.get_one(Batch, other_id)
        if other.state == CLOSED:  # never sent: give it up now, its leaves requeued
            _release(s, other.id)
            other.state, other.last_error = ABANDONED, f"abandoned: leaves went to {batch.id}"
    s.commit()
    log.warning("batch %s repaired from the chain: %s receipts", batch.id, len(found))
    return "repaired"


def _release(s: Session, batch_id: int) -> None:
    s.execute(
        update(Leaf)
        .where(Leaf.batch_id == batch_id)
        .values(batch_id=None, leaf_index=None, receipt=None)
        .execution_options(synchronize_session=False)
    )


def _sound(s: Session, batch: Batch) -> bool:
    """Whether the members rebuild the root and (once anchored) all have receipts."""
    members = s.execute(
        select(Leaf.leaf, Leaf.receipt).where(Leaf.batch_id == batch.id).order_by(Leaf.leaf_index)
    ).all()
    if not members or merkle.build([m.leaf for m in members]).root != batch.root:
        return False
    return batch.state != ANCHORED or all(m.receipt is not None for m in members)


def _check_anchored(batcher: Leader, s: Session, batch: Batch, now: float) -> str | None:
    """Check one anchored batch against its members and the chain; fix what is wrong.
    Returns what changed, or None."""
    sound = _sound(s, batch)
    rec = batcher.chain.read_anchor(batcher.address, batch.root)
    if rec is None and batcher.chain.block_number() < (batch.block or 0):
        return None  # this endpoint has not reached that block yet: nothing to conclude
    if rec is None:
        # Recorded as anchored, not on chain (a node that lost its state, a reorg deeper
        # than the confirmations): anchor the same root again. Its receipts stay valid.
        batcher.lease.fence(s, now)
        batch.state, batch.tx_hash, batch.raw_tx, batch.nonce = CLOSED, None, None, None
        batch.block = batch.block_time = batch.anchored_at = None
        batch.attempts, batch.next_try_at = 0, 0.0
        batch.last_error = "anchored root missing on chain: anchoring it again"
        s.commit()
        return f"batch {batch.id}: root no longer on chain, anchoring it again"
    if sound:
        return None
    outcome = repair_from_chain(batcher, s, batch, rec, now)
    if outcome == "repaired":
        return f"batch {batch.id}: receipts rebuilt from the root in block {rec.block}"
    return f"batch {batch.id}: needs attention (no leaf set rebuilds its root)"


def _check_in_flight(batcher: Leader, s: Session, batch: Batch, now: float) -> str | None:
    rec = batcher.chain.read_anchor(batcher.address, batch.root)
    if rec is not None:
        if _sound(s, batch) or not batcher.is_final(rec.block):
            return None  # the leader finalizes it as usual
        repair_from_chain(batcher, s, batch, rec, now)
        return f"batch {batch.id}: receipts rebuilt from the root in block {rec.block}"
    if _sound(s, batch):
        return None
    consumed = (
        batch.nonce is not None
        and batcher.chain.next_nonce(batcher.address, pending=False) > batch.nonce
    )
    if batch.state == CLOSED or consumed:
        batcher.abandon(s, batch, now, "its leaves no longer rebuild its root")
        return f"batch {batch.id}: abandoned, its leaves queued again"
    return f"batch {batch.id}: damaged, waiting until its transaction can no longer be mined"


def repair(batcher: Leader, now: float, *, recent: int | None = None) -> list[str]:
    """Check anchored batches (all, or the ``recent`` newest) and the batches in
    flight against their leaves and the chain, and repair them. Returns what changed.
    The caller must hold the lease; raises NotLeader when it is lost, ChainUnavailable
    when the chain cannot be read."""
    changes: list[str] = []
    with Session(batcher.engine) as s:
        query = select(Batch.id).where(Batch.state == ANCHORED).order_by(Batch.id.desc())
        ids = list(s.scalars(query.limit(recent) if recent is not None else query))
        in_flight = list(s.scalars(select(Batch.id).where(Batch.state.in_(IN_FLIGHT))))
    for batch_id in sorted(ids):
        with Session(batcher.engine) as s:
            change = _check_anchored(batcher, s, s.get_one(Batch, batch_id), now)
        if change:
            changes.append(change)
    for batch_id in sorted(in_flight):
        with Session(batcher.engine) as s:
            batch = s.get_one(Batch, batch_id)
            if batch.state in IN_FLIGHT:
                change = _check_in_flight(batcher, s, batch, now)
                if change:
                    changes.append(change)
    for change in changes:
        log.warning("anchoring repair: %s", change)
    return changes


def check_recent(batcher: Leader, now: float) -> bool:
    """What a new leader checks first: the recent anchored batches and those in flight.
    Returns False when the chain could not be read (check again at the next step).
    Raises NotLeader."""
    try:
        repair(batcher, now, recent=RECENT)
    except NotLeader:
        raise
    except AnchorError as e:
        log.warning("anchoring: checking recent batches failed: %s", e.en)
        return False
    return True


def attention(s: Session) -> list[dict[str, Any]]:
    """Batches an operator should look at: roots no leaf set rebuilds, anchored batches
    with leaves lacking receipts, a batch in flight that keeps failing."""
    found: list[dict[str, Any]] = [
        {"batch": b.id, "state": b.state, "why": b.last_error}
        for b in s.scalars(select(Batch).where(Batch.state == ATTENTION).order_by(Batch.id))
    ]
    missing = s.execute(
        select(Batch.id, func.count())
        .join(Leaf, Leaf.batch_id == Batch.id)
        .where(Batch.state == ANCHORED, Leaf.receipt.is_(None))
        .group_by(Batch.id)
    ).all()
    found += [
        {"batch": i, "state": ANCHORED, "why": f"{n} leaves without a receipt (run repair)"}
        for i, n in missing
    ]
    found += [
        {"batch": b.id, "state": b.state, "why": b.last_error}
        for b in s.scalars(
            select(Batch).where(Batch.state.in_(IN_FLIGHT), Batch.attempts >= 3).order_by(Batch.id)
        )
    ]
    return found
