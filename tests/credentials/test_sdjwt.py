"""SD-JWT VC issue, present and verify (RFC 9901, IETF SD-JWT VC draft)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from credentials import sdjwt
from credentials.errors import InvalidCredential, VerificationError
from credentials.keys import SigningKey
from credentials.trust import TrustList

ISSUER = "https://city.iizuka.example"
VCT = f"{ISSUER}/vct/juminhyo/1"
T0 = 1_760_000_000  # 2025-10-09T08:53:20Z
DAY = 86_400
NONCE = "n-0S6_WzA2Mj"
AUD = "https://verifier.example.jp"

CLAIMS: dict[str, Any] = {
    "family_name": "山田",
    "given_name": "太郎",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "タロウ",
    "birthdate": "1990-04-01",
    "sex": "男",
    "address": "福岡県飯塚市新立岩5番5号",
    "resident_since": "2015-04-01",
}


# --------------------------------------------------------------------------- helpers


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def decode_part(part: str) -> Any:
    return json.loads(unb64(part))


def es256(signing_input: str, key: SigningKey) -> str:
    der = key.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def sign_jwt(header: dict[str, Any], payload: dict[str, Any], key: SigningKey) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    return f"{signing_input}.{es256(signing_input, key)}"


def resign(
    jwt: str,
    key: SigningKey,
    *,
    header: Callable[[dict[str, Any]], None] | None = None,
    payload: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """Decode a JWT, let the callbacks edit header and payload in place, sign again."""
    h, p, _ = jwt.split(".")
    hd, pd = decode_part(h), decode_part(p)
    if header:
        header(hd)
    if payload:
        payload(pd)
    return sign_jwt(hd, pd, key)


def disclosure(*parts: Any) -> tuple[str, str]:
    """An encoded disclosure and its digest."""
    encoded = b64json(list(parts))
    return encoded, b64(hashlib.sha256(encoded.encode("ascii")).digest())


def counting_salts() -> Callable[[int], bytes]:
    """A deterministic salt source: byte i of the stream is i mod 251."""
    pos = 0

    def source(n: int) -> bytes:
        nonlocal pos
        out = bytes((pos + i) % 251 for i in range(n))
        pos += n
        return out

    return source


@pytest.fixture(scope="module")
def trust(issuer_key: SigningKey) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISSUER, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )


@pytest.fixture(scope="module")
def bound(issuer_key: SigningKey, holder_key: SigningKey) -> sdjwt.IssuedCredential:
    """A 住民票-like credential bound to the holder's key."""
    return sdjwt.issue(
        CLAIMS,
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=T0 + 92 * DAY,
        holder_jwk=holder_key.jwk,
    )


@pytest.fixture(scope="module")
def unbound(issuer_key: SigningKey) -> sdjwt.IssuedCredential:
    return sdjwt.issue(CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=T0 + 92 * DAY)


def with_kb(
    cred: sdjwt.IssuedCredential,
    key: SigningKey,
    disclose: tuple[str, ...] = ("family_name", "address"),
    *,
    iat: int = T0 + 10,
) -> str:
    return sdjwt.present(
        cred.sd_jwt, disclose=disclose, holder_key=key, nonce=NONCE, aud=AUD, iat=iat
    )


# --------------------------------------------------------------------------- issue


def test_every_claim_is_selectively_disclosable_except_always_plain(issuer_key):
    cred = sdjwt.issue(
        {**CLAIMS, "recognized_by": ["402052", "401005"]},
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=T0 + DAY,
        always_plain=["recognized_by"],
    )
    assert {d.name for d in cred.disclosures} == set(CLAIMS), "every personal claim is a disclosure"
    assert cred.payload["recognized_by"] == ["402052", "401005"], "always_plain stays in clear"
    assert not set(CLAIMS) & set(cred.payload), "no personal claim appears in the signed payload"
    assert len(cred.payload["_sd"]) == len(CLAIMS)


def test_registered_claims_are_plain_in_the_payload(issuer_key, holder_key):
    status = {"status_list": {"idx": 7, "uri": f"{ISSUER}/status/1"}}
    cred = sdjwt.issue(
        CLAIMS,
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=T0 + DAY,
        nbf=T0 + 5,
        holder_jwk=holder_key.jwk,
        status=status,
    )
    payload = decode_part(cred.jwt.split(".")[1])
    assert payload["iss"] == ISSUER
    assert payload["vct"] == VCT
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (T0, T0 + 5, T0 + DAY)
    assert payload["cnf"] == {"jwk": holder_key.jwk}
    assert payload["status"] == status
    assert payload["_sd_alg"] == "sha-256"
    assert payload == cred.payload, "the signed payload is the one reported"


def test_no_exp_means_no_exp_claim(issuer_key):
    cred = sdjwt.issue(CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None)
    assert "exp" not in cred.payload
    assert "nbf" not in cred.payload


def test_header_is_es256_dc_sd_jwt_with_thumbprint_kid(unbound, issuer_key):
    header = decode_part(unbound.jwt.split(".")[0])
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": issuer_key.kid}
    assert "jwk" not in header and "x5c" not in header, "no key material in the header"


@pytest.mark.parametrize("name", ["iss", "vct", "cnf", "status", "exp", "_sd", "_sd_alg", "..."])
def test_reserved_claim_names_are_rejected(issuer_key, name):
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        sdjwt.issue({**CLAIMS, name: "x"}, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None)


@pytest.mark.parametrize(
    "value",
    [
        {"_sd": ["x"]},
        {"line1": "1-1", "inner": {"...": "y"}},
        [{"...": "digest-looking"}],
        [1, [{"_sd": []}]],
    ],
    ids=["nested-_sd", "nested-dots", "array-dots", "deep-_sd"],
)
def test_reserved_names_inside_claim_values_are_rejected(issuer_key, value):
    """A nested ``_sd`` or ``...`` would be read as a digest by every verifier."""
    with pytest.raises(ValueError, match="reserved"):
        sdjwt.issue({"address": value}, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None)


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, [10**30, 1], {"n": 2**70}, 1.5e300, [0.1, -0.0]],
    ids=["2^64", "below-int64", "in-list", "in-object", "huge-float", "floats"],
)
def test_numbers_survive_the_round_trip_exactly(issuer_key, trust, value):
    cred = sdjwt.issue({"amount": value}, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None)
    got = sdjwt.verify(cred.sd_jwt, resolve_key=trust.resolve_key, now=T0).disclosed["amount"]
    assert got == value
    assert json.dumps(got) == json.dumps(value), "an integer stays an integer"


def test_salts_are_128_bits_and_distinct(issuer_key):
    cred = sdjwt.issue(CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None)
    salts = [d.salt for d in cred.disclosures]
    assert all(len(unb64(s)) >= 16 for s in salts), "salts carry at least 128 bits"
    assert len(set(salts)) == len(salts), "no two disclosures share a salt"
    for d in cred.disclosures:
        assert decode_part(d.encoded) == [d.salt, d.name, d.value]


def test_salt_source_is_asked_for_16_bytes_per_disclosure_and_decoy(issuer_key):
    asked: list[int] = []
    source = counting_salts()

    def recording(n: int) -> bytes:
        asked.append(n)
        return source(n)

    cred = sdjwt.issue(
        CLAIMS,
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=None,
        decoys=3,
        salt_source=recording,
    )
    assert sum(asked) == 16 * (len(CLAIMS) + 3)
    assert unb64(cred.disclosures[0].salt) == bytes(range(16))


def test_fixed_salt_source_gives_identical_disclosures(issuer_key):
    def make() -> sdjwt.IssuedCredential:
        return sdjwt.issue(
            CLAIMS,
            key=issuer_key,
            issuer=ISSUER,
            vct=VCT,
            iat=T0,
            exp=None,
            decoys=2,
            salt_source=counting_salts(),
        )

    a, b = make(), make()
    assert a.disclosures == b.disclosures
    assert a.payload == b.payload, "same salts, same digests, same payload"


@pytest.mark.parametrize("decoys", [0, 1, 5, 32])
def test_decoys_are_counted(issuer_key, trust, decoys):
    cred = sdjwt.issue(
        CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None, decoys=decoys
    )
    digests = cred.payload["_sd"]
    assert len(digests) == len(CLAIMS) + decoys
    assert len(set(digests)) == len(digests), "decoys are distinct from each other and claims"
    real = {d.digest for d in cred.disclosures}
    assert len(set(digests) - real) == decoys
    verified = sdjwt.verify(cred.sd_jwt, resolve_key=trust.resolve_key, now=T0)
    assert verified.disclosed == CLAIMS, "decoys never surface as claims"


def test_digests_are_sorted(issuer_key):
    cred = sdjwt.issue(CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None, decoys=4)
    assert cred.payload["_sd"] == sorted(cred.payload["_sd"]), "sorted digests hide claim order"


def test_disclosure_is_compact_utf8_json_and_digest_is_sha256_of_its_encoding(unbound):
    d = next(d for d in unbound.disclosures if d.name == "address")
    raw = unb64(d.encoded)
    assert (
        raw
        == json.dumps(
            [d.salt, "address", CLAIMS["address"]], separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert "福岡県".encode() in raw, "Japanese travels as UTF-8, not \\u escapes"
    assert d.digest == b64(hashlib.sha256(d.encoded.encode("ascii")).digest())
    assert d.digest in unbound.payload["_sd"]


def test_issued_sd_jwt_carries_every_disclosure_and_ends_with_tilde(unbound):
    parts = unbound.sd_jwt.split("~")
    assert parts[0] == unbound.jwt
    assert parts[1:-1] == [d.encoded for d in unbound.disclosures]
    assert parts[-1] == "", "an SD-JWT without key binding ends with '~'"


# --------------------------------------------------------------------------- present


def test_claim_names_lists_disclosable_claims_in_issuance_order(unbound):
    assert sdjwt.claim_names(unbound.sd_jwt) == list(CLAIMS)


@pytest.mark.parametrize(
    "chosen",
    [(), ("family_name",), ("family_name", "given_name", "birthdate"), tuple(CLAIMS)],
    ids=["none", "one", "three", "all"],
)
def test_present_discloses_exactly_the_chosen_claims(unbound, trust, chosen):
    text = sdjwt.present(unbound.sd_jwt, disclose=chosen)
    parts = text.split("~")
    assert parts[0] == unbound.jwt
    assert len(parts) - 2 == len(chosen), "one disclosure per chosen claim"
    verified = sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0)
    assert verified.disclosed == {n: CLAIMS[n] for n in chosen}


def test_present_of_a_presentation_narrows_it(unbound, trust):
    wide = sdjwt.present(unbound.sd_jwt, disclose=["family_name", "address", "sex"])
    narrow = sdjwt.present(wide, disclose=["sex"])
    assert sdjwt.verify(narrow, resolve_key=trust.resolve_key, now=T0).disclosed == {"sex": "男"}
    with pytest.raises(ValueError, match="not in this credential: birthdate"):
        sdjwt.present(wide, disclose=["birthdate"])


def test_present_unknown_claim_raises_value_error_naming_it(unbound):
    with pytest.raises(
        ValueError, match=r"この証明書にない項目です: nickname .*available: address"
    ):
        sdjwt.present(unbound.sd_jwt, disclose=["family_name", "nickname"])


@pytest.mark.parametrize("missing", ["nonce", "aud", "iat"])
def test_key_binding_needs_nonce_aud_and_iat(bound, holder_key, missing):
    args: dict[str, Any] = {"nonce": NONCE, "aud": AUD, "iat": T0}
    args[missing] = None
    with pytest.raises(ValueError, match="needs nonce, aud and iat"):
        sdjwt.present(bound.sd_jwt, disclose=["sex"], holder_key=holder_key, **args)


def test_key_binding_jwt_shape(bound, holder_key):
    text = with_kb(bound, holder_key)
    head, _, kb = text.rpartition("~")
    h, p, _ = kb.split(".")
    assert decode_part(h) == {"alg": "ES256", "typ": "kb+jwt"}
    assert decode_part(p) == {
        "aud": AUD,
        "iat": T0 + 10,
        "nonce": NONCE,
        "sd_hash": b64(hashlib.sha256((head + "~").encode()).digest()),
    }


# --------------------------------------------------------------------------- verify


def test_verify_full_sd_jwt(unbound, trust, issuer_key):
    v = sdjwt.verify(unbound.sd_jwt, resolve_key=trust.resolve_key, now=T0 + DAY)
    assert v.issuer == ISSUER
    assert v.kid == issuer_key.kid
    assert v.vct == VCT
    assert v.disclosed == CLAIMS
    assert v.claims["iss"] == ISSUER and "_sd" not in v.claims and "_sd_alg" not in v.claims
    assert v.key_bound is False


def test_resolver_is_asked_for_the_tokens_iss_and_kid(unbound, issuer_key):
    asked: list[tuple[str, str]] = []

    def resolve(iss: str, kid: str) -> ec.EllipticCurvePublicKey:
        asked.append((iss, kid))
        return issuer_key.public_key

    sdjwt.verify(unbound.sd_jwt, resolve_key=resolve, now=T0)
    assert asked == [(ISSUER, issuer_key.kid)]


def test_key_binding_happy_path(bound, holder_key, trust):
    text = with_kb(bound, holder_key)
    v = sdjwt.verify(
        text,
        resolve_key=trust.resolve_key,
        now=T0 + 60,
        require_key_binding=True,
        nonce=NONCE,
        aud=AUD,
    )
    assert v.key_bound is True
    assert v.disclosed == {"family_name": "山田", "address": CLAIMS["address"]}


def test_key_binding_is_checked_even_when_not_required(bound, attacker_key, trust):
    text = with_kb(bound, attacker_key)
    with pytest.raises(VerificationError, match="key-binding JWT signature does not match"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0)


def _drop_first_disclosure(text: str) -> str:
    parts = text.split("~")
    return "~".join([parts[0], *parts[2:]])


def _foreign_kb(text: str, other: str) -> str:
    return text.rpartition("~")[0] + "~" + other.rpartition("~")[2]


KB_FAILURES = {
    # name: (how to build the presentation, verify kwargs, message)
    "wrong-nonce": (None, {"nonce": "another-nonce"}, "key-binding JWT nonce does not match"),
    "wrong-aud": (None, {"aud": "https://evil.example"}, "key-binding JWT aud does not match"),
    "stale-iat": (None, {"now": T0 + 10 + 600 + 60 + 1}, "stale or from the future"),
    "future-iat": (None, {"now": T0 + 10 - 61}, "stale or from the future"),
    "disclosure-removed": (
        _drop_first_disclosure,
        {},
        r"does not cover this presentation \(sd_hash\)",
    ),
}


@pytest.mark.parametrize("case", list(KB_FAILURES))
def test_key_binding_failures(bound, holder_key, trust, case):
    mutate, overrides, message = KB_FAILURES[case]
    text = with_kb(bound, holder_key)
    if mutate:
        text = mutate(text)
    kwargs: dict[str, Any] = {"now": T0 + 60, "nonce": NONCE, "aud": AUD, **overrides}
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(text, resolve_key=trust.resolve_key, require_key_binding=True, **kwargs)


@pytest.mark.parametrize("now", [T0 + 10 + 600 + 60, T0 + 10 - 60], ids=["oldest", "newest"])
def test_key_binding_iat_within_max_age_and_skew_is_accepted(bound, holder_key, trust, now):
    text = with_kb(bound, holder_key)
    v = sdjwt.verify(text, resolve_key=trust.resolve_key, now=now, nonce=NONCE, aud=AUD)
    assert v.key_bound


def test_key_binding_from_another_presentation_is_rejected(bound, holder_key, trust):
    mine = with_kb(bound, holder_key, ("family_name",))
    other = with_kb(bound, holder_key, ("address",))
    with pytest.raises(VerificationError, match=r"\(sd_hash\)"):
        sdjwt.verify(_foreign_kb(mine, other), resolve_key=trust.resolve_key, now=T0 + 60)


def test_key_binding_signed_by_another_key_is_rejected(bound, attacker_key, trust):
    text = with_kb(bound, attacker_key)
    with pytest.raises(VerificationError, match="所持者の鍵署名の署名が一致しません"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0 + 60, nonce=NONCE, aud=AUD)


def test_key_binding_without_cnf_is_rejected(unbound, holder_key, trust):
    text = with_kb(unbound, holder_key)
    with pytest.raises(VerificationError, match=r"the credential has no holder key \(cnf\)"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0 + 60, nonce=NONCE, aud=AUD)


def test_required_key_binding_missing_is_rejected(bound, trust):
    text = sdjwt.present(bound.sd_jwt, disclose=["sex"])
    with pytest.raises(VerificationError, match="no key-binding JWT"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0, require_key_binding=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h, p: h.update(typ="JWT"), "key-binding JWT typ is 'JWT', expected kb\\+jwt"),
        (lambda h, p: h.update(alg="ES384"), "key-binding JWT algorithm 'ES384' is not accepted"),
        (lambda h, p: p.pop("iat"), "iat is not a number"),
        (lambda h, p: p.update(iat="1760000010"), "iat is not a number"),
        (lambda h, p: p.pop("nonce"), "nonce does not match"),
        (lambda h, p: p.pop("sd_hash"), r"\(sd_hash\)"),
    ],
    ids=["typ-JWT", "alg-ES384", "no-iat", "string-iat", "no-nonce", "no-sd_hash"],
)
def test_malformed_key_binding_jwt_is_rejected(bound, holder_key, trust, edit, message):
    text = with_kb(bound, holder_key)
    head, _, kb = text.rpartition("~")
    h, p, _ = kb.split(".")
    header, payload = decode_part(h), decode_part(p)
    edit(header, payload)
    forged = sign_jwt(header, payload, holder_key)
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(f"{head}~{forged}", resolve_key=trust.resolve_key, now=T0 + 60)


def test_unparseable_key_binding_jwt_is_invalid_credential(bound, trust):
    text = sdjwt.present(bound.sd_jwt, disclose=["sex"]) + "not-a-jwt"
    with pytest.raises(InvalidCredential, match="key-binding JWT is not a compact JWS"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0)


# --------------------------------------------------------------------------- time


def _timed(issuer_key: SigningKey, **times: int | None) -> str:
    args: dict[str, Any] = {"iat": T0, "exp": T0 + DAY, **times}
    return sdjwt.issue(CLAIMS, key=issuer_key, issuer=ISSUER, vct=VCT, **args).sd_jwt


@pytest.mark.parametrize(
    ("times", "now", "skew", "message"),
    [
        ({"exp": T0 + 100}, T0 + 100 + 60, 60, r"has expired \(exp\)"),
        ({"exp": T0 + 100}, T0 + 100, 0, r"has expired \(exp\)"),
        ({"exp": T0 + 100}, T0 + 10 * DAY, 60, "有効期限が切れています"),
        ({"nbf": T0 + 1000}, T0 + 1000 - 61, 60, r"not yet valid \(nbf\)"),
        ({"nbf": T0 + 1000}, T0 + 999, 0, "まだ有効期間が始まっていません"),
        ({"iat": T0 + 1000}, T0 + 1000 - 61, 60, r"issued in the future \(iat\)"),
        ({"iat": T0 + 1}, T0, 0, "発行日時が未来になっています"),
    ],
    ids=[
        "expired-beyond-skew",
        "expired-no-skew",
        "long-expired",
        "nbf-future",
        "nbf-no-skew",
        "iat-future",
        "iat-future-no-skew",
    ],
)
def test_time_checks_reject(issuer_key, trust, times, now, skew, message):
    text = _timed(issuer_key, **times)
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=now, skew=skew)


@pytest.mark.parametrize(
    ("times", "now"),
    [
        ({"exp": T0 + 100}, T0 + 100 + 59),
        ({"nbf": T0 + 1000}, T0 + 1000 - 60),
        ({"iat": T0 + 1000, "exp": T0 + DAY}, T0 + 1000 - 60),
        ({"exp": None}, T0 + 100 * 365 * DAY),
    ],
    ids=["exp-within-skew", "nbf-within-skew", "iat-within-skew", "no-exp"],
)
def test_time_checks_tolerate_skew(issuer_key, trust, times, now):
    text = _timed(issuer_key, **times)
    assert sdjwt.verify(text, resolve_key=trust.resolve_key, now=now).disclosed == CLAIMS


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(exp="2030-01-01"), "exp is not a number"),
        (lambda p: p.update(exp=True), "exp is not a number"),
        (lambda p: p.pop("iat"), "iat is not a number"),
        (lambda p: p.update(nbf=[T0]), "nbf is not a number"),
    ],
    ids=["exp-string", "exp-bool", "no-iat", "nbf-list"],
)
def test_malformed_times_are_rejected(unbound, issuer_key, trust, edit, message):
    jwt = resign(unbound.jwt, issuer_key, payload=edit)
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(jwt + "~", resolve_key=trust.resolve_key, now=T0)


# --------------------------------------------------------------------------- format, size


def test_size_limit(unbound, trust):
    text = unbound.sd_jwt
    assert sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0, max_size=len(text))
    with pytest.raises(InvalidCredential, match=rf"input too large \({len(text)} bytes, limit"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0, max_size=len(text) - 1)


def test_default_size_limit_is_64_kib(issuer_key, trust):
    text = sdjwt.issue(
        {"address": "x" * 70_000}, key=issuer_key, issuer=ISSUER, vct=VCT, iat=T0, exp=None
    ).sd_jwt
    with pytest.raises(InvalidCredential, match="limit 65536"):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eyJhbGciOiJFUzI1NiJ9.e30.AA", r"no '~' separator"),
        ("a.b~", "three parts expected"),
        ("住民票~", "non-ASCII"),
        ("e30.e30.AA~~", "empty disclosure"),
        ("!!.e30.AA~", r"bad base64url or JSON"),
        ("W10.e30.AA~", "not a JSON object"),
    ],
    ids=["no-tilde", "two-parts", "non-ascii", "empty-disclosure", "bad-b64", "header-array"],
)
def test_unparseable_input_is_invalid_credential(trust, text, message):
    with pytest.raises(InvalidCredential, match=message):
        sdjwt.verify(text, resolve_key=trust.resolve_key, now=T0)


def test_tampered_payload_fails_signature(unbound, trust):
    h, p, s = unbound.jwt.split(".")
    payload = decode_part(p)
    payload["exp"] += 365 * DAY
    forged = f"{h}.{b64json(payload)}.{s}"
    with pytest.raises(VerificationError, match="issuer-signed JWT signature does not match"):
        sdjwt.verify(forged + "~", resolve_key=trust.resolve_key, now=T0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(alg="none"), "algorithm 'none' is not accepted"),
        (lambda h: h.update(alg="HS256"), "algorithm 'HS256' is not accepted"),
        (lambda h: h.pop("typ"), "typ is None, expected dc\\+sd-jwt"),
        (lambda h: h.update(typ="vc+sd-jwt"), "typ is 'vc\\+sd-jwt'"),
        (lambda h: h.update(crit=["exp"]), "critical extensions"),
        (lambda h: h.pop("kid"), r"no key id \(kid\)"),
    ],
    ids=["alg-none", "alg-HS256", "no-typ", "typ-vc", "crit", "no-kid"],
)
def test_header_checks(unbound, issuer_key, trust, edit, message):
    jwt = resign(unbound.jwt, issuer_key, header=edit)
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(jwt + "~", resolve_key=trust.resolve_key, now=T0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.pop("iss"), r"no issuer \(iss\)"),
        (lambda p: p.pop("vct"), r"no type \(vct\)"),
        (lambda p: p.update(_sd_alg="sha-512"), "_sd_alg 'sha-512' is not accepted"),
    ],
    ids=["no-iss", "no-vct", "sd_alg"],
)
def test_payload_checks(unbound, issuer_key, trust, edit, message):
    jwt = resign(unbound.jwt, issuer_key, payload=edit)
    with pytest.raises(VerificationError, match=message):
        sdjwt.verify(jwt + "~", resolve_key=trust.resolve_key, now=T0)


# --------------------------------------------------------------------------- trust


def test_unknown_issuer_error_propagates_from_resolver(unbound, issuer_key):
    other = TrustList.from_json(
        TrustList.document(
            "https://other.example", name="他市", municipality_code="131016", jwks=[issuer_key.jwk]
        )
    )
    with pytest.raises(VerificationError, match=f"issuer {ISSUER} is not trusted"):
        sdjwt.verify(unbound.sd_jwt, resolve_key=other.resolve_key, now=T0)


def test_unknown_kid_error_propagates_from_resolver(unbound, attacker_key):
    other = TrustList.from_json(
        TrustList.document(
            ISSUER, name="飯塚市", municipality_code="402052", jwks=[attacker_key.jwk]
        )
    )
    with pytest.raises(VerificationError, match="is not registered for issuer 飯塚市"):
        sdjwt.verify(unbound.sd_jwt, resolve_key=other.resolve_key, now=T0)


@pytest.mark.parametrize("carrier", ["jwk", "x5c", "jku"])
def test_key_in_header_is_never_used(unbound, attacker_key, trust, carrier):
    """The attacker signs with a key it names in the header, under its own kid."""
    material = {
        "jwk": attacker_key.jwk,
        "x5c": ["MIIBattackercert"],
        "jku": "https://evil.example/jwks.json",
    }[carrier]

    def inject(h: dict[str, Any]) -> None:
        h[carrier] = material
        h["kid"] = attacker_key.kid

    jwt = resign(unbound.jwt, attacker_key, header=inject)
    with pytest.raises(VerificationError, match=f"key {attacker_key.kid} is not registered"):
        sdjwt.verify(jwt + "~", resolve_key=trust.resolve_key, now=T0)


def test_key_in_header_with_the_issuers_kid_fails_signature(unbound, attacker_key, trust):
    jwt = resign(unbound.jwt, attacker_key, header=lambda h: h.update(jwk=attacker_key.jwk))
    with pytest.raises(VerificationError, match="signature does not match"):
        sdjwt.verify(jwt + "~", resolve_key=trust.resolve_key, now=T0)


# --------------------------------------------------------------------------- nested


def test_nested_and_array_element_disclosures_present_and_verify(issuer_key, trust):
    """Hand-built: ``address`` discloses an object with its own ``_sd``; ``nationalities``
    holds one plain and one selectively disclosable element."""
    city, city_d = disclosure("c2FsdC1jaXR5LTAwMDAwMA", "city", "飯塚市")
    street, street_d = disclosure("c2FsdC1zdHJlZXQtMDAwMA", "street", "新立岩5-5")
    addr, addr_d = disclosure(
        "c2FsdC1hZGRyLTAwMDAwMA", "address", {"country": "JP", "_sd": sorted([city_d, street_d])}
    )
    elem, elem_d = disclosure("c2FsdC1lbGVtLTAwMDAwMA", "US")
    nat, nat_d = disclosure("c2FsdC1uYXQtMDAwMDAwMA", "nationalities", ["JP", {"...": elem_d}])
    payload = {
        "iss": ISSUER,
        "iat": T0,
        "vct": VCT,
        "_sd_alg": "sha-256",
        "_sd": sorted([addr_d, nat_d]),
    }
    jwt = sign_jwt({"alg": "ES256", "typ": "dc+sd-jwt", "kid": issuer_key.kid}, payload, issuer_key)
    full = "~".join([jwt, addr, city, street, nat, elem]) + "~"
    assert sdjwt.claim_names(full) == ["address", "nationalities"]
    v = sdjwt.verify(full, resolve_key=trust.resolve_key, now=T0)
    assert v.disclosed == {
        "address": {"country": "JP", "city": "飯塚市", "street": "新立岩5-5"},
        "nationalities": ["JP", "US"],
    }
    only_address = sdjwt.present(full, disclose=["address"])
    assert only_address.count("~") == 4, "the nested disclosures travel with their parent"
    v = sdjwt.verify(only_address, resolve_key=trust.resolve_key, now=T0)
    assert v.disclosed == {"address": {"country": "JP", "city": "飯塚市", "street": "新立岩5-5"}}
    partial = "~".join([jwt, nat]) + "~"
    v = sdjwt.verify(partial, resolve_key=trust.resolve_key, now=T0)
    assert v.disclosed == {"nationalities": ["JP"]}, "an undisclosed element is left out"


# --------------------------------------------------------------------------- property

_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: n not in sdjwt.REGISTERED_CLAIMS
)
_japanese = st.text(
    alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x30FF)
    | st.sampled_from("東京都千代田区霞が関福岡県飯塚市山田太郎花子〒－ー・　"),
    max_size=16,
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
    | _japanese
)
_nested_keys = st.text(max_size=8).filter(lambda k: k not in ("_sd", "..."))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_nested_keys, inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=50, deadline=None)
@given(
    claims=st.dictionaries(_names, _values, min_size=1, max_size=8),
    data=st.data(),
)
def test_issue_present_verify_round_trip(issuer_key, holder_key, claims, data):
    trust = TrustList.from_json(
        TrustList.document(ISSUER, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )
    chosen = data.draw(st.lists(st.sampled_from(sorted(claims)), unique=True), label="chosen")
    decoys = data.draw(st.integers(0, 3), label="decoys")
    key_binding = data.draw(st.booleans(), label="key_binding")
    cred = sdjwt.issue(
        claims,
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=T0 + DAY,
        holder_jwk=holder_key.jwk,
        decoys=decoys,
    )
    if key_binding:
        text = sdjwt.present(
            cred.sd_jwt, disclose=chosen, holder_key=holder_key, nonce=NONCE, aud=AUD, iat=T0
        )
    else:
        text = sdjwt.present(cred.sd_jwt, disclose=chosen)
    v = sdjwt.verify(
        text,
        resolve_key=trust.resolve_key,
        now=T0,
        require_key_binding=key_binding,
        nonce=NONCE if key_binding else None,
        aud=AUD if key_binding else None,
    )
    assert v.disclosed == {n: claims[n] for n in chosen}
    assert v.key_bound is key_binding


# --------------------------------------------------------------------------- members


@pytest.fixture(scope="module")
def aged(issuer_key: SigningKey, holder_key: SigningKey) -> sdjwt.IssuedCredential:
    """A 住民票-like credential whose age_equal_or_over members are disclosable alone."""
    return sdjwt.issue(
        {**CLAIMS, "age_equal_or_over": {"18": True, "20": False}},
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=T0 + 92 * DAY,
        disclosable_members={"age_equal_or_over"},
        holder_jwk=holder_key.jwk,
    )


def test_each_member_has_a_disclosure_of_its_own(aged):
    by_name = {}
    for d in aged.disclosures:
        _salt, name, value = json.loads(unb64(d.encoded))
        by_name[name] = (d.digest, value)
    assert len(aged.disclosures) == len(CLAIMS) + 3  # the object and its two members
    parent_digest, parent = by_name["age_equal_or_over"]
    assert parent_digest in aged.payload["_sd"]
    # The object's disclosure holds only its members' digests, sorted.
    assert parent == {"_sd": sorted([by_name["18"][0], by_name["20"][0]])}
    assert by_name["18"][1] is True and by_name["20"][1] is False
    assert by_name["18"][0] not in aged.payload["_sd"]
    assert "age_equal_or_over" not in aged.payload


@pytest.mark.parametrize(
    ("disclose", "count", "expected"),
    [
        (("age_equal_or_over.20",), 2, {"age_equal_or_over": {"20": False}}),
        (("age_equal_or_over.18",), 2, {"age_equal_or_over": {"18": True}}),
        (("age_equal_or_over",), 3, {"age_equal_or_over": {"18": True, "20": False}}),
        (
            ("family_name", "age_equal_or_over.18"),
            3,
            {"family_name": "山田", "age_equal_or_over": {"18": True}},
        ),
    ],
)
def test_a_member_is_disclosed_alone(aged, holder_key, trust, disclose, count, expected):
    presentation = with_kb(aged, holder_key, disclose)
    assert len(sdjwt.ParsedSdJwt.parse(presentation).disclosures) == count
    v = sdjwt.verify(presentation, resolve_key=trust.resolve_key, now=T0 + 20, nonce=NONCE, aud=AUD)
    assert v.disclosed == expected
    assert v.key_bound is True
    assert "birthdate" not in v.disclosed


def test_an_unknown_member_or_a_member_of_a_plain_claim_is_refused(aged):
    for path in ("age_equal_or_over.21", "family_name.x", "nothing.18", "age_equal_or_over."):
        with pytest.raises(ValueError, match=re.escape(path)):
            sdjwt.present(aged.sd_jwt, disclose=[path])


def test_members_of_a_plain_object_are_still_disclosed_one_by_one(issuer_key, trust):
    issued = sdjwt.issue(
        {"family_name": "山田", "age_equal_or_over": {"18": True, "20": True}},
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=T0,
        exp=None,
        always_plain={"age_equal_or_over"},
        disclosable_members={"age_equal_or_over"},
    )
    assert set(issued.payload["age_equal_or_over"]) == {"_sd"}
    presentation = sdjwt.present(issued.sd_jwt, disclose=["age_equal_or_over.20"])
    v = sdjwt.verify(presentation, resolve_key=trust.resolve_key, now=T0 + DAY)
    assert v.disclosed == {"age_equal_or_over": {"20": True}}


def test_disclosable_members_must_be_an_object(issuer_key):
    with pytest.raises(ValueError, match="must be an object"):
        sdjwt.issue(
            {"age_equal_or_over": True},
            key=issuer_key,
            issuer=ISSUER,
            vct=VCT,
            iat=T0,
            exp=None,
            disclosable_members={"age_equal_or_over"},
        )
