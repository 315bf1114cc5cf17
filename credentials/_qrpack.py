"""The packing of an embedded QR container (format version 1): the preset DEFLATE
dictionary, a strict byte reader, and the presentation packing that stores base64url
segments as bytes and recomputes what can be recomputed. See :mod:`credentials.qr`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._b64 import b64d, b64e
from ._leb128 import Leb128Error, leb128, read_leb128
from .errors import InvalidCredential

# Format version 1 depends on every byte of this dictionary: a decoder inflates with the
# very dictionary the encoder deflated with. NEVER change it for version 1; a better
# dictionary needs format version 2 (and a new text prefix).
# Rarest first: DEFLATE reaches the end of the dictionary with the shortest distances.
# Control characters are the packing's markers (see _M32 and the following).
_ZDICT_V1: Final = "".join(
    (
        "株式会社代表取締役市長工事年度令和平成昭和第号線地内一二三四五六七八九十",
        "丁目番地番号都道府県市区町村郡大字字北海道東京都大阪府京都府",
        "世帯主長男長女次男次女妻夫子父母男女",
        "https://www.city..lg.jp/status/vct/contract/1/vct/partnership/1/vct/juminhyo/1",
        '"agreements","party","signature","signed_at","thumbprint","document_sha256",',
        '"concluded_on","site","period","start","end","amount_jpy","contractor",',
        '"corporate_number","representative","orderer","municipality_code","name",',
        '"contract_number","title","recognized_by","children","certificate_number",',
        '"declared_on","partner_birthdate","partner_given_name","partner_family_name",',
        '"holder_birthdate","holder_given_name","holder_family_name","domicile_head",',
        '"registered_domicile","previous_address","notified_on","address_since",',
        '"resident_since","relationship_to_head","head_of_household","sex",',
        '"given_name_kana","family_name_kana","birthdate","address","given_name",',
        '"family_name","',
        '{"alg":"ES256","typ":"kb+jwt"}',
        '{"aud":"https://","iat":1,"nonce":\x02,"sd_hash":\x04}',
        '{"alg":"ES256","kid":\x01,"typ":"dc+sd-jwt"}',
        '{"_sd":[\x01,\x01,\x03,\x01,\x01,\x03,\x01,\x01],"_sd_alg":"sha-256",',
        '"cnf":{"jwk":{"crv":"P-256","kty":"EC",\x05}},"exp":1',
        '"iat":1,"iss":"https://","nbf":1,"status":{"status_list":{"idx":1,"uri":"https://',
        '"sub":"","vct":"https://',
    )
).encode()


def _corrupt(ja: str, en: str) -> InvalidCredential:
    return InvalidCredential(f"QRコードのデータが壊れています（{ja}）", f"corrupt QR payload: {en}")


# --------------------------------------------------------------------------- reading


_VARINT_PROBLEMS = {
    "truncated": ("長さが範囲を超えています", "a length overruns the data"),
    "non-minimal": ("長さの符号化が不正です", "non-minimal length encoding"),
    "too-large": ("長さが大きすぎます", "length encoding too long"),
}


class _Reader:
    """Cursor over untrusted bytes; every overrun is an ``InvalidCredential``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise _corrupt("長さが範囲を超えています", "a length overruns the data")
        self._pos += n
        return self._data[self._pos - n : self._pos]

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        """Read a minimal LEB128 integer below 2**28."""
        try:
            value, self._pos = read_leb128(self._data, self._pos, max_value=2**28 - 1)
        except Leb128Error as e:
            raise _corrupt(*_VARINT_PROBLEMS[e.reason]) from None
        return value

    def chunk(self) -> bytes:
        return self.take(self.varint())

    def expect_end(self, what_ja: str, what_en: str) -> None:
        if self.remaining:
            raise _corrupt(
                f"{what_ja}の後に余分なデータがあります", f"trailing bytes after {what_en}"
            )


def _varint(n: int) -> bytes:
    return leb128(n)


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + _varint(len(value)) + value


# --------------------------------------------------------------------------- packing

# Markers stand for JSON strings in the packed text. Canonical JSON escapes every control
# character, so no marker occurs in it. A marker's value comes from the table after the
# texts, or is recomputed from what was decoded before it.
_M32: Final = 0x01  # "<base64url of 32 table bytes>": digests, kid, coordinates
_M16: Final = 0x02  # "<base64url of 16 table bytes>": salts, nonces
_M_DIGEST: Final = 0x03  # "<digest of disclosure i>", i a LEB128 in the table
_M_SD_HASH: Final = 0x04  # "<sd_hash of this presentation>" (KB-JWT only)
_M_POINT: Final = 0x05  # "x":"…","y":"…" of a P-256 point, 33 table bytes (SEC1 compressed)
_MARKER: Final = re.compile(rb"[\x01-\x05]")
_SQUEEZABLE: Final = re.compile(
    rb'"x":"([A-Za-z0-9_-]{43})","y":"([A-Za-z0-9_-]{43})"'
    rb'|"([A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{22})"'
)
_P256: Final = ec.SECP256R1()
_COORD_BYTES: Final = 32

# base64url text of a value the decoder recomputes -> (marker, table bytes)
_Derived = dict[bytes, tuple[int, bytes]]


@dataclass(frozen=True)
class _Packed:
    """A packed presentation: JSON texts with markers, then the random bytes."""

    text: bytes
    binary: bytes


def _digest(ascii_text: str) -> str:
    return b64e(hashlib.sha256(ascii_text.encode("ascii")).digest())


def _compress_point(x_b64: bytes, y_b64: bytes) -> bytes | None:
    try:
        x, y = b64d(x_b64), b64d(y_b64)
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), _P256
        )
        key = numbers.public_key()
    except ValueError:  # not canonical base64url, or not a point on P-256
        return None
    return key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def _point_text(sec1: bytes) -> bytes:
    try:
        numbers = ec.EllipticCurvePublicKey.from_encoded_point(_P256, sec1).public_numbers()
    except ValueError:
        raise _corrupt("鍵の座標が不正です", "invalid P-256 point") from None
    x, y = (b64e(c.to_bytes(_COORD_BYTES, "big")) for c in (numbers.x, numbers.y))
    return f'"x":"{x}","y":"{y}"'.encode("ascii")


def _squeeze(json_bytes: bytes, table: bytearray, derived: _Derived) -> bytes:
    """Return ``json_bytes`` with markers for base64url strings; append their bytes to
    ``table``."""

    def string(b64: bytes) -> bytes:
        if b64 in derived:
            marker, extra = derived[b64]
            table.extend(extra)
            return bytes([marker])
        try:
            raw = b64d(b64)
        except ValueError:  # non-canonical: stays text, so the bytes still round-trip
            return b'"' + b64 + b'"'
        table.extend(raw)
        return bytes([_M32 if len(raw) == _COORD_BYTES else _M16])

    def replace(m: re.Match[bytes]) -> bytes:
        if m.group(3) is not None:
            return string(m.group(3))
        point = _compress_point(m.group(1), m.group(2))
        if point is None:
            return b'"x":' + string(m.group(1)) + b',"y":' + string(m.group(2))
        table.extend(point)
        return bytes([_M_POINT])

    return _SQUEEZABLE.sub(replace, json_bytes)


def _split(presentation: str) -> tuple[list[str], list[str], list[str]] | None:
    """Return (issuer JWT segments, disclosures, KB-JWT segments), or None if the text is
    not shaped like an SD-JWT."""
    if not presentation.isascii():
        return None
    parts = presentation.split("~")
    jwt = parts[0].split(".")
    kb = parts[-1].split(".") if parts[-1] else []
    if len(parts) < 2 or len(jwt) != 3 or len(kb) not in (0, 3):
        return None
    return jwt, parts[1:-1], kb


def _pack(presentation: str) -> _Packed | None:
    """Pack an SD-JWT presentation, or return None when the packing does not apply.

    Layout: n_disclosures (LEB128), has_kb (0/1), length-prefixed JSON texts with
    markers (issuer header, each disclosure, issuer payload, KB header, KB payload), the
    length-prefixed signatures (issuer, KB), then the table, read in marker order.
    Disclosures come before the payload so that the payload can refer to their digests.
    """
    shape = _split(presentation)
    if shape is None:
        return None
    jwt, disclosures, kb = shape
    try:
        header, payload = b64d(jwt[0]), b64d(jwt[1])
        disclosed = [b64d(d) for d in disclosures]
        kb_json = [b64d(s) for s in kb[:2]]
        signatures = [b64d(jwt[2]), *(b64d(s) for s in kb[2:])]
    except ValueError:
        return None
    if any(_MARKER.search(j) for j in (header, payload, *disclosed, *kb_json)):
        return None
    digests: _Derived = {
        _digest(d).encode("ascii"): (_M_DIGEST, _varint(i)) for i, d in enumerate(disclosures)
    }
    sd_hash = _digest(presentation[: presentation.rindex("~") + 1]).encode("ascii")
    kb_derived = {**digests, sd_hash: (_M_SD_HASH, b"")}
    plan = [(header, {}), *((d, {}) for d in disclosed), (payload, digests)]
    plan += [(j, kb_derived) for j in kb_json]
    table = bytearray()
    text = [_varint(len(disclosures)), b"\x01" if kb else b"\x00"]
    for json_bytes, derived in plan:
        squeezed = _squeeze(json_bytes, table, derived)
        text += (_varint(len(squeezed)), squeezed)
    binary = [_varint(len(s)) + s for s in signatures]
    return _Packed(text=b"".join(text), binary=b"".join(binary) + table)


class _Unpacker:
    """Rebuilds a packed presentation, never producing more than ``limit`` characters."""

    def __init__(self, value: bytes, limit: int) -> None:
        self.table = _Reader(value)
        self.limit = limit
        self.digests: list[str] = []
        self.sd_hash: str | None = None

    def segment(self, text: bytes) -> str:
        """Return the base64url segment of a packed JSON text."""
        out: list[bytes] = []
        size = pos = 0
        for m in _MARKER.finditer(text):
            value = self._restore(text[m.start()])
            out += (text[pos : m.start()], value)
            # A marker in one or two bytes yields up to 90: stop a flood of them early.
            size += m.start() - pos + len(value)
            if size * 4 // 3 > self.limit:
                raise _too_large()
            pos = m.end()
        out.append(text[pos:])
        return self._spend(b64e(b"".join(out)))

    def binary(self, raw: bytes) -> str:
        return self._spend(b64e(raw))

    def _spend(self, segment: str) -> str:
        self.limit -= len(segment)
        if self.limit < 0:
            raise _too_large()
        return segment

    def _restore(self, marker: int) -> bytes:
        if marker == _M_POINT:
            return _point_text(self.table.take(33))
        if marker == _M32:
            value = b64e(self.table.take(32))
        elif marker == _M16:
            value = b64e(self.table.take(16))
        elif marker == _M_DIGEST:
            index = self.table.varint()
            if index >= len(self.digests):
                raise _corrupt("開示項目への参照が不正です", "reference to a missing disclosure")
            value = self.digests[index]
        elif self.sd_hash is None:
            raise _corrupt("sd_hash の参照が不正です", "sd_hash reference outside a KB-JWT")
        else:
            value = self.sd_hash
        return b'"' + value.encode("ascii") + b'"'


def _too_large() -> InvalidCredential:
    return _corrupt("展開後の提示データが大きすぎます", "rebuilt presentation too large")


def _unpack(value: bytes, limit: int) -> str:
    """Rebuild the presentation text from a packed field.

    Raises ``InvalidCredential`` for a malformed field or a text over ``limit``.
    """
    u = _Unpacker(value, limit)
    r = u.table
    n = r.varint()
    has_kb = r.byte()
    if has_kb > 1 or n > r.remaining:
        raise _corrupt("提示データの構造が不正です", "malformed packed presentation")
    texts = [r.chunk() for _ in range(2 + n + 2 * has_kb)]
    signatures = [u.binary(r.chunk()) for _ in range(1 + has_kb)]
    header = u.segment(texts[0])
    disclosures = [u.segment(t) for t in texts[1 : 1 + n]]
    u.digests = [_digest(d) for d in disclosures]
    payload = u.segment(texts[1 + n])
    sd_jwt = "~".join([f"{header}.{payload}.{signatures[0]}", *disclosures, ""])
    kb = ""
    if has_kb:
        u.sd_hash = _digest(sd_jwt)
        kb = ".".join([*(u.segment(t) for t in texts[2 + n :]), signatures[1]])
    r.expect_end("提示データ", "the packed presentation")
    if len(sd_jwt) + len(kb) > limit:  # the segments fit; the separators may not
        raise _too_large()
    return sd_jwt + kb
