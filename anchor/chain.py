"""The chain boundary: one small interface, two backends.

Everything Shomei needs from Ethereum goes through :class:`Chain`: anchoring a Merkle
root, reading an anchor back, reading the issuer registry, and the few transaction
primitives a crash-safe batcher needs (build a signed transaction with a chosen nonce
and fees *before* sending it, broadcast it, look for its receipt). Backends:

- ``EvmChain``: web3's in-process EVM (EthereumTesterProvider) for fast tests;
- ``RpcChain``: JSON-RPC to a real node (anvil locally, Sepolia or any EVM network in
  production), with several RPC URLs and fallback.

Both are built on a *node* (``EvmNode``, ``RpcNode``: a connection to one network) plus a
registry address and, for writers, a :class:`~anchor.accounts.ChainAccount`. Their face
is :mod:`anchor.backends`; they depend on this interface, never the reverse, so reading
it (verifier, batcher) does not load web3.

Library exceptions (web3, eth-tester, requests) are converted into
:class:`credentials.errors.AnchorError` subclasses here, where they enter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from credentials.encoding import b64e
from credentials.errors import AnchorError

__all__ = [
    "AnchorRecord",
    "Chain",
    "ChainRejected",
    "ChainUnavailable",
    "IssuerRecord",
    "KeyRecord",
    "SignedTx",
    "TxReceipt",
]


class ChainUnavailable(AnchorError):
    """No RPC endpoint answered (network down, rate limited): retry later."""


class ChainRejected(AnchorError):
    """The chain refused a call or transaction (revert: not registered, duplicate root).

    ``reason`` is the registry's custom error name when known (``"AlreadyAnchored"``,
    ``"NotActiveIssuer"``, ...), so callers can branch without parsing messages.
    """

    def __init__(self, ja: str, en: str | None = None, *, reason: str | None = None) -> None:
        super().__init__(ja, en)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class AnchorRecord:
    """Where and when a root was anchored."""

    issuer_address: str  # checksummed 0x address of the anchoring issuer
    root: bytes
    block: int
    timestamp: int  # block timestamp, seconds since the epoch
    tx: str | None  # 0x transaction hash (from the Anchored event), when known


@dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """A signing key registered for an issuer: P-256 coordinates and validity."""

    thumbprint: bytes  # 32 bytes: the RFC 7638 SHA-256 thumbprint (the credential's kid)
    x: bytes  # 32 bytes
    y: bytes  # 32 bytes
    valid_from: int  # seconds since the epoch
    revoked_at: int | None  # None while not revoked
    added_at: int = 0  # block timestamp of the registration (0: unknown)


@dataclass(frozen=True, kw_only=True)
class IssuerRecord:
    """A registered issuer as the registry describes it."""

    address: str
    issuer_id: str  # the `iss` URL
    name: str
    municipality_code: str
    active: bool
    keys: tuple[KeyRecord, ...]

    def to_json(self) -> dict[str, Any]:
        """The issuer and its keys as JSON: kid and coordinates in base64url (a verifier
        rebuilds the JWK from them), times in seconds since the epoch."""
        return {
            "address": self.address,
            "issuer_id": self.issuer_id,
            "name": self.name,
            "municipality_code": self.municipality_code,
            "active": self.active,
            "keys": [
                {
                    "kid": b64e(k.thumbprint),
                    "x": b64e(k.x),
                    "y": b64e(k.y),
                    "valid_from": k.valid_from,
                    "revoked_at": k.revoked_at,
                    "added_at": k.added_at,
                }
                for k in self.keys
            ],
        }


@dataclass(frozen=True, kw_only=True)
class SignedTx:
    """A signed transaction not necessarily sent yet: store it, then broadcast it."""

    raw: bytes
    tx_hash: str
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, kw_only=True)
class TxReceipt:
    tx_hash: str
    block: int
    success: bool


class Chain(Protocol):
    """What Shomei needs from an Ethereum network holding one AnchorRegistry."""

    chain_id: int
    registry_address: str

    # --- reads (verifiers) ---------------------------------------------------------
    def read_anchor(self, issuer_address: str, root: bytes) -> AnchorRecord | None:
        """The anchor of ``root`` by that issuer, or None when it was never anchored."""

    def issuer_by_id(self, issuer_id: str) -> IssuerRecord | None:
        """The registered issuer with that ``iss`` URL, or None."""

    def block_number(self) -> int: ...

    def finalized_block(self) -> int:
        """The newest block the network calls final (the ``finalized`` block tag)."""

    # --- transactions (issuers) ----------------------------------------------------
    def next_nonce(self, address: str, *, pending: bool = True) -> int:
        """The account's next nonce counting pending transactions (``pending``), or
        mined ones only."""

    def suggest_fees(self) -> tuple[int, int]:
        """EIP-1559 (max_fee_per_gas, max_priority_fee_per_gas) for a timely inclusion."""

    def sign_anchor(
        self, root: bytes, *, nonce: int, max_fee_per_gas: int, max_priority_fee_per_gas: int
    ) -> SignedTx:
        """A signed ``anchor(root)`` transaction from the issuer account, not sent."""

    def broadcast(self, tx: SignedTx) -> None:
        """Send it; sending the same transaction twice is harmless."""

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt once mined, else None."""
