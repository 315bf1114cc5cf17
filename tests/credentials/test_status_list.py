"""Token Status List: the byte array, its JSON form, and the signed token
(draft-ietf-oauth-status-list §4, §5.1, Appendix C)."""

from __future__ import annotations

import base64
import random
import time
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from credentials import _jws
from credentials._b64 import b64e
from credentials.errors import InvalidCredential, ShomeiError, VerificationError
from credentials.keys import SigningKey
from credentials.status_list import (
    DEFAULT_SIZE,
    INVALID,
    SUSPENDED,
    TYP,
    VALID,
    StatusList,
    StatusListFull,
    StatusListToken,
    allocate_index,
    issue_token,
    parse_reference,
    verify_token,
)

ISS = "https://city.iizuka.example"
URI = f"{ISS}/statuslists/1"
T0 = 1_760_000_000

# --------------------------------------------------------------------------- draft vectors

# Appendix C: lists of 2**20 entries, "lst" as printed (line breaks removed).
C1 = (
    "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogE"
    "AAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAA"
    "A7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAA"
    "ACAZC8L2AEb"
)
C2 = (
    "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGV"
    "IAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5WwIAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9S"
    "wIAAAAAAAAAAAAAAAAAAACoYUoAAAAAAAAAAAAAAEBqH81gAQw"
)
C3 = (
    "eNrt0EENgDAQADAIHwImkIIEJEwCUpCEBBQRHOy35Li"
    "1EjoOQGabAgAAAAAAAAAAAAAAAAAAACC1SQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABADrsCAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAADoxaEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIIoCgAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACArpwKAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAGhqVkAzlwIAAAAAiGVRAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAABx3AoAgLpVAQAAAAAAAAAAAAAAwM89rwMAAAAAAAAAA"
    "AjsA9xMBMA"
)

APPENDIX_C = [
    pytest.param(
        1,
        C1,
        {
            0: 1,
            1993: 1,
            25460: 1,
            159495: 1,
            495669: 1,
            554353: 1,
            645645: 1,
            723232: 1,
            854545: 1,
            934534: 1,
            1000345: 1,
        },
        id="C.1-1bit",
    ),
    pytest.param(
        2,
        C2,
        {
            0: 1,
            1993: 2,
            25460: 1,
            159495: 3,
            495669: 1,
            554353: 1,
            645645: 2,
            723232: 1,
            854545: 1,
            934534: 2,
            1000345: 3,
        },
        id="C.2-2bit",
    ),
    pytest.param(
        4,
        C3,
        {
            0: 1,
            1993: 2,
            35460: 3,
            459495: 4,
            595669: 5,
            754353: 6,
            845645: 7,
            923232: 8,
            924445: 9,
            934534: 10,
            1004534: 11,
            1000345: 12,
            1030203: 13,
            1030204: 14,
            1030205: 15,
        },
        id="C.3-4bit",
    ),
]


def nonzero(lst: StatusList) -> dict[int, int]:
    """Every entry that is not VALID, found through the non-zero bytes."""
    data, per_byte = lst.to_bytes(), 8 // lst.bits
    return {
        i: lst.get(i)
        for b, byte in enumerate(data)
        if byte
        for i in range(b * per_byte, (b + 1) * per_byte)
        if lst.get(i)
    }


def test_section_4_one_bit_example() -> None:
    lst = StatusList(bits=1, size=16)
    for i, v in enumerate([1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]):
        lst.set(i, v)
    assert lst.to_bytes() == bytes([0xB9, 0xA3])
    assert zlib.compress(lst.to_bytes(), 9).hex() == "78dadbb918000217015d"
    assert lst.encode() == {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}


def test_section_4_two_bit_example() -> None:
    lst = StatusList(bits=2, size=12)
    for i, v in enumerate([1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]):
        lst.set(i, v)
    assert lst.to_bytes() == bytes([0xC9, 0x44, 0xF9])
    assert lst.encode() == {"bits": 2, "lst": "eNo76fITAAPfAgc"}
    back = StatusList.decode({"bits": 2, "lst": "eNo76fITAAPfAgc"})
    assert [back.get(i) for i in range(12)] == [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize(("bits", "lst", "expected"), APPENDIX_C)
def test_appendix_c_vectors(bits: int, lst: str, expected: dict[int, int]) -> None:
    decoded = StatusList.decode({"bits": bits, "lst": lst})
    assert decoded.size == 2**20
    assert nonzero(decoded) == expected
    built = StatusList(bits=bits, size=2**20)
    for i, v in expected.items():
        built.set(i, v)
    assert built.encode() == {"bits": bits, "lst": lst}


# --------------------------------------------------------------------------- the list


@st.composite
def lists(draw: st.DrawFn) -> tuple[int, int, dict[int, int]]:
    bits = draw(st.sampled_from([1, 2, 4, 8]))
    size = draw(st.integers(1, 512)) * 8
    entries = draw(
        st.dictionaries(st.integers(0, size - 1), st.integers(0, (1 << bits) - 1), max_size=64)
    )
    return bits, size, entries


@settings(max_examples=200, deadline=None)
@given(lists())
def test_round_trip_for_every_bit_size(case: tuple[int, int, dict[int, int]]) -> None:
    bits, size, entries = case
    lst = StatusList(bits=bits, size=size)
    for i, v in entries.items():
        lst.set(i, v)
    back = StatusList.decode(lst.encode())
    assert back.bits == bits and back.size == size
    assert back.to_bytes() == lst.to_bytes()
    assert nonzero(back) == {i: v for i, v in entries.items() if v}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_set_touches_only_its_own_bits(bits: int, data: st.DataObject) -> None:
    lst = StatusList(bits=bits, size=64)
    full = (1 << bits) - 1
    for i in range(64):
        lst.set(i, full)
    idx = data.draw(st.integers(0, 63))
    value = data.draw(st.integers(0, full))
    lst.set(idx, value)
    assert [lst.get(i) for i in range(64)] == [value if i == idx else full for i in range(64)]


def test_defaults_are_a_large_two_bit_list() -> None:
    lst = StatusList()
    assert (lst.bits, lst.size) == (2, DEFAULT_SIZE) == (2, 131_072)
    assert lst.get(DEFAULT_SIZE - 1) == VALID
    lst.set(7, SUSPENDED)
    lst.set(8, INVALID)
    assert (lst.get(7), lst.get(8)) == (SUSPENDED, INVALID)
    # Mostly empty, it compresses to almost nothing: size costs no bandwidth.
    assert len(lst.encode()["lst"]) < 200


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 3}, "bits"),
        ({"bits": 16}, "bits"),
        ({"bits": True}, "bits"),
        ({"bits": 2.0}, "bits"),
        ({"bits": 1, "size": 12}, "multiple of 8"),
        ({"bits": 1, "size": 0}, "positive"),
        ({"bits": 8, "size": -8}, "positive"),
    ],
)
def test_constructor_rejects_bad_parameters(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StatusList(**kwargs)


def test_set_and_get_reject_caller_mistakes() -> None:
    lst = StatusList(bits=2, size=8)
    with pytest.raises(IndexError):
        lst.get(8)
    with pytest.raises(IndexError):
        lst.get(-1)  # no Python-style counting from the end
    with pytest.raises(TypeError):
        lst.get(True)
    with pytest.raises(ValueError, match="between 0 and 3"):
        lst.set(0, 4)
    with pytest.raises(ValueError, match="between 0 and 3"):
        lst.set(0, -1)
    with pytest.raises(IndexError):
        lst.set(8, 1)


# --------------------------------------------------------------------------- strict decoding


def lst_of(raw: bytes) -> str:
    return b64e(raw)


def test_decompression_bomb_is_stopped_at_the_bound() -> None:
    # 64 KiB of input claiming 64 MiB of zeros.
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)
    assert len(bomb) < 70 * 1024
    started = time.perf_counter()
    with pytest.raises(InvalidCredential, match="大きすぎます"):
        StatusList.decode({"bits": 1, "lst": lst_of(bomb)}, max_size=1024 * 1024)
    assert time.perf_counter() - started < 1.0


def test_size_bound_is_inclusive() -> None:
    exact = {"bits": 8, "lst": lst_of(zlib.compress(bytes(4096)))}
    assert StatusList.decode(exact, max_size=4096).size == 4096
    with pytest.raises(InvalidCredential, match="4095"):
        StatusList.decode(exact, max_size=4095)


@pytest.mark.parametrize(
    ("lst", "match"),
    [
        (lst_of(zlib.compress(b"\x01\x02\x03")[:-2]), "途中で切れて"),
        (lst_of(zlib.compress(b"\x01\x02\x03") + b"\x00"), "余分なデータ"),
        (lst_of(zlib.compress(b"")), "空です"),
        (lst_of(b"not zlib at all"), "展開できません"),
        # DEFLATE without the ZLIB wrapper, and gzip: the draft names ZLIB only.
        (
            lst_of(zlib.compressobj(9, zlib.DEFLATED, -15).compress(b"\x01") + b"\x03\x00"),
            "展開できません",
        ),
        (lst_of(zlib.compressobj(9, zlib.DEFLATED, 31).compress(b"\x01")), "展開できません"),
    ],
    ids=["truncated", "trailing", "empty", "garbage", "raw-deflate", "gzip"],
)
def test_bad_compressed_data_is_rejected(lst: str, match: str) -> None:
    with pytest.raises(InvalidCredential, match=match):
        StatusList.decode({"bits": 1, "lst": lst})


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1, True, 1.0, "1", None])
def test_bad_bits_are_rejected(bits: Any) -> None:
    with pytest.raises(InvalidCredential, match="1, 2, 4 or 8"):
        StatusList.decode({"bits": bits, "lst": "eNrbuRgAAhcBXQ"})


@pytest.mark.parametrize(
    "lst",
    [
        "eNrbuRgAAhcBXQ==",  # padding
        "eNrb+RgAAhcBXQ",  # standard alphabet
        "eNrbuRgAAhcBXR",  # non-canonical trailing bits
        "eNrbuRgAAhcBX",  # impossible length
        base64.b64encode(zlib.compress(b"\xb9\xa3")).decode() + " ",
    ],
)
def test_bad_base64url_is_rejected(lst: str) -> None:
    with pytest.raises(InvalidCredential, match="base64url"):
        StatusList.decode({"bits": 1, "lst": lst})


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([1, "eNrbuRgAAhcBXQ"], "オブジェクト"),
        ({"bits": 1}, "lst is not a string"),
        ({"bits": 1, "lst": ["eNrbuRgAAhcBXQ"]}, "lst is not a string"),
    ],
)
def test_malformed_json_form_is_rejected(obj: Any, match: str) -> None:
    with pytest.raises(InvalidCredential, match=match):
        StatusList.decode(obj)


# --------------------------------------------------------------------------- references


def test_parse_reference() -> None:
    assert parse_reference({"status_list": {"idx": 7, "uri": URI}}) == (7, URI)


@pytest.mark.parametrize(
    "ref",
    [
        None,
        {},
        {"status_list": [7, URI]},
        {"status_list": {"idx": -1, "uri": URI}},
        {"status_list": {"idx": True, "uri": URI}},
        {"status_list": {"idx": 1.0, "uri": URI}},
        {"status_list": {"idx": "7", "uri": URI}},
        {"status_list": {"idx": 7}},
        {"status_list": {"idx": 7, "uri": ""}},
    ],
)
def test_parse_reference_rejects_malformed(ref: Any) -> None:
    with pytest.raises(InvalidCredential, match="失効情報の参照"):
        parse_reference(ref)


# --------------------------------------------------------------------------- allocation


class Seeded:
    """A reproducible stand-in for :mod:`secrets`."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def randbelow(self, n: int) -> int:
        return self._random.randrange(n)


def test_allocate_index_never_reuses_an_index() -> None:
    used: set[int] = set()
    for _ in range(2000):
        idx = allocate_index(used, DEFAULT_SIZE)
        assert 0 <= idx < DEFAULT_SIZE and idx not in used
        used.add(idx)
    # Random, not sequential: 2000 draws from 131,072 spread over the whole range.
    assert max(used) > DEFAULT_SIZE // 2 and min(used) < DEFAULT_SIZE // 2


def test_allocate_index_finds_the_last_free_entry() -> None:
    used = frozenset(range(1024)) - {613}
    assert allocate_index(used, 1024, random=Seeded(1)) == 613


def test_allocate_index_accepts_a_predicate() -> None:
    taken = lambda i: i % 16 != 5  # noqa: E731
    idx = allocate_index(taken, 4096, random=Seeded(2))
    assert idx % 16 == 5


def test_allocate_index_raises_when_full() -> None:
    with pytest.raises(StatusListFull, match="full") as info:
        allocate_index(set(range(64)), 64, random=Seeded(3))
    assert isinstance(info.value, ShomeiError)
    with pytest.raises(ValueError):
        allocate_index(set(), 0)


# --------------------------------------------------------------------------- tokens


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


def resolver(key: SigningKey, iss: str = ISS) -> Any:
    def resolve(i: str, kid: str) -> ec.EllipticCurvePublicKey:
        if i != iss or kid != key.kid:
            raise VerificationError(f"unknown key {i} {kid}", f"unknown key {i} {kid}")
        return key.public_key

    return resolve


def revoked_list() -> StatusList:
    lst = StatusList(bits=2, size=1024)
    lst.set(3, INVALID)
    lst.set(4, SUSPENDED)
    return lst


def make_token(key: SigningKey, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "key": key,
        "issuer": ISS,
        "uri": URI,
        "iat": T0,
        "exp": T0 + 86400,
        "ttl": 300,
    }
    args.update(overrides)
    return issue_token(revoked_list(), **args)


def forge(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    return _jws.sign(_jws.encode_header(header), payload, key.private_key)


def good_payload() -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": URI,
        "iat": T0,
        "exp": T0 + 86400,
        "ttl": 300,
        "status_list": revoked_list().encode(),
    }


def verify(token: str, key: SigningKey, **overrides: Any) -> StatusList:
    args: dict[str, Any] = {"resolve_key": resolver(key), "uri": URI, "issuer": ISS, "now": T0}
    args.update(overrides)
    return verify_token(token, **args)


def test_token_round_trip(key: SigningKey) -> None:
    token = make_token(key)
    jws = _jws.CompactJws(token, what="t", what_en="t")
    assert jws.unverified_header == {"alg": "ES256", "kid": key.kid, "typ": TYP}
    assert set(jws.unverified_payload) == {"iss", "sub", "iat", "exp", "ttl", "status_list"}
    lst = verify(token, key)
    assert (lst.get(2), lst.get(3), lst.get(4)) == (VALID, INVALID, SUSPENDED)


def test_token_claims_are_reported(key: SigningKey) -> None:
    verified = StatusListToken.verify(
        make_token(key), resolve_key=resolver(key), uri=URI, issuer=None, now=T0 + 10
    )
    assert (verified.iss, verified.sub, verified.iat, verified.exp, verified.ttl) == (
        ISS,
        URI,
        T0,
        T0 + 86400,
        300,
    )


def test_issue_token_rejects_caller_mistakes(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="exp"):
        make_token(key, exp=T0)
    with pytest.raises(ValueError, match="ttl"):
        make_token(key, ttl=0)


def test_wrong_typ_is_rejected(key: SigningKey) -> None:
    for typ in ("JWT", "dc+sd-jwt", None):
        header = {"alg": "ES256", "kid": key.kid} | ({"typ": typ} if typ else {})
        with pytest.raises(VerificationError, match="typ"):
            verify(forge(key, header, good_payload()), key)


def test_alg_none_is_rejected(key: SigningKey) -> None:
    header = b64e(b'{"alg":"none","typ":"statuslist+jwt"}')
    body = b64e(_jws.canonical_json(good_payload()))
    with pytest.raises(VerificationError, match="'none'"):
        verify(f"{header}.{body}.", key)


def test_crit_is_rejected(key: SigningKey) -> None:
    header = {"alg": "ES256", "kid": key.kid, "typ": TYP, "crit": ["x"], "x": 1}
    with pytest.raises(VerificationError, match="crit"):
        verify(forge(key, header, good_payload()), key)


def test_wrong_sub_is_rejected(key: SigningKey) -> None:
    token = make_token(key, uri=f"{ISS}/statuslists/2")
    with pytest.raises(VerificationError, match="sub"):
        verify(token, key)


def test_wrong_issuer_is_rejected(key: SigningKey) -> None:
    token = make_token(key, issuer="https://other-city.example")
    with pytest.raises(VerificationError, match="not the credential's issuer"):
        verify(token, key)
    # Without a credential issuer to compare, the trust source still has the last word.
    with pytest.raises(VerificationError, match="unknown key"):
        verify(token, key, issuer=None)


def test_missing_iss_and_kid_are_rejected(key: SigningKey) -> None:
    payload = good_payload()
    del payload["iss"]
    with pytest.raises(VerificationError, match="iss"):
        verify(forge(key, {"alg": "ES256", "kid": key.kid, "typ": TYP}, payload), key)
    with pytest.raises(VerificationError, match="kid"):
        verify(forge(key, {"alg": "ES256", "typ": TYP}, good_payload()), key)


def test_wrong_key_is_rejected(key: SigningKey, other_key: SigningKey) -> None:
    # Signed by another key but naming the issuer's kid.
    forged = forge(other_key, {"alg": "ES256", "kid": key.kid, "typ": TYP}, good_payload())
    with pytest.raises(VerificationError, match="署名が一致しません"):
        verify(forged, key)
    with pytest.raises(VerificationError, match="unknown key"):
        verify(make_token(other_key), key)


def test_tampered_list_is_rejected(key: SigningKey) -> None:
    header, _, sig = make_token(key).split(".")
    payload = good_payload()
    payload["status_list"] = StatusList(bits=2, size=1024).encode()  # all VALID
    with pytest.raises(VerificationError, match="署名が一致しません"):
        verify(f"{header}.{b64e(_jws.canonical_json(payload))}.{sig}", key)


def test_expired_token_is_rejected(key: SigningKey) -> None:
    token = make_token(key)
    verify(token, key, now=T0 + 86400 + 59)  # within the clock skew
    with pytest.raises(VerificationError, match="expired"):
        verify(token, key, now=T0 + 86400 + 60)


def test_token_from_the_future_is_rejected(key: SigningKey) -> None:
    with pytest.raises(VerificationError, match="future"):
        verify(make_token(key), key, now=T0 - 61)


@pytest.mark.parametrize(
    ("claim", "value", "match"),
    [
        ("iat", None, "no iat"),
        ("iat", "1760000000", "iat is not a number"),
        ("exp", True, "exp is not a number"),
        ("ttl", 0, "ttl is not positive"),
        ("ttl", -5, "ttl is not positive"),
        ("status_list", None, "status_list is not a JSON object"),
        ("status_list", {"bits": 3, "lst": "eNrbuRgAAhcBXQ"}, "1, 2, 4 or 8"),
    ],
)
def test_bad_claims_are_rejected(key: SigningKey, claim: str, value: Any, match: str) -> None:
    payload = good_payload()
    if value is None:
        del payload[claim]
    else:
        payload[claim] = value
    with pytest.raises(ShomeiError, match=match):
        verify(forge(key, {"alg": "ES256", "kid": key.kid, "typ": TYP}, payload), key)


def test_exp_and_ttl_are_optional(key: SigningKey) -> None:
    payload = good_payload()
    del payload["exp"], payload["ttl"]
    token = forge(key, {"alg": "ES256", "kid": key.kid, "typ": TYP}, payload)
    assert verify(token, key, now=T0 + 10 * 365 * 86400).get(3) == INVALID


def test_oversized_list_in_token_is_rejected(key: SigningKey) -> None:
    big = StatusList(bits=8, size=1024 * 1024)
    token = issue_token(big, key=key, issuer=ISS, uri=URI, iat=T0, exp=T0 + 60, ttl=60)
    with pytest.raises(InvalidCredential, match="大きすぎます"):
        verify(token, key, max_size=1024 * 1024 - 1)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!.??.**"])
def test_unparseable_tokens_are_rejected(key: SigningKey, token: str) -> None:
    with pytest.raises(InvalidCredential, match="失効リストトークン"):
        verify(token, key)
