"""The wallet's server: the app shell (page, manifest, service worker, icons), its
security headers, and ``POST /api/scan`` decoding camera frames (never a 500, nothing
kept). The type metadata it publishes for labels is the core's."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from credentials import qr
from wallet_demo import app as wallet_app
from wallet_demo.app import create_app

ROOT = Path(__file__).resolve().parents[2]
OFFER = "openid-credential-offer://?credential_offer=%7B%22credential_issuer%22%3A%22x%22%7D"


def status_of(client: FlaskClient, url: str) -> int:
    """GET ``url`` and close the response (static files are streamed from disk)."""
    with client.get(url) as response:
        return response.status_code


@pytest.fixture
def app() -> Flask:
    return create_app({"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_page_loads_modules_only_from_its_own_origin(client: FlaskClient):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="ja">' in page and "証明書ウォレット" in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts), "no inline script"
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]  # type: ignore[union-attr]
    assert all('type="module"' in attrs for attrs, _ in scripts)
    assert "/static/js/app.js" in sources and "/static/js/present.js" in sources
    assert '<section id="present" hidden>' in page
    assert 'rel="manifest" href="/manifest.webmanifest"' in page
    for src in [*sources, "/static/wallet.css"]:
        assert status_of(client, src) == 200, src


def test_security_headers(client: FlaskClient):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert csp == wallet_app.CSP
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'self'" in csp
    assert "connect-src 'self' http://127.0.0.1:* http://localhost:* https:" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Permissions-Policy"] == "camera=(self)"
    scan = client.post("/api/scan", data=qr.render_png("x"), content_type="image/png")
    assert scan.headers["Cache-Control"] == "no-store"


def test_manifest_and_icons(client: FlaskClient):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["name"] == "証明書ウォレット"
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.mimetype == "image/png"
        image = Image.open(io.BytesIO(png.data))
        assert f"{image.width}x{image.height}" == icon["sizes"]
        sizes.add(image.width)
    assert {192, 512} <= sizes
    assert client.get("/icons/icon-7.png").status_code == 404


def test_service_worker_caches_the_shell_at_the_root_scope(client: FlaskClient):
    response = client.get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Cache-Control"] == "no-cache"
    source = response.get_data(as_text=True)
    assert "__SHELL_" not in source
    urls = json.loads(re.search(r"const SHELL = (\[.*?\]);", source).group(1))  # type: ignore[union-attr]
    assert {"/", "/static/js/app.js", "/static/wallet.css", "/manifest.webmanifest"} <= set(urls)
    for url in urls:
        assert status_of(client, url) == 200, url
    version = re.search(r'const VERSION = "([0-9a-f]+)"', source)
    assert version and len(version.group(1)) == 16


def test_scan_decodes_a_qr_code(client: FlaskClient):
    response = client.post("/api/scan", data=qr.render_png(OFFER), content_type="image/png")
    assert response.status_code == 200
    assert response.get_json() == {"found": True, "text": OFFER}


def test_scan_takes_a_jpeg_frame_as_a_form_file(client: FlaskClient):
    image = Image.open(io.BytesIO(qr.render_png(OFFER, scale=6))).convert("RGB")
    frame = io.BytesIO()
    image.save(frame, format="JPEG", quality=90)
    frame.seek(0)
    response = client.post("/api/scan", data={"frame": (frame, "frame.jpg")})
    assert response.get_json() == {"found": True, "text": OFFER}


def test_scan_of_a_frame_without_a_code(client: FlaskClient):
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(blank, format="PNG")
    response = client.post("/api/scan", data=blank.getvalue(), content_type="image/png")
    assert response.status_code == 200 and response.get_json() == {"found": False}


@pytest.mark.parametrize(
    "body",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"\xff\xd8\xff" + b"x" * 99],
    ids=["empty", "text", "broken-png", "broken-jpeg"],
)
def test_scan_of_garbage_is_a_json_400(client: FlaskClient, body: bytes):
    response = client.post("/api/scan", data=body, content_type="image/png")
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"]["code"] in {"no_image", "not_an_image"}


def test_scan_limits_the_frame_size():
    small = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 1000})
    response = small.test_client().post("/api/scan", data=b"x" * 2000, content_type="image/png")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_scan_checks_the_pixels_before_decoding():
    small = create_app({"TESTING": True, "SCAN_MAX_PIXELS": 1000})
    response = small.test_client().post(
        "/api/scan", data=qr.render_png(OFFER), content_type="image/png"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "not_an_image"


def test_scan_is_busy_rather_than_queued():
    busy = create_app({"TESTING": True, "SCAN_SLOTS": 1, "SCAN_WAIT_SECONDS": 0.05})
    with busy.extensions["wallet_scan_gate"].hold():
        response = busy.test_client().post(
            "/api/scan", data=qr.render_png(OFFER), content_type="image/png"
        )
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "busy"
    response = busy.test_client().post(
        "/api/scan", data=qr.render_png(OFFER), content_type="image/png"
    )
    assert response.get_json() == {"found": True, "text": OFFER}


def test_scan_takes_only_post(client: FlaskClient):
    response = client.get("/api/scan")
    assert response.status_code == 405 and response.is_json


def test_scan_logs_nothing_of_the_frame(client: FlaskClient, caplog: pytest.LogCaptureFixture):
    with caplog.at_level("DEBUG"):
        client.post("/api/scan", data=qr.render_png(OFFER), content_type="image/png")
        client.post("/api/scan", data=b"garbage", content_type="image/png")
    assert "credential_offer" not in caplog.text and "garbage" not in caplog.text


def test_the_types_served_are_the_type_metadata_files(client: FlaskClient):
    """The wallet's titles and labels come from the type metadata the core ships: one
    entry per ``credentials/doctypes/*.metadata.json``, equal to the file."""
    response = client.get("/types.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = response.get_json()
    files = sorted((ROOT / "credentials" / "doctypes").glob("*.metadata.json"))
    assert {"juminhyo", "partnership", "contract"} <= {f.name.split(".")[0] for f in files}
    assert served == {
        f.name.split(".")[0]: json.loads(f.read_text(encoding="utf-8")) for f in files
    }
    for name, meta in served.items():
        for entries in [meta["display"], *(c["display"] for c in meta["claims"])]:
            languages = {d["lang"][:2] for d in entries}
            assert {"ja", "en"} <= languages, name
    labels = {
        tuple(c["path"]): {d["lang"][:2]: d["label"] for d in c["display"]}
        for c in served["juminhyo"]["claims"]
    }
    assert labels[("age_equal_or_over", "18")] == {"ja": "18歳以上", "en": "18 or over"}
    assert labels[("age_equal_or_over", "20")] == {"ja": "20歳以上", "en": "20 or over"}


def test_the_service_worker_keeps_the_types_for_offline_use(client: FlaskClient):
    source = client.get("/sw.js").get_data(as_text=True)
    urls = json.loads(re.search(r"const SHELL = (\[.*?\]);", source).group(1))  # type: ignore[union-attr]
    assert "/types.json" in urls
    assert not (ROOT / "wallet_demo" / "static" / "js" / "labels.js").exists()


def test_ping_answers_204_and_is_never_cached(client) -> None:
    """The wallet asks it to tell "offline" from "online" (navigator.onLine can lie)."""
    response = client.get("/api/ping")
    assert response.status_code == 204 and response.data == b""
    assert response.headers["Cache-Control"] == "no-store"
