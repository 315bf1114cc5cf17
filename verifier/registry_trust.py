"""Trust from the on-chain AnchorRegistry (DESIGN §3): issuers, keys and anchors.

A verifier is configured with a chain and a registry address, nothing else. Reads are
cached: issuer records for ``ttl`` seconds (a revocation shows within that time), found
anchors for good (an anchor never changes), absent anchors not at all (the batch may
land any second).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from anchor.chain import AnchorRecord, IssuerRecord
from credentials.encoding import b64e
from credentials.errors import VerificationError
from credentials.trust import IssuerInfo, KeyRing


class RegistryReader(Protocol):
    chain_id: int

    def read_anchor(self, issuer_address: str, root: bytes) -> AnchorRecord | None: ...

    def issuer_by_id(self, issuer_id: str) -> IssuerRecord | None: ...


@dataclass(frozen=True)
class _Issuer:
    record: IssuerRecord
    keys: KeyRing
    fetched: float


class RegistryTrust:
    """A :class:`credentials.trust.TrustSource` and anchor source backed by the chain."""

    def __init__(
        self,
        chain: RegistryReader,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_anchors: int = 100_000,
    ) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self._ttl = ttl
        self._clock = clock
        self._issuers: dict[str, _Issuer | None] = {}
        self._fetched: dict[str, float] = {}
        self._anchors: OrderedDict[tuple[str, bytes], AnchorRecord] = OrderedDict()
        self._max_anchors = max_anchors

    # ------------------------------------------------------------------ issuers
    def _issuer(self, iss: str) -> _Issuer | None:
        now = self._clock()
        if iss in self._issuers and now - self._fetched[iss] < self._ttl:
            return self._issuers[iss]
        record = self.chain.issuer_by_id(iss)
        entry = None
        if record is not None:
            entry = _Issuer(record=record, keys=_keys(record), fetched=now)
        self._issuers[iss] = entry
        self._fetched[iss] = now
        return entry

    def issuer(self, iss: str) -> IssuerInfo | None:
        entry = self._issuer(iss)
        if entry is None or not entry.record.active:
            return None
        r = entry.record
        return IssuerInfo(id=r.issuer_id, name=r.name, municipality_code=r.municipality_code)

    def resolve_key(self, iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        entry = self._issuer(iss)
        if entry is None or not entry.record.active:
            raise VerificationError(
                f"発行者 {iss} は登録簿にありません", f"issuer {iss} is not in the registry"
            )
        return entry.keys.resolve(kid)

    def key_window(self, iss: str, kid: str) -> tuple[int, int | None] | None:
        """``(valid_from, revoked_at)`` of a registered key, or None when unknown."""
        entry = self._issuer(iss)
        return entry.keys.window(kid) if entry else None

    # ------------------------------------------------------------------ anchors
    def anchor_of(self, iss: str, root: bytes) -> AnchorRecord | None:
        """Where ``root`` was anchored by the issuer ``iss``, or None."""
        entry = self._issuer(iss)
        if entry is None:
            return None
        cache_key = (entry.record.address, root)
        found = self._anchors.get(cache_key)
        if found is not None:
            self._anchors.move_to_end(cache_key)
            return found
        found = self.chain.read_anchor(entry.record.address, root)
        if found is not None:
            self._anchors[cache_key] = found
            if len(self._anchors) > self._max_anchors:
                self._anchors.popitem(last=False)
        return found


def _keys(record: IssuerRecord) -> KeyRing:
    ring = KeyRing(record.name)
    for k in record.keys:
        ring.add_coordinates(b64e(k.thumbprint), b64e(k.x), b64e(k.y), k.valid_from, k.revoked_at)
    return ring
