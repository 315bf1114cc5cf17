"""Token Status List (draft-ietf-oauth-status-list): revocation without asking the issuer
about one credential.

A status list is a byte array in which entry ``i`` occupies ``bits`` bits at byte
``i * bits // 8``, packed from the least significant bit (draft §4.1). It travels as
``{"bits": …, "lst": base64url(zlib(bytes))}`` inside a signed Status List Token
(``typ: statuslist+jwt``, draft §5.1). Thousands of credentials share one list, and an
issuer hands out random indices (herd privacy, draft §12): fetching the list tells the
issuer nothing about which credential is being checked.

Pure: no network and no clock; ``now`` and the randomness source are parameters.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from . import _jws
from ._b64 import b64d, b64e
from .errors import InvalidCredential, ShomeiError, VerificationError
from .keys import SigningKey

TYP = "statuslist+jwt"
MEDIA_TYPE = "application/statuslist+jwt"
VALID, INVALID, SUSPENDED = 0x00, 0x01, 0x02
BITS = (1, 2, 4, 8)
#: 2**17 entries: 16 KiB at one bit each, a few hundred bytes compressed while empty.
DEFAULT_SIZE = 131_072
#: Largest decompressed list accepted (32 Mi one-bit entries); zlib can expand a
#: thousandfold, so the bound applies while decompressing, not after.
DEFAULT_MAX_SIZE = 4 * 1024 * 1024
DEFAULT_SKEW = 60
_PROBES = 64
_WHAT, _WHAT_EN = "失効リストトークン", "status list token"

KeyResolver = Callable[[str, str], ec.EllipticCurvePublicKey]


class StatusListFull(ShomeiError):
    """Every index of a status list is taken: the issuer must open a new list."""


class RandBelow(Protocol):
    """A source of random indices: the :mod:`secrets` module, or a seeded one in tests."""

    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


class StatusList:
    """A mutable status list: ``size`` entries of ``bits`` bits each, all VALID at first."""

    __slots__ = ("_data", "bits")

    def __init__(self, *, bits: int = 2, size: int = DEFAULT_SIZE) -> None:
        """Raises ``ValueError`` for bits other than 1, 2, 4, 8, or a size that does not
        fill whole bytes."""
        _check_bits_arg(bits)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError("size must be a positive integer")
        if size * bits % 8:
            raise ValueError("size * bits must be a multiple of 8 (whole bytes)")
        self.bits = bits
        self._data = bytearray(size * bits // 8)

    @classmethod
    def from_bytes(cls, data: bytes, *, bits: int) -> StatusList:
        """A list over an uncompressed byte array. Raises ``ValueError`` when empty."""
        _check_bits_arg(bits)
        if not data:
            raise ValueError("a status list needs at least one byte")
        new = cls.__new__(cls)
        new.bits = bits
        new._data = bytearray(data)
        return new

    @property
    def size(self) -> int:
        """The number of entries."""
        return len(self._data) * 8 // self.bits

    def to_bytes(self) -> bytes:
        """The uncompressed byte array."""
        return bytes(self._data)

    def _locate(self, idx: int) -> tuple[int, int]:
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise TypeError("index must be an integer")
        if not 0 <= idx < self.size:
            raise IndexError(f"index {idx} outside the status list (size {self.size})")
        bit = idx * self.bits
        return bit >> 3, bit & 7

    def get(self, idx: int) -> int:
        """The status value at ``idx``. Raises ``IndexError`` outside the list."""
        byte, shift = self._locate(idx)
        return (self._data[byte] >> shift) & ((1 << self.bits) - 1)

    def set(self, idx: int, value: int) -> None:
        """Set entry ``idx`` to ``value``. Raises ``IndexError`` outside the list and
        ``ValueError`` for a value that does not fit in ``bits``."""
        mask = (1 << self.bits) - 1
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= mask:
            raise ValueError(f"status value must be between 0 and {mask}")
        byte, shift = self._locate(idx)
        self._data[byte] = (self._data[byte] & ~(mask << shift)) | (value << shift)

    def encode(self) -> dict[str, Any]:
        """The JSON form ``{"bits": …, "lst": …}`` (draft §4.2), compressed at the highest
        level as the draft recommends."""
        return {"bits": self.bits, "lst": b64e(zlib.compress(self._data, 9))}

    @classmethod
    def decode(cls, obj: Any, *, max_size: int = DEFAULT_MAX_SIZE) -> StatusList:
        """Parse the JSON form strictly; ``max_size`` bounds the decompressed bytes.

        Raises :class:`InvalidCredential` for bits other than 1, 2, 4, 8, a ``lst`` that
        is not base64url, not a complete zlib stream, followed by other data, empty, or
        larger than ``max_size`` once decompressed.
        """
        if not isinstance(obj, Mapping):
            raise InvalidCredential(
                "失効リスト（status_list）がオブジェクトではありません",
                "status_list is not a JSON object",
            )
        bits, lst = obj.get("bits"), obj.get("lst")
        if type(bits) is not int or bits not in BITS:
            raise InvalidCredential(
                f"失効リストのビット数 {bits!r} は不正です（1, 2, 4, 8 のいずれか）",
                f"status list bits {bits!r} is not 1, 2, 4 or 8",
            )
        if not isinstance(lst, str):
            raise InvalidCredential(
                "失効リスト（lst）が文字列ではありません", "status list lst is not a string"
            )
        try:
            compressed = b64d(lst)
        except ValueError:
            raise InvalidCredential(
                "失効リスト（lst）の base64url が不正です", "status list lst is not base64url"
            ) from None
        return cls.from_bytes(_inflate(compressed, max_size), bits=bits)


def _check_bits_arg(bits: int) -> None:
    if type(bits) is not int or bits not in BITS:
        raise ValueError("bits must be 1, 2, 4 or 8")


def _inflate(compressed: bytes, max_size: int) -> bytes:
    """Decompress a ZLIB stream, stopping as soon as the output exceeds ``max_size``
    (a few bytes can claim gigabytes). Raises :class:`InvalidCredential`."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(compressed, max_size + 1)
    except zlib.error:
        raise InvalidCredential(
            "失効リストを展開できません（zlib 形式が不正です）",
            "status list cannot be decompressed (not a valid zlib stream)",
        ) from None
    if len(out) > max_size:
        raise InvalidCredential(
            f"失効リストが大きすぎます（展開後 {max_size} バイトまで）",
            f"status list too large (over {max_size} bytes decompressed)",
        )
    # Below the output bound all input was consumed, so a missing end is truncation.
    if not inflater.eof:
        raise InvalidCredential(
            "失効リストの圧縮データが途中で切れています", "status list data is truncated"
        )
    if inflater.unused_data:
        raise InvalidCredential(
            "失効リストの圧縮データの後に余分なデータがあります",
            "status list has trailing data after the compressed stream",
        )
    if not out:
        raise InvalidCredential("失効リストが空です", "status list is empty")
    return out


# --------------------------------------------------------------------------- references


def parse_reference(ref: Any) -> tuple[int, str]:
    """``(idx, uri)`` from a credential's ``status`` claim
    ``{"status_list": {"idx": …, "uri": …}}`` (draft §6.2).

    Raises :class:`InvalidCredential` when either is missing or malformed.
    """
    entry = ref.get("status_list") if isinstance(ref, Mapping) else None
    idx = entry.get("idx") if isinstance(entry, Mapping) else None
    uri = entry.get("uri") if isinstance(entry, Mapping) else None
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
        raise InvalidCredential(
            "失効情報の参照の索引（idx）が不正です", "status reference idx is not an index"
        )
    if not isinstance(uri, str) or not uri:
        raise InvalidCredential(
            "失効情報の参照のURI（uri）が不正です", "status reference uri is not a string"
        )
    return idx, uri


def allocate_index(
    used: AbstractSet[int] | Callable[[int], bool],
    size: int = DEFAULT_SIZE,
    *,
    random: RandBelow = secrets,
) -> int:
    """A random index below ``size`` not in ``used`` (a set, or a predicate telling
    whether an index is taken).

    Random indices keep the list from revealing issuance order or volume (draft §12.4).
    Indices are drawn uniformly; when a few draws all miss (a nearly full list) it scans
    from a random start instead. Raises :class:`StatusListFull` when every index is
    taken, ``ValueError`` for a size that is not positive.
    """
    if size <= 0:
        raise ValueError("size must be positive")
    taken = used.__contains__ if isinstance(used, AbstractSet) else used
    for _ in range(_PROBES):
        idx = random.randbelow(size)
        if not taken(idx):
            return idx
    start = random.randbelow(size)
    for offset in range(size):
        idx = (start + offset) % size
        if not taken(idx):
            return idx
    raise StatusListFull(
        f"失効リストに空きがありません（{size} 件）", f"the status list is full ({size} entries)"
    )


# --------------------------------------------------------------------------- tokens


def issue_token(
    status_list: StatusList,
    *,
    key: SigningKey,
    issuer: str,
    uri: str,
    iat: int,
    exp: int,
    ttl: int,
) -> str:
    """Sign a Status List Token (draft §5.1) for the list served at ``uri``.

    Raises ``ValueError`` when ``exp`` is not after ``iat`` or ``ttl`` is not positive.
    """
    if exp <= iat:
        raise ValueError("exp must be after iat")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    header = _jws.encode_header({"alg": _jws.ALG, "kid": key.kid, "typ": TYP})
    payload = {
        "iss": issuer,
        "sub": uri,
        "iat": iat,
        "exp": exp,
        "ttl": ttl,
        "status_list": status_list.encode(),
    }
    return _jws.sign(header, payload, key.private_key)


@dataclass(frozen=True)
class StatusListToken:
    """A verified Status List Token: the list and the claims that govern caching."""

    status_list: StatusList
    iss: str
    sub: str
    iat: float
    exp: float | None
    ttl: float | None

    @classmethod
    def verify(
        cls,
        token: str,
        *,
        resolve_key: KeyResolver,
        uri: str,
        issuer: str | None,
        now: float,
        max_size: int = DEFAULT_MAX_SIZE,
        skew: int = DEFAULT_SKEW,
    ) -> StatusListToken:
        """Verify ``token`` as the list a credential of ``issuer`` names at ``uri``.

        Checks, in order: the header (ES256, ``typ``, no ``crit``), ``iss`` (equal to
        ``issuer``; with ``issuer=None`` any issuer ``resolve_key`` trusts), the
        signature by ``resolve_key(iss, kid)``, ``sub`` equal to ``uri``, ``iat`` and
        ``exp`` against ``now`` with ``skew`` seconds of tolerance, a positive ``ttl``,
        and the list itself. Raises :class:`InvalidCredential` when the token cannot be
        parsed, :class:`VerificationError` when it does not verify.
        """
        jws = _jws.CompactJws(token, what=_WHAT, what_en=_WHAT_EN)
        jws.check_header(typ=TYP, what=_WHAT, what_en=_WHAT_EN)
        payload = jws.unverified_payload
        iss = _check_iss(payload.get("iss"), issuer)
        kid = jws.unverified_header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise VerificationError(
                f"{_WHAT}に鍵ID（kid）がありません", f"{_WHAT_EN} has no key id (kid)"
            )
        jws.verify(resolve_key(iss, kid), what=_WHAT, what_en=_WHAT_EN)
        if payload.get("sub") != uri:
            raise VerificationError(
                f"{_WHAT}の対象（sub）が証明書の参照先 {uri} と一致しません",
                f"{_WHAT_EN} sub {payload.get('sub')!r} is not the referenced uri {uri}",
            )
        iat, exp, ttl = _check_times(payload, now=now, skew=skew)
        status_list = StatusList.decode(payload.get("status_list"), max_size=max_size)
        return cls(status_list=status_list, iss=iss, sub=uri, iat=iat, exp=exp, ttl=ttl)


def verify_token(
    token: str,
    *,
    resolve_key: KeyResolver,
    uri: str,
    issuer: str | None,
    now: float,
    max_size: int = DEFAULT_MAX_SIZE,
    skew: int = DEFAULT_SKEW,
) -> StatusList:
    """The verified list of a Status List Token; see :meth:`StatusListToken.verify` for
    the checks. Raises :class:`InvalidCredential` or :class:`VerificationError`."""
    return StatusListToken.verify(
        token,
        resolve_key=resolve_key,
        uri=uri,
        issuer=issuer,
        now=now,
        max_size=max_size,
        skew=skew,
    ).status_list


def _check_iss(iss: Any, issuer: str | None) -> str:
    if not isinstance(iss, str) or not iss:
        raise VerificationError(f"{_WHAT}に発行者（iss）がありません", f"{_WHAT_EN} has no iss")
    if issuer is not None and iss != issuer:
        raise VerificationError(
            f"{_WHAT}の発行者 {iss} が証明書の発行者 {issuer} と一致しません",
            f"{_WHAT_EN} issuer {iss} is not the credential's issuer {issuer}",
        )
    return iss


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VerificationError(
            f"{_WHAT}の {name} が数値ではありません", f"{_WHAT_EN} {name} is not a number"
        )
    return value


def _check_times(
    payload: Mapping[str, Any], *, now: float, skew: int
) -> tuple[float, float | None, float | None]:
    """``(iat, exp, ttl)`` once checked against ``now``. Raises VerificationError."""
    iat, exp, ttl = _number(payload, "iat"), _number(payload, "exp"), _number(payload, "ttl")
    if iat is None:
        raise VerificationError(f"{_WHAT}に発行日時（iat）がありません", f"{_WHAT_EN} has no iat")
    if iat > now + skew:
        raise VerificationError(
            f"{_WHAT}の発行日時が未来になっています", f"{_WHAT_EN} is issued in the future (iat)"
        )
    if exp is not None and exp <= now - skew:
        raise VerificationError(f"{_WHAT}の有効期限が切れています", f"{_WHAT_EN} has expired (exp)")
    if ttl is not None and ttl <= 0:
        raise VerificationError(
            f"{_WHAT}の ttl が正の数ではありません", f"{_WHAT_EN} ttl is not positive"
        )
    return iat, exp, ttl
