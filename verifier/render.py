"""A PDF's first page as pixels, to find its QR code, on a budget.

Two budgets, both before any work on the page's content:

* The bitmap: the page's size (pdfium's, after the crop box and ``/Rotate``; pdfium
  ignores ``/UserUnit``) gives the render's size at :data:`SCALE` (about 216 dpi). A page
  that would exceed ``max_pixels`` or ``max_side`` is rendered at a smaller scale; one
  that would need less than :data:`MIN_SCALE` (no real page does: the largest page the
  PDF format allows is 200 inches a side) is refused, and so is a file of more than
  ``max_pages`` pages.
* The content: pdfium decodes every image a page draws at its full size, whatever the
  bitmap's, so a 1 MB file can claim gigabytes. The page is therefore rendered in a
  child process (this file, run as a script) whose address space and CPU time are
  capped; a PDF that needs more is refused and the verifier is unharmed.

The parent imports nothing but the standard library from here; the child only
pypdfium2.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import cast

#: Pixels per PDF unit (1/72 inch) for an ordinary page.
SCALE = 3.0
#: The smallest scale a page is rendered at (18 dpi); a larger page is refused.
MIN_SCALE = 0.25

_OK = 0
_UNREADABLE = 10
_NO_PAGE = 11
_TOO_MANY_PAGES = 12
_PAGE_TOO_LARGE = 13
_HEADER_MAX = 64


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What one render may take (see :class:`verifier.config.Limits`)."""

    max_pixels: int
    max_side: int
    max_pages: int
    memory_mib: int
    seconds: float


class Refused(Exception):
    """The PDF is not rendered: ``code``, HTTP ``status`` and the message for people."""

    def __init__(self, code: str, status: int, ja: str, en: str) -> None:
        super().__init__(en)
        self.code, self.status, self.ja, self.en = code, status, ja, en


@dataclass(frozen=True)
class Bitmap:
    """8-bit grey pixels, ``stride`` bytes a row."""

    width: int
    height: int
    stride: int
    data: bytearray


def plan(
    width: float, height: float, *, max_pixels: int, max_side: int
) -> tuple[float, int, int] | None:
    """Return ``(scale, pixels wide, pixels high)`` for a page of ``width`` × ``height``
    PDF units: :data:`SCALE`, or less so that the bitmap (pypdfium2 rounds each side up)
    stays within ``max_pixels`` and ``max_side``. None for a page without area or one
    that would need a scale below :data:`MIN_SCALE`."""
    if not (0 < width < math.inf and 0 < height < math.inf):
        return None
    scale = min(SCALE, math.sqrt(max_pixels / (width * height)), max_side / max(width, height))
    for _ in range(64):  # rounding up adds at most a pixel a side: a few steps suffice
        w, h = math.ceil(width * scale), math.ceil(height * scale)
        if w * h <= max_pixels and max(w, h) <= max_side:
            break
        scale *= 0.99
    else:
        return None
    return (scale, w, h) if scale >= MIN_SCALE else None


def command(budget: Budget) -> list[str]:
    """The child's command line: this file under the same interpreter, isolated from
    the environment's Python settings; the PDF goes to its standard input."""
    return [
        sys.executable,
        "-I",
        __file__,
        str(budget.max_pixels),
        str(budget.max_side),
        str(budget.max_pages),
        str(budget.memory_mib),
        str(budget.seconds),
    ]


def first_page(pdf: bytes, budget: Budget) -> Bitmap:
    """Render the first page of ``pdf`` within ``budget``. Raises :class:`Refused`.

    The pixels are read straight into one buffer of the announced size (no second copy
    of a render that may be tens of MiB), and the child is killed when it overruns its
    wall time."""
    child = subprocess.Popen(
        command(budget),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    timer = threading.Timer(2 * budget.seconds + 1, child.kill)
    timer.start()
    try:
        data = _read_bitmap(child, pdf, budget)
        code = child.wait()
    finally:
        timer.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    if code != _OK:
        raise _refusal(code, budget) if code > 0 else _too_complex()
    if data is None:
        raise _too_complex()
    return data


def _read_bitmap(child: subprocess.Popen[bytes], pdf: bytes, budget: Budget) -> Bitmap | None:
    """Hand the child the PDF, then read its header line and exactly the pixels it
    announces (None for anything else: a refusal's exit code says why)."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(pdf)  # the child reads all of its input before it answers
        child.stdin.close()
    except BrokenPipeError:  # it stopped early: its exit code tells
        return None
    out = cast("io.BufferedReader", child.stdout)  # Popen's default buffered pipe
    header = out.readline(_HEADER_MAX)
    try:
        width, height, stride = (int(v) for v in header.split())
    except ValueError:
        return None
    if not (0 < width <= stride and 0 < height) or width * height > budget.max_pixels:
        return None
    data = bytearray(stride * height)
    view, got = memoryview(data), 0
    while got < len(data) and (n := out.readinto(view[got:])):
        got += n
    if got != len(data) or out.read(1):
        return None
    return Bitmap(width, height, stride, data)


def _refusal(code: int, budget: Budget) -> Refused:
    if code == _UNREADABLE:
        return Refused("unreadable_image", 400, "PDFを読み込めません", "unreadable PDF")
    if code == _NO_PAGE:
        return Refused("unreadable_image", 400, "PDFにページがありません", "the PDF has no pages")
    if code == _TOO_MANY_PAGES:
        return Refused(
            "too_many_pages",
            413,
            f"ページ数が多すぎます（{budget.max_pages}ページまで）",
            f"too many pages (at most {budget.max_pages})",
        )
    if code == _PAGE_TOO_LARGE:
        return Refused(
            "page_too_large",
            413,
            "PDFのページが大きすぎるか、大きさがありません",
            "the PDF's page is too large to render, or has no size",
        )
    return _too_complex()


def _too_complex() -> Refused:
    return Refused(
        "pdf_too_complex",
        413,
        "PDFの表示に必要なメモリまたは時間が上限を超えました",
        "rendering the PDF needs more memory or time than this verifier allows",
    )


# --------------------------------------------------------------------------- the child


def _limit(memory_mib: int, seconds: float) -> None:
    import resource

    memory = memory_mib * 1024 * 1024
    cpu = max(1, math.ceil(seconds))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _main(argv: list[str]) -> int:
    max_pixels, max_side, max_pages, memory_mib = (int(v) for v in argv[:4])
    _limit(memory_mib, float(argv[4]))
    data = sys.stdin.buffer.read()
    import pypdfium2 as pdfium  # type: ignore[import-untyped, unused-ignore]

    try:
        doc = pdfium.PdfDocument(data)
        pages = len(doc)
        if pages == 0:
            return _NO_PAGE
        if pages > max_pages:
            return _TOO_MANY_PAGES
        page = doc[0]
        width, height = page.get_size()
        planned = plan(width, height, max_pixels=max_pixels, max_side=max_side)
        if planned is None:
            return _PAGE_TOO_LARGE
        scale, w, h = planned
        bitmap = page.render(scale=scale, grayscale=True)
    except pdfium.PdfiumError:
        return _UNREADABLE
    if (bitmap.width, bitmap.height) != (w, h) or bitmap.n_channels != 1:
        return _PAGE_TOO_LARGE
    out = sys.stdout.buffer
    out.write(f"{bitmap.width} {bitmap.height} {bitmap.stride}\n".encode("ascii"))
    out.write(memoryview(bitmap.buffer).cast("B"))
    out.flush()
    return _OK


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
