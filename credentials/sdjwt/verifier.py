"""The verifier's part: the issuer's signature with a key from a caller-supplied
resolver (never the token's own headers), the disclosures, validity and key binding."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _jws
from ..errors import VerificationError
from ..keys import public_key_from_jwk
from ._common import (
    DEFAULT_KB_MAX_AGE,
    DEFAULT_MAX_SIZE,
    DEFAULT_SKEW,
    KB_TYP,
    REGISTERED_CLAIMS,
    SD_ALG,
    TYP,
    KeyResolver,
    ParsedSdJwt,
    _decode_disclosures,
    _digest,
)

# --------------------------------------------------------------------------- verifier


def verify_issuer_signature(parsed: ParsedSdJwt, resolve_key: KeyResolver) -> dict[str, Any]:
    """Check the header and the issuer's signature; return the (now trusted) payload.

    The key comes from ``resolve_key(iss, kid)``, which raises
    :class:`VerificationError` for an unknown issuer or key.
    """
    what, what_en = "発行者の署名付きJWT", "issuer-signed JWT"
    parsed.jws.check_header(typ=TYP, what=what, what_en=what_en)
    iss = parsed.unverified_payload.get("iss")
    kid = parsed.unverified_header.get("kid")
    if not isinstance(iss, str) or not iss:
        raise VerificationError("発行者（iss）がありません", "the credential has no issuer (iss)")
    if not isinstance(kid, str) or not kid:
        raise VerificationError("鍵ID（kid）がありません", "the credential has no key id (kid)")
    parsed.jws.verify(resolve_key(iss, kid), what=what, what_en=what_en)
    return parsed.unverified_payload


_CONTAINERS = (dict, list)


def _not_a_string() -> VerificationError:
    return VerificationError("ダイジェストが文字列ではありません", "a digest is not a string")


def _used_twice() -> VerificationError:
    return VerificationError(
        "同じダイジェストが2回使われています", "a digest appears more than once"
    )


class _Discloser:
    """Replaces digests by disclosed values (RFC 9901 §7.1, steps 3-5)."""

    def __init__(self, disclosures: Collection[str]) -> None:
        digests, arrays = _decode_disclosures(tuple(disclosures))
        # digest -> [salt, name, value] or [salt, value] (an array element).
        self.by_digest: dict[str, list[Any]] = dict(zip(digests, arrays, strict=True))
        if len(self.by_digest) != len(digests):
            raise VerificationError(
                "同じ開示情報が2回含まれています", "the same disclosure is included twice"
            )
        self.seen: set[str] = set()

    def object(self, node: Mapping[str, Any], drop: str = "_sd") -> dict[str, Any]:
        """The object with its ``_sd`` digests replaced by the disclosed claims (and
        the member ``drop`` left out: ``_sd_alg`` at the top)."""
        if "..." in node:
            raise VerificationError("項目名「...」は使用できません", "'...' is not a claim name")
        out = dict(node)
        sd = out.pop("_sd", None)
        out.pop(drop, None)
        value = self.value
        for k, v in out.items():
            if isinstance(v, _CONTAINERS):  # only containers can hide digests
                out[k] = value(v)
        if sd is not None:
            self._disclose(sd, out)
        return out

    def _disclose(self, sd: Any, out: dict[str, Any]) -> None:
        """Add the claims an object's ``_sd`` digests disclose to ``out``."""
        if type(sd) is not list:
            raise VerificationError("_sd が配列ではありません", "_sd is not an array")
        seen, by_digest, value = self.seen, self.by_digest, self.value
        for digest in sd:
            if type(digest) is not str:
                raise _not_a_string()
            if digest in seen:
                raise _used_twice()
            seen.add(digest)
            d = by_digest.get(digest)
            if d is None:
                continue  # a decoy, or a claim the holder did not disclose
            if len(d) != 3:
                raise VerificationError(
                    "配列要素用の開示情報が項目として使われています",
                    "an array-element disclosure is referenced as an object property",
                )
            _salt, name, v = d
            if name in out:
                raise VerificationError(
                    f"開示された項目 {name!r} が既存の項目を上書きします",
                    f"disclosed claim {name!r} would overwrite an existing claim",
                )
            out[name] = value(v) if isinstance(v, _CONTAINERS) else v

    def array(self, node: list[Any]) -> list[Any]:
        out = []
        for item in node:
            if isinstance(item, dict) and "..." in item:
                if len(item) != 1:
                    raise VerificationError(
                        "配列要素の参照に余分な項目があります",
                        "an array-element reference has extra members",
                    )
                digest = item["..."]
                if type(digest) is not str:
                    raise _not_a_string()
                if digest in self.seen:
                    raise _used_twice()
                self.seen.add(digest)
                d = self.by_digest.get(digest)
                if d is None:
                    continue
                if len(d) != 2:
                    raise VerificationError(
                        "項目用の開示情報が配列要素として使われています",
                        "an object-property disclosure is referenced as an array element",
                    )
                out.append(self.value(d[1]))
            else:
                out.append(self.value(item))
        return out

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            return self.object(node)
        if isinstance(node, list):
            return self.array(node)
        return node


def apply_disclosures(payload: Mapping[str, Any], disclosures: Collection[str]) -> dict[str, Any]:
    """Return the payload with every disclosure in place and ``_sd``/``_sd_alg`` removed.

    Raises :class:`VerificationError` for a disclosure the payload does not reference, a
    digest used twice, a duplicate disclosure, a reserved claim name, or a disclosed
    claim that would overwrite a plain one.
    """
    sd_alg = payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise VerificationError(
            f"ハッシュアルゴリズム {sd_alg!r} は受け付けません",
            f"_sd_alg {sd_alg!r} is not accepted",
        )
    discloser = _Discloser(disclosures)
    out = discloser.object(payload, drop="_sd_alg")
    unused = set(discloser.by_digest) - discloser.seen
    if unused:
        raise VerificationError(
            "署名された内容に含まれない開示情報があります（改ざんの可能性）",
            "a disclosure is not referenced by the signed payload (possible tampering)",
        )
    return out


def _numeric(payload: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VerificationError(f"{name} が数値ではありません", f"{name} is not a number")
    return value


def check_validity(payload: Mapping[str, Any], *, now: float, skew: int = DEFAULT_SKEW) -> None:
    """Check ``iat``, ``nbf`` and ``exp`` against ``now`` with ``skew`` seconds of
    tolerance. Raises :class:`VerificationError`."""
    iat = _numeric(payload, "iat", required=True)
    nbf = _numeric(payload, "nbf", required=False)
    exp = _numeric(payload, "exp", required=False)
    if iat is not None and iat > now + skew:
        raise VerificationError(
            "発行日時が未来になっています", "the credential is issued in the future (iat)"
        )
    if nbf is not None and nbf > now + skew:
        raise VerificationError(
            "まだ有効期間が始まっていません", "the credential is not yet valid (nbf)"
        )
    if exp is not None and exp <= now - skew:
        raise VerificationError("有効期限が切れています", "the credential has expired (exp)")


def verify_key_binding(
    parsed: ParsedSdJwt,
    payload: Mapping[str, Any],
    *,
    now: float,
    nonce: str | None = None,
    aud: str | None = None,
    skew: int = DEFAULT_SKEW,
    max_age: int = DEFAULT_KB_MAX_AGE,
) -> None:
    """Verify the key-binding JWT against the holder key in ``cnf.jwk``.

    ``nonce``/``aud``, when given, must match exactly. Raises
    :class:`VerificationError` (and :class:`InvalidCredential` if it cannot be parsed).
    """
    if parsed.kb_jwt is None:
        raise VerificationError("所持者の鍵による署名がありません", "no key-binding JWT")
    cnf = payload.get("cnf")
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if jwk is None:
        raise VerificationError(
            "証明書に所持者の鍵（cnf）がないのに鍵署名が付いています",
            "a key-binding JWT is present but the credential has no holder key (cnf)",
        )
    what, what_en = "所持者の鍵署名", "key-binding JWT"
    kb = _jws.CompactJws(parsed.kb_jwt, what=what, what_en=what_en)
    kb.check_header(typ=KB_TYP, what=what, what_en=what_en)
    kb.verify(public_key_from_jwk(jwk), what=what, what_en=what_en)
    claims = kb.unverified_payload
    if claims.get("sd_hash") != _digest(parsed.sd_hash_input):
        raise VerificationError(
            "所持者の鍵署名が提示内容と一致しません（sd_hash）",
            "the key-binding JWT does not cover this presentation (sd_hash)",
        )
    for name, expected in (("nonce", nonce), ("aud", aud)):
        got = claims.get(name)
        if not isinstance(got, str) or (expected is not None and got != expected):
            raise VerificationError(
                f"所持者の鍵署名の {name} が一致しません", f"key-binding JWT {name} does not match"
            )
    iat = _numeric(claims, "iat", required=True)
    if iat is not None and not (now - max_age - skew <= iat <= now + skew):
        raise VerificationError(
            "所持者の鍵署名が古すぎるか未来の日時です",
            "the key-binding JWT is stale or from the future",
        )


@dataclass(frozen=True)
class VerifiedCredential:
    """What :func:`verify` returns: the trusted payload with disclosures applied."""

    issuer: str
    kid: str
    vct: str
    claims: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)
    key_bound: bool

    @property
    def disclosed(self) -> dict[str, Any]:
        """User claims only (no iss/iat/exp/vct/cnf/status)."""
        return {k: v for k, v in self.claims.items() if k not in REGISTERED_CLAIMS}


def check_vct(payload: Mapping[str, Any]) -> str:
    """Return ``vct`` or raise :class:`VerificationError` when it is absent."""
    vct = payload.get("vct")
    if not isinstance(vct, str) or not vct:
        raise VerificationError(
            "証明書の種類（vct）がありません", "the credential has no type (vct)"
        )
    return vct


def verify(
    text: str,
    *,
    resolve_key: KeyResolver,
    now: float,
    max_size: int = DEFAULT_MAX_SIZE,
    skew: int = DEFAULT_SKEW,
    require_key_binding: bool = False,
    nonce: str | None = None,
    aud: str | None = None,
) -> VerifiedCredential:
    """Verify an SD-JWT VC or presentation completely.

    Raises :class:`InvalidCredential` when it cannot be parsed and
    :class:`VerificationError` when it does not verify.
    """
    # (1) format
    parsed = ParsedSdJwt.parse(text, max_size=max_size)
    # (2) header and issuer signature, with the key the caller trusts
    payload = verify_issuer_signature(parsed, resolve_key)
    vct = check_vct(payload)
    # (3) disclosures
    claims = apply_disclosures(payload, parsed.disclosures)
    # (4) validity period
    check_validity(payload, now=now, skew=skew)
    # (5) holder binding
    if parsed.kb_jwt is not None or require_key_binding:
        verify_key_binding(parsed, payload, now=now, nonce=nonce, aud=aud, skew=skew)
    return VerifiedCredential(
        issuer=payload["iss"],
        kid=parsed.unverified_header["kid"],
        vct=vct,
        claims=claims,
        payload=payload,
        key_bound=parsed.kb_jwt is not None,
    )
