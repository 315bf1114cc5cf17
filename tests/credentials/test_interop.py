"""Interoperability with the IETF reference implementation (PyPI ``sd-jwt`` 0.10.4).

(a) What Shomei issues and presents, the reference verifier accepts with the same claims.
(b) What the reference issues and presents, Shomei's verifier accepts.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from credentials import sdjwt
from credentials.errors import VerificationError
from credentials.keys import SigningKey
from credentials.trust import TrustList

pytestmark = pytest.mark.interop

ISSUER = "https://city.iizuka.example"
VCT = f"{ISSUER}/vct/juminhyo/1"
NONCE = "interop-nonce-42"
AUD = "https://verifier.example.jp"
CLAIMS: dict[str, Any] = {
    "family_name": "山田",
    "given_name": "太郎",
    "family_name_kana": "ヤマダ",
    "birthdate": "1980-04-01",
    "sex": "男",
    "address": "福岡県飯塚市立岩1234番地5",
    "children": [{"given_name": "陽向", "birthdate": "2018-08-20"}],
    "amount_jpy": 12_650_000,
}
REGISTERED = {"iss", "iat", "exp", "nbf", "vct", "cnf", "status"}


def as_jwcrypto(key: SigningKey) -> JWK:
    return JWK.from_pyca(key.private_key)


def public_jwcrypto(key: SigningKey) -> JWK:
    return JWK(**key.jwk)


@pytest.fixture(scope="module")
def trust(issuer_key: SigningKey) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISSUER, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )


def reference_verify(presentation: str, issuer_key: SigningKey, **kwargs: Any) -> dict[str, Any]:
    """Run the reference verifier; its key callback insists on our iss, kid and typ."""
    asked: list[tuple[str, dict[str, Any]]] = []

    def issuer_key_for(iss: str, header: dict[str, Any]) -> JWK:
        asked.append((iss, header))
        assert iss == ISSUER
        assert header["kid"] == issuer_key.kid
        assert header["typ"] == "dc+sd-jwt"
        return public_jwcrypto(issuer_key)

    payload = SDJWTVerifier(presentation, issuer_key_for, **kwargs).get_verified_payload()
    assert len(asked) == 1, "the reference verifier asked for the issuer key once"
    return payload


def user_claims(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in REGISTERED}


# --------------------------------------------------------------------------- (a)


@pytest.fixture(scope="module")
def shomei_credential(issuer_key: SigningKey, holder_key: SigningKey) -> sdjwt.IssuedCredential:
    now = int(time.time())
    return sdjwt.issue(
        CLAIMS,
        key=issuer_key,
        issuer=ISSUER,
        vct=VCT,
        iat=now - 60,
        exp=now + 92 * 86_400,
        holder_jwk=holder_key.jwk,
        decoys=3,
    )


def test_reference_verifies_shomei_full_credential(shomei_credential, issuer_key):
    payload = reference_verify(shomei_credential.sd_jwt, issuer_key)
    assert user_claims(payload) == CLAIMS
    assert payload["iss"] == ISSUER and payload["vct"] == VCT


@pytest.mark.parametrize(
    "chosen",
    [(), ("family_name",), ("birthdate", "address", "children"), tuple(CLAIMS)],
    ids=["none", "one", "three", "all"],
)
def test_reference_verifies_shomei_presentation(shomei_credential, issuer_key, chosen):
    text = sdjwt.present(shomei_credential.sd_jwt, disclose=chosen)
    assert user_claims(reference_verify(text, issuer_key)) == {n: CLAIMS[n] for n in chosen}


def test_reference_verifies_shomei_key_binding(shomei_credential, issuer_key, holder_key):
    text = sdjwt.present(
        shomei_credential.sd_jwt,
        disclose=["family_name", "address"],
        holder_key=holder_key,
        nonce=NONCE,
        aud=AUD,
        iat=int(time.time()),
    )
    payload = reference_verify(text, issuer_key, expected_aud=AUD, expected_nonce=NONCE)
    assert user_claims(payload) == {"family_name": "山田", "address": CLAIMS["address"]}
    assert payload["cnf"] == {"jwk": holder_key.jwk}


def test_reference_rejects_shomei_key_binding_with_wrong_nonce(
    shomei_credential, issuer_key, holder_key
):
    """A control: the reference really checks what we hand it."""
    text = sdjwt.present(
        shomei_credential.sd_jwt,
        disclose=["sex"],
        holder_key=holder_key,
        nonce="other",
        aud=AUD,
        iat=int(time.time()),
    )
    with pytest.raises(ValueError, match="Invalid nonce in KB-JWT"):
        reference_verify(text, issuer_key, expected_aud=AUD, expected_nonce=NONCE)


# --------------------------------------------------------------------------- (b)


def reference_issue(
    issuer_key: SigningKey,
    claims: dict[Any, Any],
    *,
    holder_key: SigningKey | None = None,
    decoys: bool = False,
) -> SDJWTIssuer:
    now = int(time.time())
    return SDJWTIssuer(
        {"iss": ISSUER, "iat": now - 60, "exp": now + 86_400, "vct": VCT, **claims},
        as_jwcrypto(issuer_key),
        holder_key=public_jwcrypto(holder_key) if holder_key else None,
        sign_alg="ES256",
        add_decoy_claims=decoys,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": issuer_key.kid},
    )


def sd(claims: dict[str, Any]) -> dict[Any, Any]:
    return {SDObj(k): v for k, v in claims.items()}


def test_reference_serializes_json_with_spaces(issuer_key):
    """The premise of (b): the reference's bytes are not Shomei's canonical JSON."""
    issued = reference_issue(issuer_key, sd(CLAIMS))
    assert '", "' in issued.ii_disclosures[0].json
    assert issued.sd_jwt_issuance.count("~") == len(CLAIMS) + 1


def test_shomei_verifies_reference_credential(issuer_key, trust):
    issued = reference_issue(issuer_key, sd(CLAIMS), decoys=True)
    v = sdjwt.verify(issued.sd_jwt_issuance, resolve_key=trust.resolve_key, now=time.time())
    assert v.disclosed == CLAIMS
    assert v.kid == issuer_key.kid and v.vct == VCT
    assert v.key_bound is False


def test_shomei_verifies_reference_presentation_with_key_binding(issuer_key, holder_key, trust):
    issued = reference_issue(issuer_key, sd(CLAIMS), holder_key=holder_key)
    holder = SDJWTHolder(issued.sd_jwt_issuance)
    holder.create_presentation(
        {"family_name": True, "children": True},
        nonce=NONCE,
        aud=AUD,
        holder_key=as_jwcrypto(holder_key),
        sign_alg="ES256",
    )
    v = sdjwt.verify(
        holder.sd_jwt_presentation,
        resolve_key=trust.resolve_key,
        now=time.time(),
        require_key_binding=True,
        nonce=NONCE,
        aud=AUD,
    )
    assert v.disclosed == {"family_name": "山田", "children": CLAIMS["children"]}
    assert v.key_bound is True


def test_shomei_rejects_reference_presentation_for_another_audience(issuer_key, holder_key, trust):
    issued = reference_issue(issuer_key, sd(CLAIMS), holder_key=holder_key)
    holder = SDJWTHolder(issued.sd_jwt_issuance)
    holder.create_presentation(
        {"sex": True},
        nonce=NONCE,
        aud="https://elsewhere.example",
        holder_key=as_jwcrypto(holder_key),
        sign_alg="ES256",
    )
    with pytest.raises(VerificationError, match="key-binding JWT aud does not match"):
        sdjwt.verify(
            holder.sd_jwt_presentation,
            resolve_key=trust.resolve_key,
            now=time.time(),
            nonce=NONCE,
            aud=AUD,
        )


def test_shomei_verifies_reference_nested_and_array_disclosures(issuer_key, trust):
    """Recursive disclosures: an SD object with SD members, SD array elements."""
    claims = {
        SDObj("address"): {
            "country": "JP",
            SDObj("region"): "福岡県",
            SDObj("locality"): "飯塚市",
        },
        "nationalities": [SDObj("JP"), "US", SDObj({"code": "FR", SDObj("since"): 2020})],
    }
    issued = reference_issue(issuer_key, claims, decoys=True)
    expected = {
        "address": {"country": "JP", "region": "福岡県", "locality": "飯塚市"},
        "nationalities": ["JP", "US", {"code": "FR", "since": 2020}],
    }
    full = sdjwt.verify(issued.sd_jwt_issuance, resolve_key=trust.resolve_key, now=time.time())
    assert full.disclosed == expected
    holder = SDJWTHolder(issued.sd_jwt_issuance)
    holder.create_presentation({"address": {"locality": True}, "nationalities": [False, True]})
    part = sdjwt.verify(holder.sd_jwt_presentation, resolve_key=trust.resolve_key, now=time.time())
    assert part.disclosed == {
        "address": {"country": "JP", "locality": "飯塚市"},
        "nationalities": ["US"],
    }
    assert sdjwt.claim_names(issued.sd_jwt_issuance) == ["address", "nationalities"]


def test_shomei_presents_what_the_reference_issued(issuer_key, trust):
    """Shomei's holder narrows a reference credential; both verifiers agree."""
    issued = reference_issue(issuer_key, sd(CLAIMS))
    text = sdjwt.present(issued.sd_jwt_issuance, disclose=["given_name", "amount_jpy"])
    expected = {"given_name": "太郎", "amount_jpy": 12_650_000}
    assert sdjwt.verify(text, resolve_key=trust.resolve_key, now=time.time()).disclosed == expected
    assert user_claims(reference_verify(text, issuer_key)) == expected


def test_reference_credential_signed_by_untrusted_key_is_rejected(attacker_key, trust, issuer_key):
    """The reference lets the caller pick any kid; Shomei still resolves it from trust."""
    now = int(time.time())
    forged = SDJWTIssuer(
        {"iss": ISSUER, "iat": now, "vct": VCT, **sd(CLAIMS)},
        as_jwcrypto(attacker_key),
        sign_alg="ES256",
        extra_header_parameters={
            "typ": "dc+sd-jwt",
            "kid": issuer_key.kid,
            "jwk": attacker_key.jwk,
        },
    )
    with pytest.raises(VerificationError, match="signature does not match"):
        sdjwt.verify(forged.sd_jwt_issuance, resolve_key=trust.resolve_key, now=time.time())
