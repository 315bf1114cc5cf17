"""Merkle batches: RFC 6962/9162 known answers, properties, receipt encodings."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchor import merkle
from anchor.merkle import (
    Batch,
    Receipt,
    build,
    leaf_from_digest,
    leaf_hash,
    proof_length,
    root_from_inclusion,
    verify_inclusion,
)
from credentials.errors import AnchorError, InvalidCredential


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- an independent reference: RFC 9162 §2.1.1 and §2.1.3.1, as written -----------------


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) over raw entries; the empty tree is not a batch."""
    if len(entries) == 1:
        return sha256(b"\x00" + entries[0])
    k = split_point(len(entries))
    return sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of entry m, lowest sibling first."""
    if len(entries) == 1:
        return []
    k = split_point(len(entries))
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def leaves_of(entries: list[bytes]) -> list[bytes]:
    return [sha256(b"\x00" + e) for e in entries]


# --- published known answers --------------------------------------------------------------

# The Certificate Transparency / Trillian test vectors (RFC 6962 hashing): entries, the
# root of each prefix of size 1..8, and inclusion proofs as (index, size, path).
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_ct_vectors(size: int) -> None:
    entries = CT_ENTRIES[:size]
    assert ref_mth(entries).hex() == CT_ROOTS[size - 1]  # the reference is right
    assert build(leaves_of(entries)).root.hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), CT_PATHS)
def test_receipts_match_the_ct_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    leaves = leaves_of(CT_ENTRIES[:size])
    batch = build(leaves)
    receipt = batch.receipts(batch_id=1)[index]
    assert [s.hex() for s in receipt.siblings] == path
    assert batch.receipt(1, index) == receipt
    verify_inclusion(leaves[index], receipt, bytes.fromhex(CT_ROOTS[size - 1]))


@pytest.mark.parametrize("size", [*range(1, 70), 127, 128, 129, 255, 256, 257, 1000])
def test_root_and_every_receipt_match_the_reference(size: int) -> None:
    entries = [i.to_bytes(4, "big") for i in range(size)]
    batch = build(leaves_of(entries))
    assert batch.root == ref_mth(entries)
    assert batch.size == size
    receipts = batch.receipts(batch_id=7)
    assert [r.index for r in receipts] == list(range(size))
    step = 1 if size < 300 else 37
    for index in range(0, size, step):
        assert list(receipts[index].siblings) == ref_path(index, entries)
        assert len(receipts[index].siblings) == proof_length(index, size)
        assert receipts[index].siblings == batch.audit_path(index)


# --- hashes and building ------------------------------------------------------------------


def test_leaf_hash_is_domain_separated_hash_of_the_jwt_hash() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V4YW1wbGUifQ.c2ln"
    expected = sha256(b"\x00" + sha256(jwt.encode()))
    assert leaf_hash(jwt) == expected
    assert leaf_hash(jwt.encode()) == expected
    assert leaf_from_digest(sha256(jwt.encode())) == expected


def test_leaf_hash_rejects_what_no_verifier_can_recompute() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        leaf_hash("証明書.jwt")
    with pytest.raises(ValueError, match="32 bytes"):
        leaf_from_digest(b"\x00" * 31)


def test_an_empty_batch_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        build([])


def test_leaves_must_be_32_byte_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        build([b"\x00" * 32, b"\x00" * 33])
    with pytest.raises(TypeError, match="bytes"):
        build([bytearray(32)])


def test_one_leaf_is_its_own_root_with_an_empty_path() -> None:
    leaf = leaf_hash("a.b.c")
    batch = build([leaf])
    assert batch.root == leaf
    assert batch.levels == ((leaf,),)
    (receipt,) = batch.receipts(batch_id=3)
    assert receipt == Receipt(batch_id=3, index=0, size=1, siblings=())
    verify_inclusion(leaf, receipt, batch.root)


def test_an_odd_last_node_is_promoted_unchanged() -> None:
    leaves = leaves_of([b"a", b"b", b"c", b"d", b"e"])
    batch = build(leaves)
    assert [len(level) for level in batch.levels] == [5, 3, 2, 1]
    assert batch.levels[1][2] == batch.levels[2][1] == leaves[4]
    # The promoted leaf's path skips the levels where it had no sibling.
    assert batch.audit_path(4) == (batch.levels[2][0],)


def test_audit_path_rejects_an_index_outside_the_batch() -> None:
    batch = build(leaves_of([b"a", b"b"]))
    with pytest.raises(ValueError, match="outside"):
        batch.audit_path(2)
    with pytest.raises(ValueError, match="outside"):
        batch.receipt(1, -1)


@pytest.mark.parametrize("enabled", [True, False])
def test_receipts_leave_the_garbage_collector_as_they_found_it(enabled: bool) -> None:
    batch = build(leaves_of([b"a", b"b", b"c"]))
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        batch.receipts(batch_id=1)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_the_module_is_pure() -> None:
    code = (
        "import sys, anchor.merkle; "
        "bad = {'web3', 'flask', 'eth_utils'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_batch_repr_does_not_dump_the_tree() -> None:
    batch = build(leaves_of([b"a"] * 3))
    assert "levels" not in repr(batch)


# --- verification failures -----------------------------------------------------------------


def small_batch() -> tuple[list[bytes], Batch]:
    leaves = leaves_of([bytes([i]) for i in range(11)])
    return leaves, build(leaves)


def test_index_outside_the_tree_fails() -> None:
    leaves, batch = small_batch()
    receipt = dataclasses.replace(batch.receipt(1, 10), index=11)
    with pytest.raises(AnchorError, match="outside a tree of size 11"):
        verify_inclusion(leaves[10], receipt, batch.root)
    receipt = dataclasses.replace(batch.receipt(1, 0), index=-1)
    with pytest.raises(AnchorError, match="outside"):
        verify_inclusion(leaves[0], receipt, batch.root)


def test_a_wrong_proof_length_fails_before_any_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    leaves, batch = small_batch()
    good = batch.receipt(1, 3)

    class NoHashing:
        @staticmethod
        def sha256(data: bytes) -> object:
            raise AssertionError("hashed before checking the proof length")

    monkeypatch.setattr(merkle, "hashlib", NoHashing)
    for siblings in (good.siblings[:-1], (*good.siblings, batch.root), (b"", *good.siblings)):
        receipt = dataclasses.replace(good, siblings=siblings)
        with pytest.raises(AnchorError, match="sibling hashes; index 3 of a tree of size 11"):
            verify_inclusion(leaves[3], receipt, batch.root)


def test_a_sibling_of_the_wrong_size_fails() -> None:
    leaves, batch = small_batch()
    good = batch.receipt(1, 3)
    receipt = dataclasses.replace(good, siblings=(good.siblings[0][:31], *good.siblings[1:]))
    with pytest.raises(AnchorError, match="32-byte strings"):
        verify_inclusion(leaves[3], receipt, batch.root)


def test_root_mismatch_fails_with_a_japanese_first_message() -> None:
    leaves, batch = small_batch()
    with pytest.raises(AnchorError, match="does not lead to the anchored Merkle root") as info:
        verify_inclusion(leaves[3], batch.receipt(1, 3), sha256(b"other"))
    assert str(info.value).startswith("アンカー証明から計算したルート")


def test_leaf_and_root_must_be_digests() -> None:
    leaves, batch = small_batch()
    with pytest.raises(ValueError, match="leaf must be 32 bytes"):
        verify_inclusion(leaves[0][:16], batch.receipt(1, 0), batch.root)
    with pytest.raises(ValueError, match="root must be 32 bytes"):
        verify_inclusion(leaves[0], batch.receipt(1, 0), batch.root.hex().encode())


def test_an_inner_node_presented_as_a_leaf_fails() -> None:
    leaves = leaves_of([bytes([i]) for i in range(8)])
    batch = build(leaves)
    inner = batch.levels[1][0]  # H(0x01 || leaf0 || leaf1)
    shortened = batch.audit_path(0)[1:]
    # With the batch's real size, the shortened proof has the wrong length.
    honest_size = Receipt(batch_id=1, index=0, size=8, siblings=shortened)
    with pytest.raises(AnchorError, match="sibling hashes"):
        verify_inclusion(inner, honest_size, batch.root)
    # A size chosen to fit the shortened proof does reach the root from the bare inner
    # node, which is why a verifier computes the leaf itself: the leaf of any credential
    # is a 0x00-prefixed hash, and no such hash is an inner node.
    fitted = Receipt(batch_id=1, index=0, size=4, siblings=shortened)
    assert root_from_inclusion(inner, fitted) == batch.root
    with pytest.raises(AnchorError, match="does not lead"):
        verify_inclusion(leaf_from_digest(inner), fitted, batch.root)
    preimage = b"\x01" + leaves[0] + leaves[1]
    with pytest.raises(AnchorError, match="does not lead"):
        verify_inclusion(leaf_from_digest(sha256(preimage)), fitted, batch.root)


# --- properties -----------------------------------------------------------------------------

leaf_sets = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300, unique=True)


def flip(data: bytes, bit: int) -> bytes:
    """Return data with one bit inverted (bit counted over the whole string)."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(deadline=None, max_examples=60)
@given(leaf_sets)
def test_every_receipt_verifies(leaves: list[bytes]) -> None:
    batch = build(leaves)
    receipts = batch.receipts(batch_id=5)
    assert len(receipts) == len(leaves)
    for leaf, receipt in zip(leaves, receipts, strict=True):
        assert receipt.size == len(leaves)
        verify_inclusion(leaf, receipt, batch.root)


@settings(deadline=None)
@given(leaf_sets, st.data())
def test_any_single_bit_flip_fails(leaves: list[bytes], data: st.DataObject) -> None:
    batch = build(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1), label="index")
    receipt = batch.receipt(9, index)
    leaf, root = leaves[index], batch.root
    targets = ["leaf", "root", "index"] + (["sibling"] if receipt.siblings else [])
    target = data.draw(st.sampled_from(targets), label="target")
    if target == "leaf":
        leaf = flip(leaf, data.draw(st.integers(0, 255), label="bit"))
    elif target == "root":
        root = flip(root, data.draw(st.integers(0, 255), label="bit"))
    elif target == "index":
        bit = data.draw(st.integers(0, 63), label="bit")
        receipt = dataclasses.replace(receipt, index=index ^ (1 << bit))
    else:
        position = data.draw(st.integers(0, len(receipt.siblings) - 1), label="sibling")
        siblings = list(receipt.siblings)
        siblings[position] = flip(siblings[position], data.draw(st.integers(0, 255)))
        receipt = dataclasses.replace(receipt, siblings=tuple(siblings))
    with pytest.raises(AnchorError):
        verify_inclusion(leaf, receipt, root)


@given(leaf_sets, st.data())
def test_receipts_round_trip_through_json_and_bytes(
    leaves: list[bytes], data: st.DataObject
) -> None:
    batch_id = data.draw(st.integers(0, 2**64 - 1), label="batch_id")
    receipt = build(leaves).receipt(batch_id, data.draw(st.integers(0, len(leaves) - 1)))
    assert Receipt.from_json(receipt.to_json()) == receipt
    assert Receipt.from_json(json.dumps(receipt.to_json())) == receipt
    assert Receipt.from_bytes(receipt.to_bytes()) == receipt


# --- encodings ------------------------------------------------------------------------------

SIBLING = bytes(range(32))
SIBLING_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
EXAMPLE = Receipt(batch_id=300, index=1, size=2, siblings=(SIBLING,))


def test_json_form() -> None:
    assert EXAMPLE.to_json() == {"batch_id": 300, "index": 1, "size": 2, "siblings": [SIBLING_B64]}


def test_bytes_form_is_varints_then_siblings() -> None:
    assert EXAMPLE.to_bytes() == bytes.fromhex("ac020102") + SIBLING
    big = Receipt(batch_id=2**64 - 1, index=0, size=1, siblings=())
    assert big.to_bytes() == b"\xff" * 9 + b"\x01" + b"\x00\x01"
    assert Receipt.from_bytes(big.to_bytes()) == big


def json_variant(**changes: object) -> dict[str, object]:
    obj = EXAMPLE.to_json()
    obj.update(changes)
    return obj


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(json_variant(extra=1), id="unknown key"),
        pytest.param({k: v for k, v in EXAMPLE.to_json().items() if k != "size"}, id="missing"),
        pytest.param(json_variant(batch_id=True), id="bool"),
        pytest.param(json_variant(batch_id=-1), id="negative"),
        pytest.param(json_variant(batch_id=2**64), id="too large"),
        pytest.param(json_variant(index=1.0), id="float"),
        pytest.param(json_variant(size="2"), id="string number"),
        pytest.param(json_variant(index=2), id="index not below size"),
        pytest.param(json_variant(siblings=SIBLING_B64), id="siblings not a list"),
        pytest.param(json_variant(siblings=[]), id="too few siblings"),
        pytest.param(json_variant(siblings=[SIBLING_B64] * 2), id="too many siblings"),
        pytest.param(json_variant(siblings=[SIBLING.hex()]), id="hex sibling"),
        pytest.param(json_variant(siblings=[SIBLING_B64 + "="]), id="padded"),
        pytest.param(json_variant(siblings=[SIBLING_B64[:-1] + "9"]), id="non-canonical"),
        pytest.param(json_variant(siblings=[SIBLING_B64[:-1] + "+"]), id="base64 not url"),
        pytest.param(json_variant(siblings=[None]), id="sibling not a string"),
        pytest.param([], id="not an object"),
        pytest.param("{", id="not JSON"),
        pytest.param(b"\xff", id="not UTF-8"),
        pytest.param('{"batch_id": 1, "batch_id": 1, "index": 0, "size": 1}', id="duplicate"),
    ],
)
def test_from_json_is_strict(data: object) -> None:
    with pytest.raises(InvalidCredential, match="malformed anchor receipt") as info:
        Receipt.from_json(data)  # type: ignore[arg-type]
    assert info.value.ja == "アンカー証明の形式が正しくありません"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(EXAMPLE.to_bytes() + b"\x00", id="trailing byte"),
        pytest.param(EXAMPLE.to_bytes() + SIBLING, id="trailing sibling"),
        pytest.param(EXAMPLE.to_bytes()[:-1], id="short sibling"),
        pytest.param(bytes.fromhex("ac020102"), id="missing sibling"),
        pytest.param(bytes.fromhex("ac"), id="truncated varint"),
        pytest.param(bytes.fromhex("ac820001") + SIBLING, id="non-minimal varint"),
        pytest.param(b"\x80\x00\x00\x01", id="non-minimal zero"),
        pytest.param(b"\xff" * 10 + b"\x01\x00\x01", id="varint over 10 bytes"),
        pytest.param(b"\xff" * 9 + b"\x02\x00\x01", id="above 2**64-1"),
        pytest.param(bytes.fromhex("010202") + SIBLING, id="index not below size"),
        pytest.param(bytes.fromhex("010000"), id="size zero"),
    ],
)
def test_from_bytes_is_strict(data: bytes) -> None:
    with pytest.raises(InvalidCredential, match="malformed anchor receipt"):
        Receipt.from_bytes(data)


@pytest.mark.parametrize(
    "receipt",
    [
        dataclasses.replace(EXAMPLE, batch_id=-1),
        dataclasses.replace(EXAMPLE, size=2**64),
        dataclasses.replace(EXAMPLE, siblings=(SIBLING[:31],)),
    ],
)
def test_to_bytes_rejects_what_it_cannot_encode(receipt: Receipt) -> None:
    with pytest.raises(ValueError):
        receipt.to_bytes()


def test_proof_length() -> None:
    assert proof_length(0, 1) == 0
    assert [proof_length(i, 5) for i in range(5)] == [3, 3, 3, 3, 1]
    assert proof_length(0, 2**20) == 20
    with pytest.raises(ValueError, match="outside"):
        proof_length(5, 5)


# --- a million credentials -----------------------------------------------------------------


@pytest.mark.slow
def test_a_million_leaves() -> None:
    size = 1_000_000
    leaves = [sha256(i.to_bytes(4, "big")) for i in range(size)]
    batch = build(leaves)
    assert [len(level) for level in batch.levels[:3]] == [size, size // 2, size // 4]
    assert len(batch.levels) == 21
    # The root splits at 2**19: check it from the two subtree roots the levels hold.
    left = build(leaves[: 2**19]).root
    right = build(leaves[2**19 :]).root
    assert batch.root == sha256(b"\x01" + left + right)
    for index in (0, 1, 2**19 - 1, 2**19, 999_998, 999_999, 123_457):
        receipt = batch.receipt(42, index)
        assert len(receipt.siblings) == proof_length(index, size)
        verify_inclusion(leaves[index], receipt, batch.root)
        assert Receipt.from_bytes(receipt.to_bytes()) == receipt
    with pytest.raises(AnchorError):
        verify_inclusion(leaves[1], batch.receipt(42, 0), batch.root)


def test_receipt_bytes_with_megabytes_of_siblings_are_refused_before_splitting() -> None:
    import tracemalloc

    data = bytes([7, 3, 8]) + bytes(4 * 1024 * 1024)  # 131,072 "siblings" for 3 of 8
    tracemalloc.start()
    try:
        with pytest.raises(InvalidCredential, match="wrong number of sibling hashes"):
            merkle.Receipt.from_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * len(data)  # the body's slice, never 131,072 little objects
