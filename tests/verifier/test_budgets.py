"""Budgets before work: a PDF's page box and render size are checked before it is
rendered (in a process whose memory and time are capped), an image's pixels before it
is decoded, and only a few of either run at once (503 with ``Retry-After`` beyond)."""

from __future__ import annotations

import io
import subprocess
import time
import zlib
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier import render
from verifier.app import create_app
from verifier.config import Limits
from verifier.policy import Verifier

ISS = "https://city.example"
NOW = int(time.time())
BUDGET = render.Budget(
    max_pixels=20_000_000, max_side=12_000, max_pages=200, memory_mib=384, seconds=5.0
)


def tiny_pdf(page: bytes, content: bytes = b"", objects: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF with a correct cross-reference table, a few hundred bytes."""
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R " + page + b" /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        *objects,
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(bodies) + 1,
        xref,
    )
    return bytes(out)


def image_pdf(box: int, width: int, height: int, pixels: bytes) -> bytes:
    """A ``box``-point square page covered by one grey image of ``width`` × ``height``."""
    stream = zlib.compress(pixels, 9)
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (width, height, len(stream), stream)
    )
    return tiny_pdf(
        b"/MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 5 0 R >> >>" % (box, box),
        b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (box, box),
        (image,),
    )


def qr_pdf(text: str, box: int) -> bytes:
    picture = Image.open(io.BytesIO(qr.render_png(text, scale=2))).convert("L")
    return image_pdf(box, picture.width, picture.height, picture.tobytes())


@pytest.fixture(scope="module")
def trust(issuer_key: SigningKey) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )


def make_app(trust: TrustList, **config: Any) -> Flask:
    return create_app({"VERIFIER": Verifier(trust=trust), "TESTING": True, **config})


def post_file(app: Flask, path: str, data: bytes, name: str = "c.pdf") -> Any:
    form = {"file": (io.BytesIO(data), name)}
    return app.test_client().post(path, data=form, content_type="multipart/form-data")


def sh1(issuer_key: SigningKey) -> str:
    dt = doctypes.get("juminhyo")
    cred = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=issuer_key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
    ).sd_jwt
    return qr.encode_embedded(sdjwt.present(cred, disclose=["family_name"]))


# --------------------------------------------------------------------------- PDF


def test_a_331_byte_pdf_with_a_huge_page_is_rendered_within_the_budget(trust) -> None:
    # /MediaBox [0 0 7000 7000] at 3x was 441 M pixels: 3 GiB and 15 s before any check.
    pdf = tiny_pdf(b"/MediaBox [0 0 7000 7000]")
    assert len(pdf) < 450
    app = make_app(trust)
    for path in ("/api/verify", "/api/scan", "/verify"):
        started = time.monotonic()
        r = post_file(app, path, pdf)
        assert time.monotonic() - started < 5, path
        assert r.status_code in (200, 400), path  # a blank page: no QR code on it
    bitmap = render.first_page(pdf, BUDGET)
    assert bitmap.width * bitmap.height <= BUDGET.max_pixels
    assert bitmap.width == bitmap.height < 7000 * render.SCALE


def test_a_qr_code_on_a_huge_page_is_still_read_at_a_smaller_scale(trust, issuer_key) -> None:
    app = make_app(trust)
    r = post_file(app, "/api/verify", qr_pdf(sh1(issuer_key), 7000))
    assert r.status_code == 200 and r.get_json()["verdict"] == "valid"


def test_a_page_that_cannot_be_rendered_small_enough_is_refused(trust) -> None:
    pdf = tiny_pdf(b"/MediaBox [0 0 100 100000000]")
    with pytest.raises(render.Refused) as refused:
        render.first_page(pdf, BUDGET)
    assert (refused.value.code, refused.value.status) == ("page_too_large", 413)
    r = post_file(make_app(trust), "/api/verify", pdf)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "page_too_large"


@pytest.mark.parametrize(
    "page",
    [
        b"/MediaBox [0 0 0 0]",
        b"/MediaBox [0 0 -5000 1e9]",
        b"/MediaBox [0 0 612 792] /CropBox [0 0 14400 90000000]",
        b"/MediaBox [0 0 14400 14400] /Rotate 270",
        b"/MediaBox [1e38 1e38 -1e38 -1e38]",
    ],
)
def test_whatever_the_page_box_says_the_render_stays_in_budget(page) -> None:
    try:
        bitmap = render.first_page(tiny_pdf(page), BUDGET)
    except render.Refused as e:
        assert e.code == "page_too_large"
    else:
        assert bitmap.width * bitmap.height <= BUDGET.max_pixels
        assert max(bitmap.width, bitmap.height) <= BUDGET.max_side


@pytest.mark.parametrize(
    ("page", "size"),
    [
        (b"/MediaBox [0 0 612 792]", (1836, 2376)),
        (b"/MediaBox [0 0 612 792] /Rotate 90", (2376, 1836)),
        (b"/MediaBox [0 0 7000 7000] /CropBox [0 0 100 50]", (300, 150)),
        (b"/MediaBox [0 0 612 792] /UserUnit 75000", (1836, 2376)),  # pdfium ignores it
    ],
    ids=["letter", "rotated", "crop-box", "user-unit"],
)
def test_the_render_size_follows_the_page_box(page, size) -> None:
    bitmap = render.first_page(tiny_pdf(page), BUDGET)
    assert (bitmap.width, bitmap.height) == size


@pytest.mark.parametrize(
    ("width", "height"),
    [(595, 842), (7000, 7000), (14400, 14400), (1, 14400), (14400, 3), (0.5, 0.5), (4471, 4473)],
)
def test_the_plan_never_exceeds_the_budget(width: float, height: float) -> None:
    planned = render.plan(width, height, max_pixels=20_000_000, max_side=12_000)
    assert planned is not None
    scale, w, h = planned
    assert w * h <= 20_000_000 and max(w, h) <= 12_000
    assert render.MIN_SCALE <= scale <= render.SCALE
    assert (w, h) == (-(-width * scale // 1), -(-height * scale // 1))


def test_too_many_pages_are_refused_before_rendering() -> None:
    kids = b" ".join(b"3 0 R" for _ in range(300))
    pdf = tiny_pdf(b"/MediaBox [0 0 10 10]").replace(
        b"/Kids [3 0 R] /Count 1", b"/Kids [" + kids + b"] /Count 300"
    )
    with pytest.raises(render.Refused) as refused:
        render.first_page(pdf, BUDGET)
    assert (refused.value.code, refused.value.status) == ("too_many_pages", 413)


def test_the_rendering_process_is_capped_in_memory() -> None:
    # A small page drawing a 12000 x 12000 image: pdfium decodes all 144 MB of it,
    # whatever the page's size; the child's address space stops it.
    side = 12_000
    pdf = image_pdf(200, side, side, bytes(side * side))
    assert len(pdf) < 300_000
    capped = render.Budget(
        max_pixels=20_000_000, max_side=12_000, max_pages=10, memory_mib=96, seconds=5.0
    )
    assert peak_memory(pdf, capped) < 96 * 1024 * 1024
    try:
        render.first_page(pdf, capped)  # a blank page, or refused: never the memory
    except render.Refused as e:
        assert e.status in (400, 413)


def peak_memory(pdf: bytes, budget: render.Budget) -> int:
    """The rendering process's peak resident memory in bytes (its own VmHWM: a forked
    child's rusage would count the parent's pages too)."""
    python, isolated, script, *args = render.command(budget)
    report = (
        "import runpy, sys\n"
        f"sys.argv = [{script!r}, *{args!r}]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n"
        "    hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "    sys.stderr.write(hwm)\n"
    )
    done = subprocess.run(
        [python, isolated, "-c", report], input=pdf, capture_output=True, check=False
    )
    return int(done.stderr.split()[-1]) * 1024


# --------------------------------------------------------------------------- images


def test_image_pixels_are_checked_from_the_header_before_decoding(trust) -> None:
    png = qr.render_png("hello", scale=4)
    assert qr.decode_image(png) == ["hello"]
    small = Limits(max_pixels=1000)
    r = post_file(make_app(trust, LIMITS=small), "/api/scan", png, "q.png")
    assert r.status_code == 400 and "too large" in r.get_json()["error"]["message"]["en"]


def test_other_image_formats_never_reach_a_decoder(trust) -> None:
    tiff = io.BytesIO()
    Image.open(io.BytesIO(qr.render_png("hello"))).save(tiff, format="TIFF")
    with pytest.raises(qr.NotACredential):
        qr.decode_image(tiff.getvalue())


# --------------------------------------------------------------------------- one at a time


def test_a_busy_decoder_answers_503_with_retry_after(trust, issuer_key) -> None:
    app = make_app(trust, LIMITS=Limits(decode_slots=1, decode_wait_seconds=0.05))
    gate = app.extensions["shomei_decoder"].gate
    png = qr.render_png(sh1(issuer_key), scale=2)
    with gate.hold():  # the only slot is taken
        started = time.monotonic()
        r = post_file(app, "/api/scan", png, "q.png")
        assert time.monotonic() - started < 1
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.get_json()["error"]["code"] == "busy"
        assert r.get_json()["error"]["message"]["ja"]
        r = post_file(app, "/api/verify", png, "q.png")
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        r = post_file(app, "/verify", png, "q.png")
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "混み合っています" in r.get_data(as_text=True)
        # A contract PDF is parsed in a turn too.
        form = {"document": (io.BytesIO(tiny_pdf(b"/MediaBox [0 0 612 792]")), "c.pdf")}
        r = app.test_client().post("/api/verify", data=form, content_type="multipart/form-data")
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "busy"
    r = post_file(app, "/api/scan", png, "q.png")
    assert r.status_code == 200 and r.get_json()["verdict"] == "valid"


def test_limits_come_from_the_environment() -> None:
    env = {"SHOMEI_VERIFIER_MAX_PIXELS": "8000000", "SHOMEI_VERIFIER_DECODE_WAIT_SECONDS": "0.5"}
    limits = Limits.from_env(env)
    assert limits.max_pixels == 8_000_000 and limits.decode_wait_seconds == 0.5
    assert limits.decode_slots == Limits().decode_slots
    with pytest.raises(ValueError, match="SHOMEI_VERIFIER_MAX_PIXELS"):
        Limits.from_env({"SHOMEI_VERIFIER_MAX_PIXELS": "lots"})
    with pytest.raises(ValueError, match="decode_slots must be positive"):
        Limits.from_env({"SHOMEI_VERIFIER_DECODE_SLOTS": "0"})
