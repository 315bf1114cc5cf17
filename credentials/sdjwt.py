"""SD-JWT VC (RFC 9901 SD-JWT, IETF SD-JWT VC draft): issue, present, verify.

Issuer, holder and verifier functions share only parsing; none imports the others'
state. Every time is a parameter (``now`` in seconds since the epoch), randomness is a
parameter (``salt_source``), and the verifier's key comes from a caller-supplied
resolver keyed by ``iss`` and ``kid`` — never from the token's own headers.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from . import _jws
from ._b64 import b64d, b64e
from .errors import InvalidCredential, VerificationError
from .keys import SigningKey, public_key_from_jwk

TYP = "dc+sd-jwt"
KB_TYP = "kb+jwt"
SD_ALG = "sha-256"
SALT_BYTES = 16  # 128 bits, RFC 9901 §9.3
DEFAULT_MAX_SIZE = 64 * 1024
DEFAULT_SKEW = 60
DEFAULT_KB_MAX_AGE = 600

#: Claims the SD-JWT VC format defines; never selectively disclosable, never user data.
REGISTERED_CLAIMS = frozenset(
    {"iss", "iat", "exp", "nbf", "vct", "cnf", "status", "sub", "_sd", "_sd_alg", "vct#integrity"}
)
_RESERVED_NAMES = frozenset({"_sd", "..."})
_RESERVED_AT_TOP = REGISTERED_CLAIMS | _RESERVED_NAMES

KeyResolver = Callable[[str, str], ec.EllipticCurvePublicKey]
SaltSource = Callable[[int], bytes]


_STD_TO_URL = bytes.maketrans(b"+/", b"-_")


def _digest(encoded: str) -> str:
    """base64url(SHA-256(ASCII disclosure)): 32 bytes are 43 characters plus one "="."""
    raw = hashlib.sha256(encoded.encode("ascii")).digest()
    return binascii.b2a_base64(raw, newline=False)[:43].translate(_STD_TO_URL).decode("ascii")


# --------------------------------------------------------------------------- issuer


class Disclosure(NamedTuple):
    """One disclosure: ``encoded`` is what travels; ``name`` is None for array items.

    A named tuple rather than a frozen dataclass: a verifier builds a dozen per
    credential and tuple construction is several times cheaper.
    """

    encoded: str
    salt: str
    name: str | None
    value: Any
    digest: str


def _make_disclosures(
    claims: Mapping[str, Any], names: list[str], salts: bytes
) -> list[Disclosure]:
    """One disclosure per name. The issuing hot path: base64url is inlined (16-byte
    salts are 22 characters plus "==")."""
    b2a, to_url, sha256, dumps = binascii.b2a_base64, _STD_TO_URL, hashlib.sha256, _jws.compact_json
    out = []
    for i, name in enumerate(names):
        salt = b2a(salts[i * SALT_BYTES : (i + 1) * SALT_BYTES], newline=False)
        salt_s = salt[:22].translate(to_url).decode("ascii")
        value = claims[name]
        raw = b2a(dumps([salt_s, name, value]), newline=False).translate(to_url).rstrip(b"=")
        digest = b2a(sha256(raw).digest(), newline=False)[:43].translate(to_url).decode("ascii")
        out.append(Disclosure(raw.decode("ascii"), salt_s, name, value, digest))
    return out


@dataclass(frozen=True)
class IssuedCredential:
    """An issued SD-JWT VC: the issuer-signed JWT and every disclosure."""

    jwt: str
    disclosures: tuple[Disclosure, ...]
    payload: dict[str, Any] = field(repr=False)

    @property
    def sd_jwt(self) -> str:
        """The SD-JWT with all disclosures, as handed to the holder."""
        return "~".join([self.jwt, *(d.encoded for d in self.disclosures)]) + "~"


_header_cache: dict[tuple[str, str], str] = {}


def _issuer_header(kid: str) -> str:
    cached = _header_cache.get((kid, TYP))
    if cached is None:
        cached = _jws.encode_header({"alg": _jws.ALG, "kid": kid, "typ": TYP})
        _header_cache[(kid, TYP)] = cached
    return cached


def _check_nested_names(path: str, node: Any) -> None:
    """Reject ``_sd`` and ``...`` anywhere inside a claim value: a verifier would read
    them as digests and silently drop or empty the value."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _RESERVED_NAMES:
                raise ValueError(f"claim name {k!r} (in {path}) is reserved by SD-JWT")
            _check_nested_names(f"{path}.{k}", v)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_nested_names(f"{path}[{i}]", v)


def issue(
    claims: Mapping[str, Any],
    *,
    key: SigningKey,
    issuer: str,
    vct: str,
    iat: int,
    exp: int | None,
    nbf: int | None = None,
    always_plain: Collection[str] = (),
    holder_jwk: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
    decoys: int = 0,
    salt_source: SaltSource = os.urandom,
) -> IssuedCredential:
    """Sign an SD-JWT VC in which every top-level claim except ``always_plain`` is
    selectively disclosable.

    ``decoys`` adds that many random digests so the number of hidden claims leaks less.
    Raises ``ValueError`` for a claim name the format reserves, at the top level or
    (``_sd``, ``...``) nested inside a value.
    """
    if not _RESERVED_AT_TOP.isdisjoint(claims):
        name = next(n for n in claims if n in _RESERVED_AT_TOP)
        raise ValueError(f"claim name {name!r} is reserved by SD-JWT VC")
    for name, value in claims.items():
        if isinstance(value, dict | list):
            _check_nested_names(name, value)
    sd_names = [n for n in claims if n not in always_plain]
    salts = salt_source(SALT_BYTES * (len(sd_names) + decoys))
    disclosures = tuple(_make_disclosures(claims, sd_names, salts))
    digests = [d.digest for d in disclosures]
    base = SALT_BYTES * len(sd_names)
    digests += [
        b64e(hashlib.sha256(salts[base + i * SALT_BYTES : base + (i + 1) * SALT_BYTES]).digest())
        for i in range(decoys)
    ]
    # Sorted digests hide the claims' order (RFC 9901 §4.2.4.1).
    digests.sort()
    payload: dict[str, Any] = {n: claims[n] for n in claims if n in always_plain}
    payload.update({"iss": issuer, "iat": iat, "vct": vct, "_sd": digests, "_sd_alg": SD_ALG})
    if exp is not None:
        payload["exp"] = exp
    if nbf is not None:
        payload["nbf"] = nbf
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    if status is not None:
        payload["status"] = dict(status)
    jwt = _jws.sign(_issuer_header(key.kid), payload, key.private_key)
    return IssuedCredential(jwt=jwt, disclosures=disclosures, payload=payload)


# --------------------------------------------------------------------------- parsing


def _parse_disclosure(encoded: str) -> Disclosure:
    """Parse one disclosure strictly (see :func:`_parse_raw`)."""
    digest, salt, name, value = _parse_raw(encoded)
    return Disclosure(encoded, salt, name, value, digest)


def _parse_raw(encoded: str) -> tuple[str, str, str | None, Any]:
    """Parse one disclosure strictly into ``(digest, salt, name, value)``.

    Raises :class:`InvalidCredential` when it is not ``[salt, name, value]`` or
    ``[salt, value]`` JSON, :class:`VerificationError` for a reserved claim name.

    On every verification's hot path, so the common case is inlined: compact JSON
    that survives an orjson round trip byte for byte (which also proves it has no
    duplicate member names) skips the slower strict parser.
    """
    try:
        raw = b64d(encoded)
        arr = orjson.loads(raw)
        if orjson.dumps(arr) != raw:
            arr = _jws.loads_strict(raw)
    except ValueError:
        raise InvalidCredential(
            "開示情報（disclosure）を解析できません", "a disclosure cannot be parsed"
        ) from None
    if type(arr) is not list or len(arr) not in (2, 3) or type(arr[0]) is not str:
        raise InvalidCredential(
            "開示情報（disclosure）の形式が不正です",
            "a disclosure is not [salt, name, value] or [salt, value]",
        )
    name = None
    if len(arr) == 3:
        name = arr[1]
        if type(name) is not str:
            raise InvalidCredential(
                "開示情報の項目名が文字列ではありません",
                "a disclosure's claim name is not a string",
            )
        if name in _RESERVED_NAMES:
            raise VerificationError(
                f"開示情報の項目名 {name!r} は使用できません",
                f"a disclosure uses the reserved claim name {name!r}",
            )
    digest = binascii.b2a_base64(hashlib.sha256(encoded.encode("ascii")).digest(), newline=False)
    return digest[:43].translate(_STD_TO_URL).decode("ascii"), arr[0], name, arr[-1]


@dataclass(frozen=True)
class ParsedSdJwt:
    """An SD-JWT (+KB) split into its parts. Nothing in it is verified yet."""

    jws: _jws.CompactJws = field(repr=False)
    jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None
    sd_hash_input: str

    @property
    def unverified_payload(self) -> dict[str, Any]:
        return self.jws.unverified_payload

    @property
    def unverified_header(self) -> dict[str, Any]:
        return self.jws.unverified_header

    @classmethod
    def parse(cls, text: str, *, max_size: int = DEFAULT_MAX_SIZE) -> ParsedSdJwt:
        """Split ``JWT~D1~…~Dn~[KB-JWT]``. Raises :class:`InvalidCredential`."""
        if len(text) > max_size:
            raise InvalidCredential(
                f"入力が大きすぎます（{len(text)} バイト、上限 {max_size} バイト）",
                f"input too large ({len(text)} bytes, limit {max_size})",
            )
        if not text.isascii():
            raise InvalidCredential(
                "SD-JWTにASCII以外の文字が含まれています",
                "the SD-JWT contains non-ASCII characters",
            )
        parts = text.split("~")
        if len(parts) < 2:
            raise InvalidCredential(
                "SD-JWTではありません（「~」区切りがありません）",
                "not an SD-JWT (no '~' separator)",
            )
        disclosures = tuple(parts[1:-1])
        if "" in disclosures:
            raise InvalidCredential(
                "SD-JWTに空の開示情報があります", "the SD-JWT has an empty disclosure"
            )
        kb = parts[-1] or None
        jws = _jws.CompactJws(parts[0], what="発行者の署名付きJWT", what_en="issuer-signed JWT")
        sd_hash_input = text[: len(text) - len(parts[-1])]
        return cls(
            jws=jws, jwt=parts[0], disclosures=disclosures, kb_jwt=kb, sd_hash_input=sd_hash_input
        )


# --------------------------------------------------------------------------- holder


def _claim_owner_map(
    payload: Mapping[str, Any], disclosures: Mapping[str, Disclosure]
) -> dict[str, str]:
    """Map each reachable disclosure digest to the top-level claim it belongs to."""
    owners: dict[str, str] = {}

    def walk(node: Any, top: str | None) -> None:
        if isinstance(node, dict):
            for digest in node.get("_sd", ()) if isinstance(node.get("_sd"), list) else ():
                d = disclosures.get(digest) if isinstance(digest, str) else None
                if d is not None and d.name is not None:
                    owner = top or d.name
                    owners[digest] = owner
                    walk(d.value, owner)
            for k, v in node.items():
                if k not in ("_sd", "_sd_alg"):
                    walk(v, top or k)
        elif isinstance(node, list):
            for item in node:
                ref = item.get("...") if isinstance(item, dict) and len(item) == 1 else None
                d = disclosures.get(ref) if isinstance(ref, str) else None
                if d is not None and top is not None:
                    owners[d.digest] = top
                    walk(d.value, top)
                else:
                    walk(item, top)

    walk(payload, None)
    return owners


def claim_names(sd_jwt: str) -> list[str]:
    """The top-level claim names a holder can choose to disclose, in issuance order."""
    parsed = ParsedSdJwt.parse(sd_jwt)
    discs = {d.digest: d for d in map(_parse_disclosure, parsed.disclosures)}
    owners = _claim_owner_map(parsed.unverified_payload, discs)
    return list(dict.fromkeys(owners[d.digest] for d in discs.values() if d.digest in owners))


def present(
    sd_jwt: str,
    *,
    disclose: Collection[str],
    holder_key: SigningKey | None = None,
    nonce: str | None = None,
    aud: str | None = None,
    iat: int | None = None,
) -> str:
    """The holder's presentation revealing only the top-level claims in ``disclose``.

    With ``holder_key``, appends a key-binding JWT over ``nonce``, ``aud``, ``iat`` and
    the presentation's ``sd_hash``. Raises ``ValueError`` for a claim the credential
    does not have, or a key binding without nonce/aud/iat.
    """
    parsed = ParsedSdJwt.parse(sd_jwt)
    discs = [_parse_disclosure(d) for d in parsed.disclosures]
    owners = _claim_owner_map(parsed.unverified_payload, {d.digest: d for d in discs})
    available = set(owners.values())
    missing = [n for n in disclose if n not in available]
    if missing:
        raise ValueError(
            f"この証明書にない項目です: {', '.join(missing)} / not in this credential: "
            f"{', '.join(missing)} (available: {', '.join(sorted(available))})"
        )
    wanted = set(disclose)
    chosen = [d.encoded for d in discs if owners.get(d.digest) in wanted]
    text = "~".join([parsed.jwt, *chosen]) + "~"
    if holder_key is None:
        return text
    if nonce is None or aud is None or iat is None:
        raise ValueError("a key-binding JWT needs nonce, aud and iat")
    kb_payload = {"aud": aud, "iat": iat, "nonce": nonce, "sd_hash": _digest(text)}
    header = _jws.encode_header({"alg": _jws.ALG, "typ": KB_TYP})
    return text + _jws.sign(header, kb_payload, holder_key.private_key)


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


class _Discloser:
    """Replaces digests by disclosed values (RFC 9901 §7.1, steps 3-5)."""

    def __init__(self, disclosures: Collection[str]) -> None:
        # digest -> (name, value); name is None for an array element.
        self.by_digest: dict[str, tuple[str | None, Any]] = {}
        for encoded in disclosures:
            digest, _salt, name, value = _parse_raw(encoded)
            if digest in self.by_digest:
                raise VerificationError(
                    "同じ開示情報が2回含まれています", "the same disclosure is included twice"
                )
            self.by_digest[digest] = (name, value)
        self.seen: set[str] = set()

    def _take(self, digest: Any) -> tuple[str | None, Any] | None:
        if type(digest) is not str:
            raise VerificationError(
                "ダイジェストが文字列ではありません", "a digest is not a string"
            )
        if digest in self.seen:
            raise VerificationError(
                "同じダイジェストが2回使われています", "a digest appears more than once"
            )
        self.seen.add(digest)
        return self.by_digest.get(digest)

    def object(self, node: dict[str, Any]) -> dict[str, Any]:
        if "..." in node:
            raise VerificationError("項目名「...」は使用できません", "'...' is not a claim name")
        value = self.value
        # Scalars are copied as they are; only containers can hide digests.
        out = {
            k: value(v) if isinstance(v, dict | list) else v for k, v in node.items() if k != "_sd"
        }
        sd = node.get("_sd")
        if sd is None:
            return out
        if type(sd) is not list:
            raise VerificationError("_sd が配列ではありません", "_sd is not an array")
        for digest in sd:
            d = self._take(digest)
            if d is None:
                continue  # a decoy, or a claim the holder did not disclose
            name, v = d
            if name is None:
                raise VerificationError(
                    "配列要素用の開示情報が項目として使われています",
                    "an array-element disclosure is referenced as an object property",
                )
            if name in out:
                raise VerificationError(
                    f"開示された項目 {name!r} が既存の項目を上書きします",
                    f"disclosed claim {name!r} would overwrite an existing claim",
                )
            out[name] = value(v) if isinstance(v, dict | list) else v
        return out

    def array(self, node: list[Any]) -> list[Any]:
        out = []
        for item in node:
            if isinstance(item, dict) and "..." in item:
                if len(item) != 1:
                    raise VerificationError(
                        "配列要素の参照に余分な項目があります",
                        "an array-element reference has extra members",
                    )
                d = self._take(item["..."])
                if d is None:
                    continue
                if d[0] is not None:
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
    out = discloser.object({k: v for k, v in payload.items() if k != "_sd_alg"})
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
