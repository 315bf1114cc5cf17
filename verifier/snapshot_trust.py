"""Offline trust from a governance-signed registry snapshot (see anchor/snapshot.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_account.messages import encode_defunct

from credentials.encoding import canonical_json
from credentials.errors import InvalidCredential, ShomeiError, VerificationError
from credentials.trust import IssuerInfo, KeyRing

FORMAT = "shomei-registry-snapshot/1"


class SnapshotTrust:
    """A :class:`credentials.trust.TrustSource` read from a verified snapshot."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.chain_id = int(body["chain_id"])
        self.block = int(body["block"])
        self._issuers: dict[str, tuple[IssuerInfo, bool, KeyRing]] = {}
        for entry in body["issuers"]:
            info = IssuerInfo(
                id=str(entry["issuer_id"]),
                name=str(entry["name"]),
                municipality_code=str(entry["municipality_code"]),
            )
            keys = KeyRing(info.name)
            for k in entry["keys"]:
                keys.add_coordinates(k["kid"], k["x"], k["y"], k["valid_from"], k["revoked_at"])
            self._issuers[info.id] = (info, bool(entry["active"]), keys)

    @classmethod
    def load(cls, doc: Any, *, governance: str | None = None) -> SnapshotTrust:
        """Check the governance signature (and, when given, that the governance address
        is the pinned one). Raises :class:`ShomeiError` for a malformed, forged or
        foreign snapshot."""
        try:
            body, signature = doc["snapshot"], doc["signature"]
            if body["format"] != FORMAT:
                raise ValueError(body["format"])
            message = encode_defunct(canonical_json(body))
            signer = Account.recover_message(message, signature=signature)
        except (KeyError, TypeError, ValueError) as e:
            raise ShomeiError(
                "登録簿のスナップショットの形式が不正です", f"malformed registry snapshot ({e})"
            ) from None
        if signer.lower() != str(body["governance"]).lower():
            raise ShomeiError(
                "スナップショットの署名が管理者のものではありません",
                "the snapshot is not signed by its governance account",
            )
        if governance is not None and signer.lower() != governance.lower():
            raise ShomeiError(
                "スナップショットの管理者が設定と一致しません",
                f"the snapshot's governance {signer} is not the configured {governance}",
            )
        try:
            return cls(body)
        except (KeyError, TypeError, ValueError, InvalidCredential):
            raise ShomeiError(
                "登録簿のスナップショットの内容が不正です", "malformed registry snapshot entries"
            ) from None

    @classmethod
    def load_file(cls, path: str | Path, *, governance: str | None = None) -> SnapshotTrust:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ShomeiError(
                f"スナップショット {path} を読めません", f"cannot read snapshot {path}: {e}"
            ) from None
        return cls.load(doc, governance=governance)

    def issuer(self, iss: str) -> IssuerInfo | None:
        entry = self._issuers.get(iss)
        return entry[0] if entry and entry[1] else None

    def resolve_key(self, iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        entry = self._issuers.get(iss)
        if entry is None or not entry[1]:
            raise VerificationError(
                f"発行者 {iss} はスナップショットにありません",
                f"issuer {iss} is not in the snapshot",
            )
        return entry[2].resolve(kid)

    def key_window(self, iss: str, kid: str) -> tuple[int, int | None] | None:
        entry = self._issuers.get(iss)
        return entry[2].window(kid) if entry else None
