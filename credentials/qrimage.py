"""QR codes as images: render (PNG through Pillow, SVG), measure the version, and read
the codes in a photo, a screenshot or a scan (zxing-cpp), with a pixel budget before any
decoding. The payload formats are :mod:`credentials.qr`'s."""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any, Final

import qrcode
import qrcode.exceptions
import qrcode.image.svg
import zxingcpp
from PIL import Image, UnidentifiedImageError

from .errors import InvalidCredential, NotACredential

MAX_IMAGE_PIXELS: Final = 20_000_000


#: The most characters a QR code holds at error correction M (version 40, digits only).
_MAX_QR_CHARS: Final = 5596


def _qr(text: str, *, scale: int = 4, border: int = 4) -> Any:
    if len(text) > _MAX_QR_CHARS:  # before qrcode builds a bit buffer of all of it
        raise ValueError("text too long for a QR code at error correction M")
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


#: The formats a photo, screenshot or scan comes in; Pillow's other parsers (TIFF, PSD,
#: ICO, EPS…) are never reached with untrusted bytes.
IMAGE_FORMATS: Final = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Return the decoded image as 8-bit grey on white.

    The size is read from the header and checked against ``max_pixels`` before a pixel
    is decoded. Raises ``NotACredential`` for data that is not an image of
    :data:`IMAGE_FORMATS` and ``InvalidCredential`` for a larger image or one that
    cannot be decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidCredential(
                    f"画像が大きすぎます（{width}×{height}）",
                    f"image too large ({width}x{height} pixels)",
                )
            if image.format == "JPEG":
                image.draft("L", image.size)  # decode the grey channel only
            image.load()
    except UnidentifiedImageError:
        raise NotACredential("画像ではありません", "not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidCredential("画像が大きすぎます", "image too large") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError) as e:
        # Pillow's decoders report damaged files through all of these.
        raise InvalidCredential("画像を読み込めません", f"unreadable image: {e}") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Codes drawn on a transparent background would turn black on black: grey and
        # alpha (two bytes a pixel), pasted on white, not a full RGBA composite.
        grey_alpha = image.convert("LA")
        image.close()
        white = Image.new("L", grey_alpha.size, 255)
        white.paste(grey_alpha.getchannel("L"), mask=grey_alpha.getchannel("A"))
        return white
    return image if image.mode == "L" else image.convert("L")


def read_codes(image: Image.Image | memoryview) -> list[str]:
    """Return the text of every QR code in a decoded picture (8-bit grey): an image, or
    its pixels as a memoryview of shape (height, width), read without a copy.

    Raises ``InvalidCredential`` when the reader fails on it.
    """
    try:
        found = zxingcpp.read_barcodes(
            image,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            text_mode=zxingcpp.TextMode.Plain,
        )
    except (ValueError, RuntimeError) as e:
        raise InvalidCredential("画像を読み込めません", f"unreadable image: {e}") from None
    return [str(b.text) for b in found if b.valid]


def decode_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> list[str]:
    """Return the text of every QR code found in an image file (PNG, JPEG, ...).

    An image without QR codes gives an empty list. Raises ``NotACredential`` for data
    that is not an image, ``InvalidCredential`` for an image over ``max_pixels`` (read
    from its header, before decoding) or a damaged one.
    """
    return read_codes(_open_image(data, max_pixels))
