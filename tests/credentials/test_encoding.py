"""The core's shared encodings: LEB128 (one number, one encoding) and the contract
agreement JWS format that the issuer and the verifier both read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credentials import agreement
from credentials.encoding import Leb128Error, leb128, read_leb128
from credentials.keys import SigningKey

ROOT = Path(__file__).resolve().parents[2]


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_leb128_round_trip(value: int):
    encoded = leb128(value)
    assert read_leb128(encoded + b"\x00", 0) == (value, len(encoded))


@pytest.mark.parametrize(
    ("data", "max_value", "reason"),
    [
        (b"", 2**64 - 1, "truncated"),
        (b"\x80", 2**64 - 1, "truncated"),
        (b"\x80\x00", 2**64 - 1, "non-minimal"),
        (b"\xff" * 9 + b"\x02", 2**64 - 1, "too-large"),
        (b"\xff" * 10 + b"\x01", 2**64 - 1, "too-large"),
        (b"\x80\x80\x80\x80\x01", 2**28 - 1, "too-large"),
    ],
)
def test_leb128_refuses(data: bytes, max_value: int, reason: str):
    with pytest.raises(Leb128Error, match=reason):
        read_leb128(data, 0, max_value=max_value)


def test_leb128_refuses_to_write_out_of_range():
    with pytest.raises(ValueError, match="numbers must be integers"):
        leb128(-1)
    with pytest.raises(ValueError, match="numbers must be integers"):
        leb128(2**28, max_value=2**28 - 1)


TERMS = agreement.Terms(
    audience="https://city.example",
    contract_number="R7-001",
    document_sha256="ab" * 32,
    party="orderer",
    nonce="n-1",
)


def test_agreement_signed_then_verified():
    key = SigningKey.generate()
    token = agreement.sign(key, TERMS, now=1_760_000_000)
    parsed = agreement.UnverifiedAgreement.parse(token)
    assert parsed.thumbprint == key.kid
    assert parsed.verify() == TERMS.payload(iat=1_760_000_000)
    assert agreement.looks_like_agreement(token)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: "", "malformed"),
        (lambda t: t.replace(".", "!", 1), "malformed"),
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "bad_signature"),
    ],
    ids=["empty", "not-jws", "signature"],
)
def test_agreement_refused(mutate, reason: str):
    token = agreement.sign(SigningKey.generate(), TERMS, now=1_760_000_000)
    with pytest.raises(agreement.AgreementFormatError) as caught:
        agreement.UnverifiedAgreement.parse(mutate(token)).verify()
    assert caught.value.reason == reason


def test_the_agreement_format_is_defined_once():
    """The issuer and the verifier read the format from the core, never their own copy."""
    found = sorted(
        p.relative_to(ROOT).as_posix()
        for package in ("credentials", "issuer", "verifier", "anchor", "wallet_demo")
        for p in (ROOT / package).rglob("*.py")
        if '"shomei-contract-agreement+jwt"' in p.read_text(encoding="utf-8")
    )
    assert found == ["credentials/agreement.py"]
