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
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._base45 import b45decode, b45encode
from ._qrpack import _ZDICT_V1, _corrupt, _pack, _Reader, _tlv, _unpack, _varint
from .errors import InvalidCredential, NotACredential
from .qrimage import MAX_IMAGE_PIXELS, decode_image, qr_version, render_png, render_svg

__all__ = [
    "DEFAULT_MAX_SIZE",
    "EMBEDDED_PREFIX",
    "FORMAT_VERSION",
    "MAX_IMAGE_PIXELS",
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

_FIELD_PACKED: Final = 0x01
_FIELD_RAW: Final = 0x02
_FIELD_EVIDENCE: Final = 0x03


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
