"""The parties' agreements in a contract credential, checked. Pure: no Flask.

Each ``agreements`` entry says who signed (``party``), when (``signed_at``), with which
key (``key_thumbprint``, RFC 7638) and the ES256 signature (r‖s, base64url) of the
party's agreement JWS (the format is the core's, :mod:`credentials.agreement`). The entry
alone carries neither the public key nor the nonce, so a signature can be checked only
when the whole JWS comes with it (an attachment of the contract PDF); without it the
verifier checks what it can (the entry is well formed, the orderer's key is one of the
issuer's) and says that the signature was not checked.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from credentials.agreement import (
    PARTIES,
    AgreementFormatError,
    UnverifiedAgreement,
    looks_like_agreement,
)
from credentials.encoding import b64d
from credentials.errors import ShomeiError
from credentials.keys import jwk_thumbprint, public_jwk

_PARTY = {"orderer": ("発注者", "orderer"), "contractor": ("受注者", "contractor")}

Status = Literal["pass", "fail", "warn"]
#: Returns the issuer's public JWK for a key thumbprint, or None when it has no such key.
IssuerKey = Callable[[str], dict[str, str] | None]


@dataclass(frozen=True, kw_only=True)
class AgreementCheck:
    """What the verifier found about one agreement entry."""

    party: str
    signed_at: str
    key_thumbprint: str
    status: Status
    ja: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {
            "party": self.party,
            "signed_at": self.signed_at,
            "key_thumbprint": self.key_thumbprint,
            "status": self.status,
            "message": f"{self.ja} / {self.en}",
            "message_ja": self.ja,
            "message_en": self.en,
        }


class _Refused(ShomeiError):
    pass


def tokens_in(texts: Iterable[str | None]) -> tuple[str, ...]:
    """The agreement JWSs among ``texts`` (attachments; several per text allowed)."""
    return tuple(
        word for text in texts for word in (text or "").split() if looks_like_agreement(word)
    )


def issuer_key_lookup(resolve: Callable[[str], Any]) -> IssuerKey:
    """Wrap a trust source's ``resolve_key`` for one issuer: a key that cannot be
    resolved (unknown, registry unreachable) is None."""

    def lookup(thumbprint: str) -> dict[str, str] | None:
        try:
            jwk = public_jwk(resolve(thumbprint))
        except ShomeiError:
            return None
        return jwk if jwk_thumbprint(jwk) == thumbprint else None

    return lookup


def check_agreements(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    tokens: Sequence[str] = (),
    issuer_key: IssuerKey,
) -> tuple[AgreementCheck, ...] | None:
    """Return one check per ``agreements`` entry (None when the claims have none).

    ``tokens`` are agreement JWSs that came with the document; the one whose signature
    is an entry's is verified against the entry, the credential's contract number and
    document digest, and ``issuer`` as its audience. Never raises.
    """
    entries = claims.get("agreements")
    if not isinstance(entries, list):
        return None
    # An entry may carry its whole JWS; it is checked like one that came with the PDF.
    carried = [e["jws"] for e in entries if isinstance(e, dict) and isinstance(e.get("jws"), str)]
    tokens = (*tokens, *carried)
    seen: set[str] = set()
    out = []
    for entry in entries:
        check = _check_entry(entry, claims, issuer, tokens, issuer_key)
        if check.party in seen and check.status != "fail":
            check = _with(check, "fail", "同じ当事者の署名が重複しています", "duplicate party")
        seen.add(check.party)
        out.append(check)
    missing = [p for p in PARTIES if p not in seen]
    for party in missing:
        ja, en = _PARTY[party]
        out.append(
            AgreementCheck(
                party=party,
                signed_at="",
                key_thumbprint="",
                status="fail",
                ja=f"{ja}の署名がありません",
                en=f"the {en}'s signature is missing",
            )
        )
    return tuple(out)


def _with(check: AgreementCheck, status: Status, ja: str, en: str) -> AgreementCheck:
    return AgreementCheck(
        party=check.party,
        signed_at=check.signed_at,
        key_thumbprint=check.key_thumbprint,
        status=status,
        ja=ja,
        en=en,
    )


def _check_entry(
    entry: Any,
    claims: Mapping[str, Any],
    issuer: str,
    tokens: Sequence[str],
    issuer_key: IssuerKey,
) -> AgreementCheck:
    if not isinstance(entry, dict):
        entry = {}
    base = AgreementCheck(
        party=str(entry.get("party", "")),
        signed_at=str(entry.get("signed_at", "")),
        key_thumbprint=str(entry.get("key_thumbprint", "")),
        status="fail",
        ja="",
        en="",
    )
    try:
        signed_at, signature = _well_formed(entry)
    except _Refused as e:
        return _with(base, "fail", f"署名の記載が不正です: {e.ja}", f"malformed agreement: {e.en}")
    party_ja, party_en = _PARTY[base.party]
    token = next((t for t in tokens if t.rsplit(".", 1)[-1] == signature), None)
    city_jwk = issuer_key(base.key_thumbprint) if base.party == "orderer" else None
    if token is None:
        if city_jwk is not None:
            return _with(
                base,
                "warn",
                "発行者（市）の登録鍵による署名です。署名本体（JWS）がないため署名そのものは確認していません",
                "made with the issuer's registered key; the signature itself was not checked "
                "(no agreement JWS came with the document)",
            )
        return _with(
            base,
            "warn",
            "署名本体（JWS）がないため署名は確認していません",
            "signature not checked (no agreement JWS came with the document)",
        )
    try:
        _verify_token(token, base, claims, issuer, signed_at)
        if base.party == "orderer" and city_jwk is None:
            raise _Refused(
                "発注者の署名が発行者（市）の登録鍵ではありません",
                "the orderer's key is not one of the issuer's registered keys",
            )
    except _Refused as e:
        return _with(
            base,
            "fail",
            f"{party_ja}の署名を確認できません: {e.ja}",
            f"the {party_en}'s signature does not verify: {e.en}",
        )
    return _with(
        base,
        "pass",
        f"{party_ja}の署名を確認しました（契約書PDFのハッシュに対する署名）",
        f"the {party_en}'s signature over the contract PDF's digest is verified",
    )


def _well_formed(entry: dict[str, Any]) -> tuple[int, str]:
    """Return the signing time and the signature text. Raises :class:`_Refused`."""
    if entry.get("party") not in PARTIES:
        raise _Refused("当事者が不明です", "unknown party")
    try:
        when = datetime.fromisoformat(str(entry.get("signed_at")))
    except ValueError:
        raise _Refused("署名日時が不正です", "bad signing time") from None
    if when.tzinfo is None:
        raise _Refused("署名日時に時差がありません", "signing time without offset")
    thumbprint, signature = entry.get("key_thumbprint"), entry.get("signature")
    try:
        if not isinstance(thumbprint, str) or len(b64d(thumbprint)) != 32:
            raise ValueError
        if not isinstance(signature, str) or len(b64d(signature)) != 64:
            raise ValueError
    except ValueError:
        raise _Refused("鍵の指紋または署名が不正です", "bad key thumbprint or signature") from None
    return int(when.timestamp()), signature


def _verify_token(
    token: str, entry: AgreementCheck, claims: Mapping[str, Any], issuer: str, signed_at: int
) -> None:
    """Check one agreement JWS against its entry. Raises :class:`_Refused`."""
    try:
        unverified = UnverifiedAgreement.parse(token)
        if not hmac.compare_digest(unverified.thumbprint, entry.key_thumbprint):
            raise _Refused(
                "鍵の指紋が一致しません（別の鍵で署名されています）",
                "the key thumbprint does not match (signed with another key)",
            )
        payload = unverified.verify()
    except AgreementFormatError as e:
        raise _Refused(e.ja, e.en) from None
    expected = {
        "aud": issuer,
        "contract_number": claims.get("contract_number"),
        "document_sha256": claims.get("document_sha256"),
        "party": entry.party,
        "iat": signed_at,
    }
    for name, value in expected.items():
        if payload.get(name) != value or (name == "iat" and isinstance(payload.get(name), bool)):
            raise _Refused(f"{name} が契約と一致しません", f"{name} does not match the contract")
