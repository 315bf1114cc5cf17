"""How the anchoring worker behaves: when a batch closes, when an anchor is final, how
its transaction is priced, re-sent and retried (:class:`BatchPolicy`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class BatchPolicy:
    # M: close a batch at this many leaves... 1,024 keeps a receipt at ten sibling
    # hashes, so a 住民票 with its anchor evidence still fits one QR code (version 25).
    max_leaves: int = 1024
    max_age: float = 10.0  # N: ...or when the oldest pending leaf is this old (seconds)
    confirmations: int = 0  # K: blocks from the anchor's to the head, both counted (0: none)
    finalized: bool = False  # wait for the network's `finalized` block instead of K
    replace_after: float = 120.0  # re-price a transaction not mined after this long
    fee_bump: float = 1.25  # nodes need >= 10 % more to accept a replacement
    rebroadcast_every: float = 5.0  # while pending, send the stored bytes again this often
    # P: batches sent and not yet mined at once (consecutive nonces). Under a backlog the
    # next *full* batch goes out without waiting for a block: P × 1,024 leaves a block.
    max_unmined: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 60.0
