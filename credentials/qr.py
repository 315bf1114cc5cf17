"""QR payloads for SD-JWT presentations: embedded (Base45 container) and link mode.

Embedded mode puts the whole presentation in the QR code as ``SH1:`` + Base45 (RFC 9285)
of a binary *container*: one version byte, then a raw DEFLATE stream (with a fixed preset
dictionary) of type-length-value fields. Base45 keeps the QR in alphanumeric mode, which
browser camera scanners read without mangling (the EU digital COVID certificate does the
same). The presentation field stores base64url segments as the bytes they encode, so the
random parts (signatures, salts, digests, key coordinates) cost one byte per byte instead
of 4/3; digests of the disclosures it carries, the KB-JWT's ``sd_hash`` and the ``cnf``
key's ``y`` are recomputed instead of stored; the remaining JSON compresses against the
dictionary. A presentation that this packing does not restore bit for bit travels as its
raw text instead, so every string round-trips exactly.

Link mode puts only a URL in the QR: ``<relay>/<BLOB-ID>#<KEY>``. The relay stores a blob
sealed with AES-128-GCM; the key stays in the URL fragment, which browsers never send, so
the relay cannot read what it stores.

Container, format version 1 (inflated)::

    field*     field := type (1 byte) || length (LEB128) || value; types strictly ascending
    0x01  presentation, packed (see ``_pack``)
    0x02  presentation, raw UTF-8 text (anything ``_pack`` does not restore exactly)
    0x03  anchor evidence, opaque bytes

Exactly one of 0x01 and 0x02; 0x03 at most once. Unknown types are rejected: a new field
that verifiers must understand needs a new version.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import qrcode
import qrcode.exceptions
import qrcode.image.svg
import zxingcpp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image, UnidentifiedImageError

from ._b64 import b64d, b64e
from .errors import InvalidCredential, NotACredential

__all__ = [
    "DEFAULT_MAX_SIZE",
    "EMBEDDED_PREFIX",
    "FORMAT_VERSION",
    "EmbeddedPayload",
    "LinkRef",
    "b45decode",
    "b45encode",
    "classify",
    "decode_container",
    "decode_embedded",
    "decode_image",
    "encode_container",
    "encode_embedded",
    "open_sealed",
    "qr_version",
    "render_png",
    "render_svg",
    "seal",
]

FORMAT_VERSION: Final = 1
EMBEDDED_PREFIX: Final = "SH1:"
DEFAULT_MAX_SIZE: Final = 65536
MAX_IMAGE_PIXELS: Final = 20_000_000

_FIELD_PACKED: Final = 0x01
_FIELD_RAW: Final = 0x02
_FIELD_EVIDENCE: Final = 0x03

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

_B45: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE: Final = {c: i for i, c in enumerate(_B45)}

_ID_BYTES: Final = 16
_KEY_BYTES: Final = 16
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_B32: Final = re.compile(r"[A-Z2-7]{26}")  # RFC 4648 base32 of 16 bytes, unpadded
_URL_CHARS: Final = re.compile(r"[!-~]+")  # urlsplit silently drops tabs and newlines

# Lenient on purpose: a damaged credential (empty signature, padded base64, cut off
# before its first "~") must reach the verifier and fail there with a specific reason,
# not be turned away as "not a credential". A JOSE header is a JSON object, so its
# base64url starts with "ey".
_SD_JWT_SHAPE: Final = re.compile(
    r"ey[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*(~[A-Za-z0-9_.~=-]*)?"
)

Kind = Literal["embedded", "link", "sd-jwt"]
RandomBytes = Callable[[int], bytes]


def _corrupt(ja: str, en: str) -> InvalidCredential:
    return InvalidCredential(f"QRコードのデータが壊れています（{ja}）", f"corrupt QR payload: {en}")


# --------------------------------------------------------------------------- Base45


def b45encode(data: bytes) -> str:
    """Return the RFC 9285 Base45 text of ``data``."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        high, rest = divmod(data[i] << 8 | data[i + 1], 45 * 45)
        middle, low = divmod(rest, 45)
        out += (_B45[low], _B45[middle], _B45[high])
    if len(data) % 2:
        middle, low = divmod(data[-1], 45)
        out += (_B45[low], _B45[middle])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode RFC 9285 Base45 strictly.

    Raises ``ValueError`` for a character outside the alphabet, a length of 3n+1, or a
    group whose value exceeds what its bytes can hold (65535, or 255 for the last pair).
    """
    if len(text) % 3 == 1:
        raise ValueError("impossible Base45 length")
    try:
        values = [_B45_VALUE[c] for c in text]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not Base45") from None
    out = bytearray()
    full = len(values) - len(values) % 3
    for i in range(0, full, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 45 * 45
        if n > 0xFFFF:
            raise ValueError("Base45 group out of range")
        out += n.to_bytes(2, "big")
    if full < len(values):
        n = values[full] + values[full + 1] * 45
        if n > 0xFF:
            raise ValueError("Base45 group out of range")
        out.append(n)
    return bytes(out)


# --------------------------------------------------------------------------- reading


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
        value = shift = 0
        while shift < 28:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and shift:
                    raise _corrupt("長さの符号化が不正です", "non-minimal length encoding")
                return value
            shift += 7
        raise _corrupt("長さが大きすぎます", "length encoding too long")

    def chunk(self) -> bytes:
        return self.take(self.varint())

    def expect_end(self, what_ja: str, what_en: str) -> None:
        if self.remaining:
            raise _corrupt(
                f"{what_ja}の後に余分なデータがあります", f"trailing bytes after {what_en}"
            )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


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


# --------------------------------------------------------------------------- container


@dataclass(frozen=True)
class EmbeddedPayload:
    """What a container holds: the presentation text and, if present, anchor evidence."""

    presentation: str
    evidence: bytes | None = None


def _deflate(parts: list[bytes]) -> bytes:
    comp = zlib.compressobj(level=9, wbits=-15, memLevel=9, zdict=_ZDICT_V1)
    out: list[bytes] = []
    for i, part in enumerate(parts):
        out.append(comp.compress(part))
        if i < len(parts) - 1:
            # A block boundary before the random bytes lets zlib store them verbatim
            # instead of sharing one Huffman code with the JSON text.
            out.append(comp.flush(zlib.Z_BLOCK))
    out.append(comp.flush())
    return b"".join(out)


def _inflate(data: bytes, max_size: int) -> bytes:
    decomp = zlib.decompressobj(wbits=-15, zdict=_ZDICT_V1)
    try:
        # One byte over the limit is enough to tell "too large" without inflating it all.
        out = decomp.decompress(data, max_size + 1)
    except zlib.error:
        raise _corrupt("圧縮データが不正です", "invalid DEFLATE stream") from None
    if len(out) > max_size or decomp.unconsumed_tail:
        raise _corrupt(
            f"展開後のサイズが上限（{max_size}バイト）を超えています",
            f"inflates to more than {max_size} bytes",
        )
    if not decomp.eof:
        raise _corrupt("データが途中で切れています", "truncated DEFLATE stream")
    if decomp.unused_data:
        raise _corrupt("圧縮データの後に余分なデータがあります", "trailing bytes after the stream")
    return out


def _max_container(max_size: int) -> int:
    # zlib's deflateBound: stored blocks add a few bytes per 16 KiB of incompressible data.
    return max_size + max_size // 1024 + 64


def encode_container(presentation: str, evidence: bytes | None = None) -> bytes:
    """Return the binary container (version byte + DEFLATE stream) of a presentation.

    Any string round-trips exactly; SD-JWT-shaped text with canonical base64url packs
    smaller. Lone surrogates are kept (``surrogatepass``).
    """
    packed = _pack(presentation)
    if (
        packed is not None
        and _unpack(packed.text + packed.binary, len(presentation)) != presentation
    ):
        packed = None  # defensive: the encoder never emits what the decoder cannot restore
    if packed is None:
        raw = presentation.encode("utf-8", "surrogatepass")
        parts = [_tlv(_FIELD_RAW, raw)]
    else:
        value_len = len(packed.text) + len(packed.binary)
        header = bytes([_FIELD_PACKED]) + _varint(value_len)
        parts = [header + packed.text, packed.binary]
    if evidence is not None:
        parts.append(_tlv(_FIELD_EVIDENCE, evidence))
    return bytes([FORMAT_VERSION]) + _deflate([p for p in parts if p])


def _fields(plain: bytes) -> Iterator[tuple[int, bytes]]:
    r = _Reader(plain)
    last = 0
    while r.remaining:
        kind = r.byte()
        if kind not in (_FIELD_PACKED, _FIELD_RAW, _FIELD_EVIDENCE):
            raise _corrupt(
                f"未知のフィールド種別 0x{kind:02x} です", f"unknown field type 0x{kind:02x}"
            )
        if kind <= last:
            raise _corrupt("フィールドの順序が不正です", "fields out of order or repeated")
        last = kind
        yield kind, r.chunk()


def decode_container(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> EmbeddedPayload:
    """Return the payload of a binary container.

    ``max_size`` bounds both the inflated data and the rebuilt presentation (bytes,
    characters). Raises ``InvalidCredential`` for an unknown version, a corrupt, truncated
    or oversized stream, or malformed fields.
    """
    if len(data) > _max_container(max_size):
        raise _corrupt("データが大きすぎます", "container too large")
    if not data:
        raise _corrupt("データが空です", "empty container")
    if data[0] != FORMAT_VERSION:
        raise InvalidCredential(
            f"未対応の形式バージョン {data[0]} です", f"unsupported container version {data[0]}"
        )
    presentation: str | None = None
    evidence: bytes | None = None
    for kind, value in _fields(_inflate(data[1:], max_size)):
        if kind == _FIELD_EVIDENCE:
            evidence = value
        elif presentation is not None:
            raise _corrupt("提示データが二つあります", "two presentation fields")
        elif kind == _FIELD_PACKED:
            presentation = _unpack(value, max_size)
        else:
            presentation = _utf8(value)
    if presentation is None:
        raise _corrupt("提示データがありません", "no presentation field")
    return EmbeddedPayload(presentation=presentation, evidence=evidence)


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise _corrupt("文字コードが不正です", "presentation is not UTF-8") from None


# --------------------------------------------------------------------------- embedded mode


def encode_embedded(presentation: str, evidence: bytes | None = None) -> str:
    """Return the QR text ``SH1:<Base45 container>`` for a presentation (and evidence)."""
    return EMBEDDED_PREFIX + b45encode(encode_container(presentation, evidence))


def decode_embedded(text: str, *, max_size: int = DEFAULT_MAX_SIZE) -> EmbeddedPayload:
    """Return the presentation and evidence in an embedded-mode QR text.

    Raises ``NotACredential`` without the ``SH1:`` prefix, and ``InvalidCredential`` for
    bad Base45 or any container error (see :func:`decode_container`). Base45 text never
    ends in a space, so stripping what a scanner or a file returns is safe.
    """
    if not text.startswith(EMBEDDED_PREFIX):
        raise NotACredential(
            "証明書のQRコードではありません（SH1: で始まっていません）",
            "not a Shomei QR payload (no SH1: prefix)",
        )
    body = text[len(EMBEDDED_PREFIX) :]
    if len(body) > (_max_container(max_size) + 1) // 2 * 3:
        raise _corrupt("データが大きすぎます", "payload too large")
    try:
        container = b45decode(body)
    except ValueError as e:
        raise _corrupt("Base45 の形式ではありません", f"bad Base45: {e}") from None
    return decode_container(container, max_size=max_size)


# --------------------------------------------------------------------------- link mode


def _normalize_base(url: str) -> str:
    """Return ``scheme://host[:port][/path]`` with scheme and host in lower case.

    Raises ``ValueError`` for anything else (user info, query, fragment, not http(s)).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("relay URL must be http(s)://host[/path]")
    if "@" in parts.netloc or parts.query or parts.fragment or "#" in url or "?" in url:
        raise ValueError("relay URL must not have user info, query or fragment")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _b32e(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _b32d(text: str) -> bytes:
    """Decode 26 upper-case base32 characters strictly (zero spare bits)."""
    if not _B32.fullmatch(text):
        raise ValueError("not 26 base32 characters")
    raw = base64.b32decode(text + "======")
    if _b32e(raw) != text:
        raise ValueError("non-canonical base32")
    return raw


@dataclass(frozen=True, kw_only=True)
class LinkRef:
    """Where a sealed presentation lives and the key that opens it.

    ``base_url`` is the relay (``https://host/path``, scheme and host in lower case);
    ``blob_id`` names the blob there; ``key`` (AES-128-GCM) never reaches the relay.
    """

    base_url: str
    blob_id: bytes
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.blob_id) != _ID_BYTES or len(self.key) != _KEY_BYTES:
            raise ValueError("blob_id and key must be 16 bytes each")
        if _normalize_base(self.base_url) != self.base_url:
            raise ValueError("base_url must be normalized; use LinkRef.new")

    @classmethod
    def new(cls, base_url: str, *, random_bytes: RandomBytes = os.urandom) -> LinkRef:
        """Return a fresh reference (random id and key) under a relay base URL.

        Raises ``ValueError`` for a base URL that is not ``http(s)://host[/path]``.
        """
        return cls(
            base_url=_normalize_base(base_url),
            blob_id=random_bytes(_ID_BYTES),
            key=random_bytes(_KEY_BYTES),
        )

    def to_url(self) -> str:
        """Return ``<BASE>/<BLOB-ID>#<KEY>`` for the QR code.

        Scheme and host are upper-cased (RFC 3986 §3.1, §3.2.2: case-insensitive) and id
        and key are upper-case base32, so only the base path and ``#`` need QR byte mode.
        """
        scheme, rest = self.base_url.split("://", 1)
        host, slash, path = rest.partition("/")
        base = f"{scheme.upper()}://{host.upper()}{slash}{path}"
        return f"{base}/{_b32e(self.blob_id)}#{_b32e(self.key)}"

    @classmethod
    def parse(cls, url: str) -> LinkRef:
        """Return the reference in a link-mode URL.

        Raises ``InvalidCredential`` unless the URL is ``http(s)://host[/path]/<26
        base32>#<26 base32>``.
        """
        head, hash_mark, key_text = url.partition("#")
        base, _, id_text = head.rpartition("/")
        try:
            if not hash_mark or not _URL_CHARS.fullmatch(url) or base.endswith("/"):
                raise ValueError("not <base>/<id>#<key>")
            return cls(base_url=_normalize_base(base), blob_id=_b32d(id_text), key=_b32d(key_text))
        except ValueError as e:
            raise InvalidCredential(
                "QRコードのリンクの形式が不正です", f"malformed presentation link: {e}"
            ) from None


def seal(
    presentation: str,
    ref: LinkRef,
    *,
    evidence: bytes | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> bytes:
    """Return the blob to store at the relay: nonce || AES-GCM(container, aad=blob id)."""
    nonce = random_bytes(_NONCE_BYTES)
    container = encode_container(presentation, evidence)
    return nonce + AESGCM(ref.key).encrypt(nonce, container, ref.blob_id)


def open_sealed(blob: bytes, ref: LinkRef, *, max_size: int = DEFAULT_MAX_SIZE) -> EmbeddedPayload:
    """Return the payload of a blob fetched from the relay.

    Raises ``InvalidCredential`` when the blob is too short or too large, does not
    decrypt under ``ref`` (wrong key, another blob, tampering), or holds a bad container.
    """
    overhead = _NONCE_BYTES + _TAG_BYTES
    if not overhead <= len(blob) <= overhead + _max_container(max_size):
        raise _corrupt("リンク先のデータの長さが不正です", "sealed blob has an impossible size")
    nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    try:
        container = AESGCM(ref.key).decrypt(nonce, sealed, ref.blob_id)
    except InvalidTag:
        raise InvalidCredential(
            "リンク先のデータを復号できません（鍵が違うか、改ざんされています）",
            "cannot decrypt the linked presentation (wrong key or tampered data)",
        ) from None
    return decode_container(container, max_size=max_size)


# --------------------------------------------------------------------------- classify


def classify(text: str) -> Kind | None:
    """Return what a scanned or pasted text is: ``"embedded"``, ``"link"``, ``"sd-jwt"``,
    or None. Checks the shape only; decoding may still fail. Expects the exact text
    (strip line ends of text read from files first)."""
    if text.startswith(EMBEDDED_PREFIX):
        return "embedded"
    if text[:8].lower().startswith(("http://", "https://")):
        try:
            LinkRef.parse(text)
        except InvalidCredential:
            return None
        return "link"
    if _SD_JWT_SHAPE.fullmatch(text):
        return "sd-jwt"
    return None


# --------------------------------------------------------------------------- images


def _qr(text: str, *, scale: int = 4, border: int = 4) -> Any:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=scale, border=border
    )
    qr.add_data(text)
    try:
        qr.best_fit()
    except (qrcode.exceptions.DataOverflowError, ValueError):  # qrcode raises either
        raise ValueError("text too long for a QR code at error correction M") from None
    return qr


def qr_version(text: str) -> int:
    """Return the QR version (1-40) that :func:`render_png` uses for ``text``.

    Raises ``ValueError`` when the text does not fit version 40 at level M.
    """
    return int(_qr(text).version)


def render_png(text: str, *, scale: int = 4, border: int = 4) -> bytes:
    """Return a PNG of the QR code (level M, smallest version) for ``text``.

    ``scale`` is pixels per module, ``border`` the quiet zone in modules. Raises
    ``ValueError`` when the text does not fit a QR code.
    """
    if scale < 1 or border < 0:
        raise ValueError("scale must be >= 1 and border >= 0")
    qr = _qr(text, scale=scale, border=border)
    matrix: list[list[bool]] = qr.get_matrix()
    size = len(matrix)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    if scale > 1:
        image = image.resize((size * scale, size * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_svg(text: str) -> bytes:
    """Return an SVG (UTF-8) of the QR code for ``text``, sized in millimetres.

    Raises ``ValueError`` when the text does not fit a QR code.
    """
    qr = _qr(text)
    svg: Any = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return bytes(svg.to_string(encoding="utf-8"))


def _open_image(data: bytes) -> Image.Image:
    """Return the decoded image as 8-bit grey on white.

    Raises ``NotACredential`` for data that is not an image and ``InvalidCredential`` for
    an image above ``MAX_IMAGE_PIXELS`` or one that cannot be decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidCredential(
                    f"画像が大きすぎます（{width}×{height}）",
                    f"image too large ({width}x{height} pixels)",
                )
            image.load()
    except UnidentifiedImageError:
        raise NotACredential("画像ではありません", "not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidCredential("画像が大きすぎます", "image too large") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError) as e:
        # Pillow's decoders report damaged files through all of these.
        raise InvalidCredential("画像を読み込めません", f"unreadable image: {e}") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Codes drawn on a transparent background would turn black on black.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("L")


def decode_image(data: bytes) -> list[str]:
    """Return the text of every QR code found in an image file (PNG, JPEG, ...).

    An image without QR codes gives an empty list. Raises ``NotACredential`` for data
    that is not an image, ``InvalidCredential`` for an oversized or damaged image.
    """
    image = _open_image(data)
    try:
        found = zxingcpp.read_barcodes(
            image,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            text_mode=zxingcpp.TextMode.Plain,
        )
    except (ValueError, RuntimeError) as e:
        raise InvalidCredential("画像を読み込めません", f"unreadable image: {e}") from None
    return [str(b.text) for b in found if b.valid]
