"""Keys: generation, JWK, RFC 7638 thumbprints, encryption at rest."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto.jwk import JWK

from credentials.errors import InvalidCredential, KeyFileError
from credentials.keys import SigningKey, jwk_thumbprint, public_jwk, public_key_from_jwk


def test_thumbprint_matches_an_independent_implementation() -> None:
    key = SigningKey.generate()
    other = JWK.from_json(json.dumps(key.jwk)).thumbprint()
    assert key.kid == other == jwk_thumbprint(key.jwk)


def test_thumbprint_ignores_extra_members_and_member_order() -> None:
    key = SigningKey.generate()
    shuffled = {"y": key.jwk["y"], "use": "sig", "x": key.jwk["x"], "crv": "P-256", "kty": "EC"}
    assert jwk_thumbprint(shuffled) == key.kid


def test_public_jwk_round_trip() -> None:
    key = SigningKey.generate()
    assert public_jwk(public_key_from_jwk(key.jwk)) == key.jwk
    assert set(key.jwk) == {"kty", "crv", "x", "y"}


def test_encrypted_pem_round_trip_and_no_plain_text() -> None:
    key = SigningKey.generate()
    pem = key.to_encrypted_pem("correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert b"correct horse" not in pem
    assert SigningKey.from_encrypted_pem(pem, "correct horse").kid == key.kid


def test_wrong_passphrase_is_a_clear_error() -> None:
    pem = SigningKey.generate().to_encrypted_pem("right")
    with pytest.raises(KeyFileError, match="パスフレーズが違う"):
        SigningKey.from_encrypted_pem(pem, "wrong")


def test_unencrypted_key_file_is_refused() -> None:
    plain = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError, match="暗号化されていません"):
        SigningKey.from_encrypted_pem(plain, "anything")


def test_other_key_types_are_refused() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(KeyFileError, match="P-256"):
        SigningKey.from_encrypted_pem(rsa_pem, "pw")
    with pytest.raises(ValueError, match="P-256"):
        SigningKey(private_key=ec.generate_private_key(ec.SECP384R1()))


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="plain text"):
        SigningKey.generate().to_encrypted_pem("")


def test_repr_shows_no_key_material() -> None:
    key = SigningKey.generate()
    d = key.private_key.private_numbers().private_value
    assert str(d) not in repr(key) and hex(d)[2:] not in repr(key)
    assert key.kid in repr(key)


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        ("not a dict", "オブジェクトではありません"),
        ({"kty": "RSA", "n": "x", "e": "AQAB"}, "P-256"),
        ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "P-256"),
        ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "座標"),
        ({"kty": "EC", "crv": "P-256", "x": "A" * 43}, "座標"),
    ],
)
def test_malformed_jwks_are_refused(jwk: object, message: str) -> None:
    with pytest.raises(InvalidCredential, match=message):
        public_key_from_jwk(jwk)


def test_point_not_on_curve_is_refused() -> None:
    key = SigningKey.generate()
    bad = dict(key.jwk, y=key.jwk["x"])
    with pytest.raises(InvalidCredential, match="座標"):
        public_key_from_jwk(bad)


def test_private_jwk_is_refused_as_public_key() -> None:
    key = SigningKey.generate()
    with pytest.raises(InvalidCredential, match="秘密鍵"):
        public_key_from_jwk(dict(key.jwk, d="AAAA"))


def test_combined_trust_asks_sources_in_order() -> None:
    from credentials.errors import VerificationError
    from credentials.trust import CombinedTrust, TrustList

    a, b = SigningKey.generate(), SigningKey.generate()
    first = TrustList.from_json(
        TrustList.document("https://a", name="A", municipality_code="1", jwks=[a.jwk])
    )
    second = TrustList.from_json(
        TrustList.document("https://b", name="B", municipality_code="2", jwks=[b.jwk])
    )
    both = CombinedTrust([first, second])
    assert both.issuer("https://b").name == "B"
    assert both.resolve_key("https://a", a.kid).public_numbers() == a.public_key.public_numbers()
    assert both.key_window("https://a", a.kid) is None
    assert both.issuer("https://c") is None
    with pytest.raises(VerificationError, match="信頼されていません"):
        both.resolve_key("https://c", a.kid)
    with pytest.raises(VerificationError, match="登録されていません"):
        both.resolve_key("https://a", b.kid)
