"""The anchoring queue as the rest of Shomei reads it: queue a leaf (inside the issuer's
own transaction), count what is pending, describe the state for operators, and find a
leaf's anchor evidence. No chain, no lease: any process may call these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import merkle
from .policy import BatchPolicy
from .store import ANCHORED, IN_FLIGHT, Batch, Leaf


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


def pending_count(engine: Engine) -> int:
    """Leaves without a receipt yet."""
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Leaf).where(Leaf.receipt.is_(None))) or 0


def status(engine: Engine) -> dict[str, Any]:
    """Counts, the oldest unanchored leaf and the oldest batch in flight, for operators."""
    with Session(engine) as s:
        oldest = s.scalar(select(func.min(Leaf.queued_at)).where(Leaf.receipt.is_(None)))
        inflight = s.scalars(
            select(Batch).where(Batch.state.in_(IN_FLIGHT)).order_by(Batch.id).limit(1)
        ).first()
        return {
            "pending": pending_count(engine),
            "pending_since": oldest,
            "in_flight": None if inflight is None else batch_summary(inflight),
            "anchored_batches": s.scalar(
                select(func.count()).select_from(Batch).where(Batch.state == ANCHORED)
            ),
        }


def batch_summary(batch: Batch) -> dict[str, Any]:
    """A batch as the operator's views show it."""
    return {
        "batch": batch.id,
        "state": batch.state,
        "size": batch.size,
        "tx": batch.tx_hash,
        "nonce": batch.nonce,
        "epoch": batch.epoch,
        "attempts": batch.attempts,
        "last_error": batch.last_error,
        "next_try_at": batch.next_try_at,
    }


def due(engine: Engine, policy: BatchPolicy, now: float, *, force: bool, full_only: bool) -> bool:
    """Whether a batch would close now: pending leaves, and (unless ``force``) a full
    batch's worth or (unless ``full_only``) the oldest older than ``max_age``."""
    pending = select(Leaf.id, Leaf.queued_at).where(Leaf.batch_id.is_(None))
    with Session(engine) as s:
        oldest = s.execute(pending.order_by(Leaf.id).limit(1)).first()
        if oldest is None:
            return False
        if force or (not full_only and now - oldest.queued_at >= policy.max_age):
            return True
        full = select(func.count()).select_from(pending.limit(policy.max_leaves).subquery())
        return (s.scalar(full) or 0) >= policy.max_leaves


def describe(engine: Engine) -> str:
    """``all anchored``, or how many are pending since when, with the last error."""
    st = status(engine)
    if not st["pending"]:
        return "all anchored"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st["pending_since"]))
    err = (st["in_flight"] or {}).get("last_error")
    return f"{st['pending']} pending since {since}" + (f"; last error: {err}" if err else "")


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
