"""Offline trust: which issuers a verifier accepts, and their keys.

``TRUST.json``::

    {"issuers": {"<iss URL>": {"name": "…", "municipality_code": "…",
                               "jwks": {"keys": [<EC P-256 public JWK>, …]}}}}

Keys are indexed by their RFC 7638 thumbprint, which Shomei issuers use as ``kid``; a
JWK that carries an explicit ``kid`` is indexed under that too. Public-key objects are
built once at load time so a verification costs no key parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from .errors import InvalidCredential, ShomeiError, VerificationError
from .keys import jwk_thumbprint, public_key_from_jwk


@dataclass(frozen=True)
class IssuerInfo:
    """A trusted issuer as a verifier reports it."""

    id: str
    name: str
    municipality_code: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "municipality_code": self.municipality_code}


class TrustSource(Protocol):
    """Where a verifier learns issuers and keys: a trust file, or the on-chain registry."""

    def issuer(self, iss: str) -> IssuerInfo | None:
        """The issuer, or None when it is not trusted."""

    def resolve_key(self, iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        """The issuer's key ``kid``; raises :class:`VerificationError` when unknown."""

    def key_window(self, iss: str, kid: str) -> tuple[int, int | None] | None:
        """``(valid_from, revoked_at)`` of the key when the source knows it, else None."""


class KeyRing:
    """One issuer's keys by kid, with validity intervals where the source has them.
    Shared by every trust source so they resolve and refuse keys alike."""

    def __init__(self, issuer_name: str) -> None:
        self.issuer_name = issuer_name
        self._keys: dict[str, tuple[ec.EllipticCurvePublicKey, tuple[int, int | None] | None]] = {}

    def add(
        self, kid: str, key: ec.EllipticCurvePublicKey, window: tuple[int, int | None] | None = None
    ) -> None:
        self._keys[kid] = (key, window)

    def add_coordinates(
        self, kid: str, x: str, y: str, valid_from: int, revoked_at: int | None
    ) -> None:
        """Add a key given as base64url coordinates. A key whose coordinates do not hash
        to ``kid`` (or are no P-256 point) is left out: a kid names exactly one key."""
        jwk = {"kty": "EC", "crv": "P-256", "x": x, "y": y}
        try:
            if jwk_thumbprint(jwk) == kid:
                self.add(kid, public_key_from_jwk(jwk), (valid_from, revoked_at))
        except InvalidCredential:
            pass

    def resolve(self, kid: str) -> ec.EllipticCurvePublicKey:
        """The key; raises :class:`VerificationError` when ``kid`` is not registered."""
        entry = self._keys.get(kid)
        if entry is None:
            raise VerificationError(
                f"発行者 {self.issuer_name} の鍵 {kid} は登録されていません",
                f"key {kid} is not registered for issuer {self.issuer_name}",
            )
        return entry[0]

    def window(self, kid: str) -> tuple[int, int | None] | None:
        entry = self._keys.get(kid)
        return entry[1] if entry else None


@dataclass(frozen=True)
class _Entry:
    info: IssuerInfo
    keys: KeyRing = field(repr=False)


class TrustList:
    """An in-memory trust list, usually loaded from ``TRUST.json``."""

    def __init__(self, entries: Mapping[str, _Entry]) -> None:
        self._entries = dict(entries)

    @property
    def issuer_ids(self) -> tuple[str, ...]:
        """The ``iss`` of every issuer on the list."""
        return tuple(self._entries)

    @classmethod
    def from_json(cls, doc: Any) -> TrustList:
        """Build from the parsed ``TRUST.json``. Raises :class:`ShomeiError` when it is
        malformed."""
        issuers = doc.get("issuers") if isinstance(doc, dict) else None
        if not isinstance(issuers, dict):
            raise ShomeiError(
                "信頼リストの形式が不正です（issuers がありません）",
                "malformed trust list (no 'issuers' object)",
            )
        entries = {}
        for iss, meta in issuers.items():
            entries[iss] = cls._entry(iss, meta)
        return cls(entries)

    @staticmethod
    def _entry(iss: str, meta: Any) -> _Entry:
        try:
            info = IssuerInfo(
                id=iss, name=str(meta["name"]), municipality_code=str(meta["municipality_code"])
            )
            jwks = meta["jwks"]["keys"]
            if not isinstance(jwks, list):
                raise TypeError
        except (KeyError, TypeError):
            raise ShomeiError(
                f"信頼リストの発行者 {iss} の記載が不正です"
                "（name, municipality_code, jwks が必要）",
                f"trust list entry {iss} needs name, municipality_code and jwks.keys",
            ) from None
        keys = KeyRing(info.name)
        for jwk in jwks:
            try:
                key = public_key_from_jwk(jwk)
            except InvalidCredential as e:
                raise ShomeiError(
                    f"信頼リストの発行者 {iss} の鍵が不正です: {e.ja}",
                    f"trust list entry {iss} has a bad key: {e.en}",
                ) from None
            keys.add(jwk_thumbprint(jwk), key)
            if isinstance(jwk.get("kid"), str):
                keys.add(jwk["kid"], key)
        return _Entry(info=info, keys=keys)

    @classmethod
    def load(cls, path: str | Path) -> TrustList:
        """Read ``TRUST.json``. Raises :class:`ShomeiError` for an unreadable file."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ShomeiError(
                f"信頼リスト {path} を読み込めません", f"cannot read trust list {path}: {e}"
            ) from None
        return cls.from_json(doc)

    def issuer(self, iss: str) -> IssuerInfo | None:
        entry = self._entries.get(iss)
        return entry.info if entry else None

    def resolve_key(self, iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        entry = self._entries.get(iss)
        if entry is None:
            raise VerificationError(
                f"発行者 {iss} は信頼リストにありません", f"issuer {iss} is not trusted"
            )
        return entry.keys.resolve(kid)

    def key_window(self, iss: str, kid: str) -> tuple[int, int | None] | None:
        return None  # a trust file lists keys without validity intervals

    @staticmethod
    def document(
        iss: str, *, name: str, municipality_code: str, jwks: list[dict[str, str]]
    ) -> dict[str, Any]:
        """A ``TRUST.json`` document with one issuer (what ``shomei keygen`` users write)."""
        return {
            "issuers": {
                iss: {"name": name, "municipality_code": municipality_code, "jwks": {"keys": jwks}}
            }
        }


class CombinedTrust:
    """Several trust sources (a trust file and the registry, say), asked in order: the
    first that knows an issuer decides about its keys."""

    def __init__(self, sources: list[TrustSource]) -> None:
        self.sources = sources

    def _source(self, iss: str) -> TrustSource | None:
        return next((s for s in self.sources if s.issuer(iss) is not None), None)

    def issuer(self, iss: str) -> IssuerInfo | None:
        source = self._source(iss)
        return source.issuer(iss) if source else None

    def resolve_key(self, iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        source = self._source(iss)
        if source is None:
            raise VerificationError(
                f"発行者 {iss} は信頼されていません", f"issuer {iss} is not trusted"
            )
        return source.resolve_key(iss, kid)

    def key_window(self, iss: str, kid: str) -> tuple[int, int | None] | None:
        source = self._source(iss)
        return source.key_window(iss, kid) if source else None
