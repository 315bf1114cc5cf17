"""The wallet's app icons, drawn with Pillow when the app starts (no binary files in
the repository): a white certificate with a green check on the city blue."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

SIZES = (192, 512)
BLUE = (23, 63, 122)
GREEN = (18, 128, 60)


def render(size: int) -> bytes:
    """Return a ``size``×``size`` PNG. The drawing keeps inside the central 80 % so
    the icon also works masked (``purpose: maskable``)."""
    image = Image.new("RGB", (size, size), BLUE)
    draw = ImageDraw.Draw(image)
    u = size / 100
    draw.rounded_rectangle((28 * u, 18 * u, 72 * u, 82 * u), radius=4 * u, fill="white")
    for y in (32, 42, 52):
        draw.line((36 * u, y * u, 64 * u, y * u), fill=BLUE, width=max(1, round(3 * u)))
    draw.line(
        ((40 * u, 66 * u), (48 * u, 74 * u), (66 * u, 56 * u)),
        fill=GREEN,
        width=max(2, round(6 * u)),
        joint="curve",
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_all() -> dict[int, bytes]:
    """Every size the manifest names."""
    return {size: render(size) for size in SIZES}
