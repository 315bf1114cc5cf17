"""Turn whatever a company hands the verifier into a presentation: the one decoder of
the web pages, the API and ``shomei verify``.

Accepted: an SD-JWT (VC or presentation), an embedded-mode QR payload (``SH1:…``), a
link-mode QR payload (opened through ``fetch_link``), or a file: an image (PNG, JPEG,
GIF, WebP, BMP) or a PDF whose first page shows such a QR, or text. Images and PDFs are
read by a :class:`Decoder`, on the budgets of :class:`verifier.config.Limits` (pixels
from the header before decoding; a PDF's page size before rendering, in a capped
process) and a few at a time (:class:`edges.busy.Gate`). Input that is no
credential at all raises :class:`InputError` (an error code and an HTTP status for the
client); a damaged payload raises ``InvalidCredential``, which callers report as a
failed ``format`` check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

import credentials.qrimage as qrimage
from credentials import qr
from credentials.errors import CodedError, ShomeiError
from edges.busy import Gate

from . import render
from .config import Limits

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_PDF_MAGIC = b"%PDF-"
MAX_INPUT = 20 * 1024 * 1024

#: Fetches and opens a link-mode presentation; raises :class:`InvalidCredential`.
LinkFetcher = Callable[[qr.LinkRef], qr.EmbeddedPayload]


@dataclass(frozen=True)
class Presentation:
    """A presentation ready for the policy, with the anchor evidence that came with it."""

    text: str
    evidence: bytes | None
    source: str  # "sd-jwt" | "embedded" | "link"


def is_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def from_bytes(
    data: bytes, *, fetch_link: LinkFetcher | None = None, decoder: Decoder | None = None
) -> Presentation:
    """The presentation in a file's bytes (see :func:`file_text`, :func:`from_text`)."""
    return from_text(file_text(data, decoder=decoder), fetch_link=fetch_link)


def _decode(text: str, kind: str, fetch_link: LinkFetcher | None) -> Presentation:
    if kind == "embedded":
        payload = qr.decode_embedded(text)
        return Presentation(text=payload.presentation, evidence=payload.evidence, source="embedded")
    if kind == "link" and fetch_link is not None:
        payload = fetch_link(qr.LinkRef.parse(text))
        return Presentation(text=payload.presentation, evidence=payload.evidence, source="link")
    return Presentation(text=text, evidence=None, source="sd-jwt")


class InputError(CodedError):
    """Input the verifier cannot use at all; ``code`` and ``status`` go to the client."""


def from_text(text: str, *, fetch_link: LinkFetcher | None = None) -> Presentation:
    """Return the presentation in pasted or scanned text.

    Raises :class:`InputError` for text that is no credential or a link-mode QR without a
    configured relay, and :class:`InvalidCredential` for a damaged payload (which the
    caller reports as a failed ``format`` check, as the CLI does).
    """
    text = text.strip()
    kind = qr.classify(text)
    if kind is None:
        raise InputError(
            "not_a_credential",
            "証明書またはQRコードの内容ではありません",
            "not a credential or a Shomei QR payload",
        )
    if kind == "link" and fetch_link is None:
        raise InputError(
            "link_not_configured",
            "リンク形式のQRコードです。この確認サービスでは中継サーバーが設定されていません",
            "this is a link-mode QR code; no relay is configured on this verifier",
        )
    return _decode(text, kind, fetch_link)


@dataclass(frozen=True)
class Decoder:
    """Reads the QR codes in uploaded images and PDFs within ``limits``; with a
    ``gate``, a few at a time (the web apps: one per process), else unbounded (the CLI).
    """

    limits: Limits = field(default_factory=Limits)
    gate: Gate | None = None

    @classmethod
    def for_limits(cls, limits: Limits) -> Decoder:
        """A decoder with its own gate of ``limits.decode_slots`` slots."""
        return cls(limits=limits, gate=Gate(limits.decode_slots, wait=limits.decode_wait_seconds))

    @property
    def budget(self) -> render.Budget:
        """What one PDF render may take."""
        return render.Budget(
            max_pixels=self.limits.max_pixels,
            max_side=self.limits.max_side,
            max_pages=self.limits.pdf_max_pages,
            memory_mib=self.limits.render_memory_mib,
            seconds=self.limits.render_seconds,
        )

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """A turn at the expensive work (see :meth:`edges.busy.Gate.hold`); with no
        gate, at once."""
        return self.gate.hold() if self.gate is not None else contextlib.nullcontext()

    def qr_texts(self, data: bytes) -> list[str]:
        """Return the texts of the QR codes in an image or on a PDF's first page
        (possibly none). Raises :class:`InputError` for an image or PDF that cannot be
        read or is over the limits, and :class:`edges.busy.Busy` when no slot frees up
        in time."""
        with self.hold():
            try:
                if data.startswith(_PDF_MAGIC):
                    return qrimage.read_codes(self._first_page(data))
                return qrimage.decode_image(data, max_pixels=self.limits.max_pixels)
            except render.Refused as e:
                raise InputError(e.code, e.ja, e.en, status=e.status) from None
            except ShomeiError as e:
                raise InputError("unreadable_image", e.ja, e.en) from None

    def _first_page(self, pdf: bytes) -> Image.Image | memoryview:
        bitmap = render.first_page(pdf, self.budget)
        if bitmap.stride == bitmap.width:  # the reader takes the pixels as they are
            return memoryview(bitmap.data).cast("B", (bitmap.height, bitmap.width))
        size = (bitmap.width, bitmap.height)
        return Image.frombuffer("L", size, bitmap.data, "raw", "L", bitmap.stride, 1)


_UNBOUNDED = Decoder()


def qr_texts(data: bytes, *, decoder: Decoder | None = None) -> list[str]:
    """See :meth:`Decoder.qr_texts` (the default limits, no gate, without a decoder)."""
    return (decoder or _UNBOUNDED).qr_texts(data)


def file_text(data: bytes, *, decoder: Decoder | None = None) -> str:
    """Return the text an uploaded file carries: the QR code's text for an image or a
    PDF (the first of ours when a photo holds several codes), else the file as UTF-8.
    Raises :class:`InputError` for an unreadable image, one without a QR code, and a
    file that is neither text nor an image."""
    if len(data) > MAX_INPUT:
        raise InputError("too_large", "ファイルが大きすぎます", "file too large", status=413)
    if is_image(data) or data.startswith(_PDF_MAGIC):
        texts = qr_texts(data, decoder=decoder)
        if not texts:
            raise InputError(
                "no_qr_found",
                "QRコードを読み取れませんでした",
                "no QR code could be read",
            )
        ours = [t for t in texts if qr.classify(t.strip()) is not None]
        return (ours or texts)[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            "not_a_credential",
            "テキストでも画像でもないファイルです",
            "the file is neither text nor an image",
        ) from None
