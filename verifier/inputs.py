"""Turn whatever a company hands the verifier into a presentation string.

Accepted: an SD-JWT (VC or presentation), an embedded-mode QR payload (``SH1:…``), or an
image (PNG, JPEG, GIF, WebP, BMP) of such a QR. Link-mode QRs need the relay, which a
caller passes as ``fetch_link``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from credentials import qr
from credentials.errors import InvalidCredential, NotACredential

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
MAX_INPUT = 20 * 1024 * 1024

#: Fetches and opens a link-mode presentation; raises :class:`InvalidCredential`.
LinkFetcher = Callable[[qr.LinkRef], qr.EmbeddedPayload]


@dataclass(frozen=True)
class Presentation:
    """A presentation ready for the policy, with the anchor evidence that came with it."""

    text: str
    evidence: bytes | None
    source: str  # "sd-jwt" | "embedded" | "link" | "image"


def is_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def from_text(text: str, *, fetch_link: LinkFetcher | None = None) -> Presentation:
    """Classify and decode text. Raises :class:`NotACredential` for text that is no
    credential at all and :class:`InvalidCredential` for a damaged one."""
    text = text.strip()
    kind = qr.classify(text)
    if kind == "sd-jwt":
        return Presentation(text=text, evidence=None, source="sd-jwt")
    if kind == "embedded":
        payload = qr.decode_embedded(text)
        return Presentation(text=payload.presentation, evidence=payload.evidence, source="embedded")
    if kind == "link":
        if fetch_link is None:
            raise InvalidCredential(
                "リンク形式のQRコードです。中継サーバーに接続できる環境で確認してください",
                "this is a link-mode QR; verify it where the relay can be reached",
            )
        payload = fetch_link(qr.LinkRef.parse(text))
        return Presentation(text=payload.presentation, evidence=payload.evidence, source="link")
    raise NotACredential(
        "証明書またはQRコードの内容ではありません", "not a credential or a Shomei QR payload"
    )


def from_bytes(data: bytes, *, fetch_link: LinkFetcher | None = None) -> Presentation:
    """Decode a file's bytes: an image of a QR code, or text. Raises like
    :func:`from_text`."""
    if len(data) > MAX_INPUT:
        raise NotACredential("ファイルが大きすぎます", "file too large")
    if is_image(data):
        texts = qr.decode_image(data)
        if not texts:
            raise NotACredential(
                "画像からQRコードを読み取れませんでした", "no QR code could be read from the image"
            )
        return from_text(texts[0], fetch_link=fetch_link)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotACredential(
            "テキストでも画像でもないファイルです", "the file is neither text nor an image"
        ) from None
    return from_text(text, fetch_link=fetch_link)
