"""Anchor evidence as it travels inside a presentation (the QR container's evidence
field): one kind byte, then the kind's body.

Kind 1 is a full Merkle receipt (``Receipt.to_bytes()``): with it a verifier checks the
anchor against the chain alone, and the issuer learns nothing about the verification.
The kind byte leaves room for a shorter form later (a batch and index resolved through
a published leaf list). Pure: no web3.
"""

from __future__ import annotations

from credentials.errors import InvalidCredential

from .merkle import Receipt

RECEIPT = 0x01


def encode_receipt(receipt: Receipt) -> bytes:
    """The evidence bytes for a full Merkle receipt."""
    return bytes([RECEIPT]) + receipt.to_bytes()


def decode(data: bytes) -> Receipt:
    """The receipt in ``data``. Raises :class:`InvalidCredential` for an unknown kind or
    a malformed receipt."""
    if not data:
        raise InvalidCredential("記録の証明が空です", "the anchor evidence is empty")
    if data[0] != RECEIPT:
        raise InvalidCredential(
            f"未対応の記録の証明です（種別 {data[0]}）",
            f"unsupported anchor evidence kind {data[0]}",
        )
    return Receipt.from_bytes(data[1:])
