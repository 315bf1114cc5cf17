"""Which nonce the leader signs a batch's transaction with.

Taken by the leader alone (every send is fenced by the lease), from its own record of
sent transactions and from the node: never by two processes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .chain import Chain
from .store import ABANDONED, ATTENTION, MINED, SENT, Batch


def choose_nonce(
    s: Session, chain: Chain, address: str, batch: Batch, *, replace: bool
) -> tuple[int, tuple[int, int] | None]:
    """The nonce for ``batch``'s transaction, and the fees it must beat (a
    replacement). Our own record first: a replaced transaction keeps its nonce, and
    the transaction of a batch given up on that may still wait in a pool is taken
    over (same nonce, higher fees), so it can never be mined after its leaves went
    elsewhere. Otherwise the node's count of our pending transactions."""
    if replace and batch.nonce is not None:
        return batch.nonce, (batch.max_fee_per_gas or 0, batch.max_priority_fee_per_gas or 0)
    mined = chain.next_nonce(address, pending=False)
    live = {
        n
        for n in s.scalars(
            select(Batch.nonce).where(
                Batch.state.in_((SENT, MINED)), Batch.nonce.is_not(None), Batch.id != batch.id
            )
        )
        if n is not None
    }
    stale = s.scalars(
        select(Batch)
        .where(
            Batch.state.in_((ABANDONED, ATTENTION)),
            Batch.nonce >= mined,
            Batch.raw_tx.is_not(None),
            Batch.id != batch.id,
        )
        .order_by(Batch.nonce)
    ).all()
    for old in stale:
        if old.nonce is not None and old.nonce not in live:
            fees = (old.max_fee_per_gas or 0, old.max_priority_fee_per_gas or 0)
            return old.nonce, fees
    # The node's count, but never below our own batches still in a pool (a node that
    # lost its pool counts them out until they are broadcast again).
    ours = max(live, default=-1) + 1
    return max(mined, ours, chain.next_nonce(address)), None
