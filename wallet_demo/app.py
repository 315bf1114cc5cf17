"""The resident's wallet: ``create_app()`` builds the Flask app that serves the PWA.

The server only hands out the app shell (page, scripts, styles, manifest, service
worker, icons, and the type metadata of the document types it knows, ``GET
/types.json``) and decodes camera frames (``POST /api/scan``). Certificates, keys and
anchor evidence live in the phone's browser (IndexedDB); the wallet talks to the
issuer directly. Nothing a resident scans is stored or logged here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

import credentials.qrimage as qrimage
import edges.json as edges_json
from credentials import doctypes, qr
from credentials.errors import CodedError, ShomeiError
from edges.busy import Busy, Gate
from edges.errors import from_http, json_error
from edges.headers import HeaderPolicy, install_headers

from . import encode, icons, openapi, relay

ROOT = Path(__file__).resolve().parent
TEMPLATES = ROOT.parent / "templates"
STATIC = ROOT / "static"
MAX_FRAME = 4 * 1024 * 1024  # one camera frame, JPEG or PNG
#: Frames decoded at once, the wait for a turn before a 503, and a frame's pixels.
SCAN_SLOTS = 2
SCAN_WAIT_SECONDS = 3.0
SCAN_MAX_PIXELS = qrimage.MAX_IMAGE_PIXELS
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' http://127.0.0.1:* http://localhost:* https:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)
NAME = "証明書ウォレット"
_log = logging.getLogger("shomei.wallet")


def _cache_control() -> str | None:
    if request.path.startswith(("/api/", "/relay/")):
        return "no-store"  # a frame's text may be personal
    return None


#: Pages and scripts: "no-cache" (the service worker keeps copies and revalidates).
HEADERS = HeaderPolicy(
    csp=CSP, permissions="camera=(self)", cache_control=_cache_control, cache_default="no-cache"
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The wallet app; ``test_config`` overrides the defaults (``MAX_CONTENT_LENGTH``,
    ``SCAN_SLOTS``, ``SCAN_WAIT_SECONDS``, ``SCAN_MAX_PIXELS``, the relay's limits, see
    :func:`wallet_demo.relay.defaults`, and ``TRUSTED_PROXIES``: behind N reverse
    proxies, ``SHOMEI_WALLET_TRUSTED_PROXIES=N``, the relay counts blobs per address
    from the Nth entry from the right of X-Forwarded-For)."""
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    edges_json.install(app)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=MAX_FRAME,
        SCAN_SLOTS=SCAN_SLOTS,
        SCAN_WAIT_SECONDS=SCAN_WAIT_SECONDS,
        SCAN_MAX_PIXELS=SCAN_MAX_PIXELS,
        TRUSTED_PROXIES=int(os.environ.get("SHOMEI_WALLET_TRUSTED_PROXIES", "0")),
    )
    app.config.from_mapping(relay.defaults())
    if test_config:
        app.config.from_mapping(test_config)
    if int(app.config["TRUSTED_PROXIES"]) > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    app.extensions["wallet_scan_gate"] = Gate(
        int(app.config["SCAN_SLOTS"]), wait=float(app.config["SCAN_WAIT_SECONDS"])
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["wallet_icons"] = icons.render_all()
    app.extensions["wallet_types"] = _types()
    app.extensions["wallet_shell"] = _shell(app.extensions["wallet_types"])
    install_headers(app, HEADERS)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

    app.add_url_rule("/", "index", index)
    app.add_url_rule("/manifest.webmanifest", "manifest", manifest)
    app.add_url_rule("/sw.js", "service_worker", service_worker)
    app.add_url_rule("/types.json", "types", types)
    app.add_url_rule("/icons/icon-<int:size>.png", "icon", icon)
    app.add_url_rule("/api/scan", "scan", scan, methods=["POST"])
    app.add_url_rule("/api/ping", "ping", ping)
    app.add_url_rule("/api/openapi.json", "openapi", openapi_json)
    app.register_blueprint(encode.bp)
    app.register_blueprint(relay.bp)
    return app


def _types() -> bytes:
    """The SD-JWT VC type metadata of every document type in the core, by type name,
    as the files ship it (``vct`` still the ``{issuer}/vct/<name>/1`` template): the
    titles and labels of a certificate that did not bring its own (types.js)."""
    document = {name: dt.metadata_template for name, dt in doctypes.DOCUMENT_TYPES.items()}
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def _shell(types_json: bytes) -> dict[str, Any]:
    """What the service worker caches, and a version that changes with any of it."""
    files = sorted(p for p in STATIC.rglob("*") if p.is_file() and p.name != "sw.js")
    digest = hashlib.sha256()
    for path in [*files, STATIC / "sw.js", TEMPLATES / "wallet" / "index.html"]:
        digest.update(path.read_bytes())
    digest.update(types_json)
    urls = ["/", "/manifest.webmanifest", "/types.json"]
    urls += [f"/icons/icon-{s}.png" for s in icons.SIZES]
    urls += ["/static/" + p.relative_to(STATIC).as_posix() for p in files]
    return {"version": digest.hexdigest()[:16], "urls": urls}


# ------------------------------------------------------------------ views
def index() -> str:
    return render_template("wallet/index.html", name=NAME)


def manifest() -> Response:
    document = {
        "name": NAME,
        "short_name": "ウォレット",
        "description": "市が発行した証明書をこの端末に保管し、必要な項目だけを提示します",
        "lang": "ja",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#173f7a",
        "icons": [
            {
                "src": f"/icons/icon-{s}.png",
                "sizes": f"{s}x{s}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for s in icons.SIZES
        ],
    }
    body = json.dumps(document, ensure_ascii=False, indent=1)
    return Response(body, mimetype="application/manifest+json")


def service_worker() -> Response:
    shell = _extension("wallet_shell")
    source = (STATIC / "sw.js").read_text(encoding="utf-8")
    source = source.replace('"__SHELL_VERSION__"', json.dumps(shell["version"]))
    source = source.replace('["__SHELL_URLS__"]', json.dumps(shell["urls"]))
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


def types() -> Response:
    return Response(_extension("wallet_types"), mimetype="application/json")


def icon(size: int) -> Response:
    png = _extension("wallet_icons").get(size)
    if png is None:
        return _json_error(404, "not_found", "見つかりません", "not found")
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def openapi_json() -> Response:
    return jsonify(openapi.document(max_frame=current_app.config["MAX_CONTENT_LENGTH"]))


def ping() -> Response:
    """204: the wallet's server is reachable (``navigator.onLine`` is not proof of that:
    a captive network, a lost route, a page served by the service worker offline)."""
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


def scan() -> Response:
    """One camera frame (the raw body, or the ``frame`` file of a form) → the text of
    the first QR code in it; a few frames at a time (503 ``busy`` beyond a short wait),
    each held to the pixel budget before decoding. Nothing is kept."""
    upload = request.files.get("frame")
    data = upload.read() if upload is not None else request.get_data(cache=False)
    if not data:
        return _json_error(400, "no_image", "画像がありません", "no image was sent")
    # Busy (a ShomeiError too) goes to its own handler: the gate is outside the try.
    with _extension("wallet_scan_gate").hold():
        try:
            found = qr.decode_image(data, max_pixels=int(current_app.config["SCAN_MAX_PIXELS"]))
        except ShomeiError:
            return _json_error(400, "not_an_image", "画像を読み込めません", "unreadable image")
    if not found:
        return jsonify(found=False)
    return jsonify(found=True, text=found[0])


# ------------------------------------------------------------------ helpers
def _extension(name: str) -> Any:

    return current_app.extensions[name]


def _json_error(status: int, code: str, ja: str, en: str) -> Response:
    return json_error(CodedError(code, ja, en, status=status))


def _busy(err: Busy) -> Response:
    response = json_error(err)
    response.headers["Retry-After"] = str(err.retry_after)
    return response


def _http_error(err: HTTPException) -> Response:
    if err.code == 413:
        return _json_error(413, "too_large", "画像が大きすぎます", "image too large")
    return json_error(from_http(err))


def _unexpected(err: Exception) -> Response:
    # The type only, never the message or the body: a frame may show personal data.
    _log.error("unexpected %s in %s %s", type(err).__name__, request.method, request.path)
    return _json_error(500, "internal", "問題が発生しました", "something went wrong")
