"""Merkle batches of credentials: RFC 9162 tree hash and inclusion receipts.

A batch's leaves are credential leaf hashes, ``SHA-256(0x00 || SHA-256(jwt))``; inner
nodes are ``SHA-256(0x01 || left || right)``. The two prefixes keep a leaf from ever
being read as an inner node (RFC 6962 §2.1), so an attacker cannot present an inner
node as a "credential" with a shortened proof.

The tree is the RFC 9162 §2.1.1 Merkle Tree Hash (split at the largest power of two
smaller than ``n``). Built level by level it is the same tree as a "left-balanced" one
in which a lone last node is promoted unchanged to the next level; that is how it is
built here, and a receipt's siblings are the RFC 9162 §2.1.3 audit path, lowest first.

Pure: imports only the standard library and ``credentials.errors``.
"""

from __future__ import annotations

import gc
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from credentials.encoding import Leb128Error, b64d, b64e, leb128, loads_strict, read_leb128
from credentials.errors import AnchorError, InvalidCredential

HASH_SIZE = 32
MAX_NUMBER = 2**64 - 1
"""Largest batch id, index or size a receipt carries (a uint64 on chain and on the wire)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_FIELDS = frozenset({"batch_id", "index", "size", "siblings"})
_B64_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")


# --- hashes -----------------------------------------------------------------------------


def leaf_hash(jwt: str | bytes) -> bytes:
    """Return the leaf hash of an issuer-signed JWT (compact JWS, ASCII).

    Raises ``ValueError`` if ``jwt`` is not ASCII: a compact JWS always is, so such
    input is not a credential, and its leaf could differ by encoding between parties.
    """
    if not jwt.isascii():
        raise ValueError("an issuer-signed JWT is ASCII")
    data = jwt.encode("ascii") if isinstance(jwt, str) else jwt
    return leaf_from_digest(hashlib.sha256(data).digest())


def leaf_from_digest(digest: bytes) -> bytes:
    """Return the leaf hash for ``digest = SHA-256(issuer-signed JWT)``.

    Raises ``ValueError`` if ``digest`` is not 32 bytes.
    """
    _check_digest(digest, "digest")
    return hashlib.sha256(_LEAF_PREFIX + digest).digest()


def _check_digest(value: bytes, name: str) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes")
    if len(value) != HASH_SIZE:
        raise ValueError(f"{name} must be {HASH_SIZE} bytes, not {len(value)}")


def proof_length(index: int, size: int) -> int:
    """Return the number of sibling hashes in the audit path of leaf ``index`` of ``size``.

    The path has an "inner" part, below the level where the paths to ``index`` and to
    the last leaf meet, and a "border" part above it, where the node is on the right
    edge and has a (left) sibling only when it is a right child.
    Raises ``ValueError`` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


# --- building ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Receipt:
    """Evidence that one leaf is in the batch ``batch_id`` anchored on chain.

    ``siblings`` is the RFC 9162 audit path of leaf ``index`` in a tree of ``size``
    leaves, lowest level first. A receipt is not checked when constructed: ``from_json``
    and ``from_bytes`` check what they parse, and ``verify_inclusion`` checks the rest.
    The root does not commit to ``size``: ``(index, size)`` only fixes the shape of the
    path. A size changed without changing that shape still verifies, and still proves
    only that the leaf is under the root; the 0x00 leaf prefix is what keeps a changed
    shape from passing an inner node off as a leaf.
    """

    batch_id: int
    index: int
    size: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the receipt as a JSON object; siblings are unpadded base64url strings."""
        return {
            "batch_id": self.batch_id,
            "index": self.index,
            "size": self.size,
            "siblings": [b64e(s) for s in self.siblings],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> Receipt:
        """Return the receipt in ``data``: a JSON object or its text.

        Raises ``InvalidCredential`` for invalid JSON, duplicate, missing or unknown keys,
        numbers that are not integers in ``0..2**64-1``, ``index >= size``, siblings that
        are not 43-character base64url of 32 bytes, or a sibling count other than the one
        ``(index, size)`` requires.
        """
        obj = _parse_json_text(data) if isinstance(data, str | bytes) else data
        if not isinstance(obj, Mapping) or set(obj) != _FIELDS:
            raise _malformed("expected exactly the keys batch_id, index, size, siblings")
        numbers = [obj["batch_id"], obj["index"], obj["size"]]
        if not all(type(n) is int and 0 <= n <= MAX_NUMBER for n in numbers):
            raise _malformed("batch_id, index and size must be integers in 0..2**64-1")
        siblings = obj["siblings"]
        if not isinstance(siblings, list):
            raise _malformed("siblings must be a list")
        batch_id, index, size = numbers
        return _checked(batch_id, index, size, tuple(_b64d_digest(s) for s in siblings))

    def to_bytes(self) -> bytes:
        """Return the compact form: varints batch_id, index, size, then the siblings.

        Raises ``ValueError`` if a number is outside ``0..2**64-1`` or a sibling is not
        32 bytes.
        """
        for sibling in self.siblings:
            _check_digest(sibling, "sibling")
        head = _varint(self.batch_id) + _varint(self.index) + _varint(self.size)
        return head + b"".join(self.siblings)

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Return the receipt encoded by ``to_bytes``.

        Raises ``InvalidCredential`` for truncated, over-long or non-minimal varints,
        ``index >= size``, or any byte count after the varints other than 32 times the
        sibling count ``(index, size)`` requires (so trailing bytes are rejected).
        """
        data = bytes(data)
        batch_id, pos = _read_varint(data, 0)
        index, pos = _read_varint(data, pos)
        size, pos = _read_varint(data, pos)
        body = data[pos:]
        if len(body) % HASH_SIZE:
            raise _malformed("sibling bytes are not a multiple of 32")
        if 0 <= index < size and len(body) != HASH_SIZE * proof_length(index, size):
            # Counted before splitting: megabytes of "siblings" are refused unread.
            raise _malformed(f"wrong number of sibling hashes for index {index} of size {size}")
        siblings = tuple(body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE))
        return _checked(batch_id, index, size, siblings)


@dataclass(frozen=True, kw_only=True)
class Batch:
    """A built Merkle tree. Make one with ``build()``.

    ``levels[0]`` are the leaf hashes and ``levels[-1] == (root,)``; each level holds
    the parents of the one below, with an odd last node promoted unchanged.
    """

    root: bytes
    size: int
    levels: tuple[tuple[bytes, ...], ...] = field(repr=False, compare=False)

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """Return the leaf hashes, in order."""
        return self.levels[0]

    def audit_path(self, index: int) -> tuple[bytes, ...]:
        """Return the sibling hashes of leaf ``index``, lowest first.

        Raises ``ValueError`` unless ``0 <= index < size``.
        """
        if not 0 <= index < self.size:
            raise ValueError(f"index {index} is outside a batch of size {self.size}")
        path: list[bytes] = []
        for level in self.levels[:-1]:
            # A promoted last node has index ^ 1 == len(level): no sibling on this level.
            if (index ^ 1) < len(level):
                path.append(level[index ^ 1])
            index >>= 1
        return tuple(path)

    def receipt(self, batch_id: int, index: int) -> Receipt:
        """Return the receipt of leaf ``index``. Raises ``ValueError`` for a bad index."""
        siblings = self.audit_path(index)
        return Receipt(batch_id=batch_id, index=index, size=self.size, siblings=siblings)

    def receipts(self, batch_id: int) -> list[Receipt]:
        """Return the receipt of every leaf, in leaf order.

        The cyclic garbage collector is paused while they are built (see
        ``_cyclic_gc_paused``).
        """
        size = self.size
        with _cyclic_gc_paused():
            return [
                Receipt(batch_id=batch_id, index=i, size=size, siblings=path)
                for i, path in enumerate(_all_audit_paths(self.levels))
            ]


def build(leaves: Sequence[bytes]) -> Batch:
    """Return the Merkle tree over ``leaves`` (leaf hashes, in order).

    Raises ``ValueError`` for an empty sequence (a batch has at least one leaf) or a
    leaf that is not 32 bytes, and ``TypeError`` for a leaf that is not ``bytes``.
    """
    if not leaves:
        raise ValueError("a batch has at least one leaf")
    # set(map(...)) runs the per-leaf checks in C, a few ms for 100,000 leaves.
    if not set(map(type, leaves)) <= {bytes}:
        raise TypeError("leaves must be bytes")
    if set(map(len, leaves)) != {HASH_SIZE}:
        raise ValueError(f"every leaf must be {HASH_SIZE} bytes")
    levels = [tuple(leaves)]
    while len(levels[-1]) > 1:
        levels.append(_parent_level(levels[-1]))
    return Batch(root=levels[-1][0], size=len(leaves), levels=tuple(levels))


def _parent_level(level: tuple[bytes, ...]) -> tuple[bytes, ...]:
    sha256 = hashlib.sha256
    pairs = iter(level)  # zipped with itself: (0, 1), (2, 3), ...; an odd last is left over
    parents = [
        sha256(_NODE_PREFIX + left + right).digest()
        for left, right in zip(pairs, pairs, strict=False)
    ]
    if len(level) % 2:
        parents.append(level[-1])
    return tuple(parents)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block, then restore its state.

    Building every receipt allocates about three container objects per leaf, none of
    them in a cycle; left running, the collector would scan the growing heap again and
    again, taking a quarter to a third of the time without freeing anything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _all_audit_paths(levels: tuple[tuple[bytes, ...], ...]) -> list[tuple[bytes, ...]]:
    """Return the audit path of every leaf, in leaf order.

    Works top down: all leaves under one node share the part of their path above it, so
    each level costs one tuple per node, built in comprehensions, instead of one Python
    step per leaf per level.
    """
    paths: list[tuple[bytes, ...]] = [()]
    for level in reversed(levels[:-1]):
        paths = _paths_below(level, paths)
    return paths


def _paths_below(
    level: tuple[bytes, ...], above: list[tuple[bytes, ...]]
) -> list[tuple[bytes, ...]]:
    """Return the paths of the nodes of ``level`` given the paths of their parents."""
    paired = len(level) - len(level) % 2
    paths = above[-1:] * len(level)
    # A left child's sibling is the right one and vice versa; both share the parent's
    # path. Tuple concatenation is faster here than unpacking into a new tuple.
    # ``above`` has one more entry than there are pairs when ``level`` is odd.
    rights, lefts = level[1::2], level[0:paired:2]
    paths[0:paired:2] = [(r,) + up for r, up in zip(rights, above, strict=False)]  # noqa: RUF005
    paths[1:paired:2] = [(le,) + up for le, up in zip(lefts, above, strict=False)]  # noqa: RUF005
    # An odd last node was promoted, so its path is its parent's: above[-1], as filled.
    return paths


# --- verifying --------------------------------------------------------------------------


def root_from_inclusion(leaf: bytes, receipt: Receipt) -> bytes:
    """Return the root that ``receipt`` proves ``leaf`` (a leaf hash) is under.

    Raises ``AnchorError`` if the index is outside the tree, the sibling count is not
    the one ``(index, size)`` requires (checked before any hashing), or a sibling is not
    32 bytes; ``ValueError``/``TypeError`` if ``leaf`` is not a 32-byte ``bytes``.
    """
    _check_digest(leaf, "leaf")
    index, size, siblings = receipt.index, receipt.size, receipt.siblings
    # (1): the leaf is inside the tree.
    if not 0 <= index < size:
        raise AnchorError(
            "アンカー証明のリーフ番号がツリーの範囲外です",
            f"anchor receipt index {index} is outside a tree of size {size}",
        )
    # (2): the path length follows from (index, size); a longer or shorter one could
    # make an inner node pass for a leaf or a leaf for a subtree.
    expected = proof_length(index, size)
    if len(siblings) != expected:
        raise AnchorError(
            "アンカー証明の兄弟ハッシュの数が正しくありません",
            f"anchor receipt has {len(siblings)} sibling hashes; "
            f"index {index} of a tree of size {size} needs {expected}",
        )
    # (3): every sibling is a SHA-256 digest.
    if not set(map(type, siblings)) <= {bytes} or not set(map(len, siblings)) <= {HASH_SIZE}:
        raise AnchorError(
            "アンカー証明の兄弟ハッシュの長さが正しくありません",
            "anchor receipt sibling hashes must be 32-byte strings",
        )
    # (4): hash up the path: below the right border the side follows the index bits,
    # on the border every sibling is a left one. Hashing is inlined: a call per level
    # would cost a sixth of the verification.
    sha256 = hashlib.sha256
    inner = (index ^ (size - 1)).bit_length()
    node = leaf
    for sibling in siblings[:inner]:
        pair = sibling + node if index & 1 else node + sibling
        node = sha256(_NODE_PREFIX + pair).digest()
        index >>= 1
    for sibling in siblings[inner:]:
        node = sha256(_NODE_PREFIX + sibling + node).digest()
    return node


def verify_inclusion(leaf: bytes, receipt: Receipt, root: bytes) -> None:
    """Return ``None`` if ``receipt`` proves ``leaf`` (a leaf hash) is under ``root``.

    Raises ``AnchorError`` for every failure ``root_from_inclusion`` raises for, and when
    the computed root is not ``root``; ``ValueError``/``TypeError`` if ``leaf`` or
    ``root`` is not a 32-byte ``bytes``.
    """
    _check_digest(root, "root")
    if root_from_inclusion(leaf, receipt) != root:
        raise AnchorError(
            "アンカー証明から計算したルートが、アンカーされたルートと一致しません",
            "anchor receipt does not lead to the anchored Merkle root",
        )


# --- encodings --------------------------------------------------------------------------


def _checked(batch_id: int, index: int, size: int, siblings: tuple[bytes, ...]) -> Receipt:
    if not 0 <= index < size:
        raise _malformed(f"index {index} is outside a tree of size {size}")
    if len(siblings) != proof_length(index, size):
        raise _malformed(f"wrong number of sibling hashes for index {index} of size {size}")
    return Receipt(batch_id=batch_id, index=index, size=size, siblings=siblings)


def _malformed(detail: str) -> InvalidCredential:
    return InvalidCredential(
        "アンカー証明の形式が正しくありません", f"malformed anchor receipt: {detail}"
    )


def _parse_json_text(text: str | bytes) -> Any:
    try:
        return loads_strict(text.encode("utf-8") if isinstance(text, str) else text)
    except (ValueError, RecursionError) as e:  # not JSON, duplicate keys, NaN
        raise _malformed("not JSON") from e


def _b64d_digest(text: object) -> bytes:
    # Strict base64url (credentials.encoding): canonical trailing bits, so two encodings
    # of one digest cannot both pass.
    if not isinstance(text, str) or not _B64_DIGEST.fullmatch(text):
        raise _malformed("a sibling is not 43 characters of base64url")
    try:
        return b64d(text)
    except ValueError as e:
        raise _malformed("a sibling is non-canonical base64url") from e


def _varint(value: int) -> bytes:
    """Return ``value`` as an unsigned LEB128 varint. Raises ``ValueError`` if out of range."""
    return leb128(value, max_value=MAX_NUMBER)


_VARINT_PROBLEMS = {
    "truncated": "truncated number",
    "non-minimal": "non-minimal number",
    "too-large": "number above 2**64-1 or longer than 10 bytes",
}


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Return the varint at ``pos`` and the position after it.

    Raises ``InvalidCredential`` if it is truncated, not minimal (a last byte of zero
    after other bytes), longer than 10 bytes, or above ``2**64 - 1``: one number, one
    encoding.
    """
    try:
        return read_leb128(data, pos, max_value=MAX_NUMBER)
    except Leb128Error as e:
        raise _malformed(_VARINT_PROBLEMS[e.reason]) from None
