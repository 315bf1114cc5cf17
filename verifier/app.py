"""The standalone verifier service: ``create_app()`` builds the Flask app.

It trusts what the configured chain's registry says (``chain.json`` or the
``SHOMEI_*`` environment, exactly as ``shomei verify``), plus an optional trust file,
and keeps nothing of what it verifies. Flask is imported here and in the blueprints
only; the checklist (:mod:`verifier.policy`) stays pure.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template, request
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException

import edges.json as edges_json
import verifier.oid4vp as oid4vp
from credentials.errors import CodedError, ShomeiError
from edges.busy import Busy
from edges.errors import HTTP_ERRORS, from_http, json_error, keep_allow
from edges.headers import HeaderPolicy, install_headers

from . import documents, i18n, requests
from .config import Limits
from .http import lang
from .inputs import Decoder, InputError
from .ratelimit import RateLimiter
from .request_store import FILE_NAME, SqliteStore
from .x509_identity import X509Identity

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MAX_UPLOAD = 5 * 1024 * 1024
#: Multipart overhead allowed beyond the credential file and the contract PDF.
_FORM_OVERHEAD = 64 * 1024
#: The endpoints that take a contract PDF besides the credential file.
_DOCUMENT_ENDPOINTS = frozenset({"web.verify", "api.verify"})
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_log = logging.getLogger("shomei.verifier")


def _no_store_but_static() -> str | None:
    # Results carry personal data: no browser or proxy may keep them.
    return "no-store" if request.endpoint != "static" else None


HEADERS = HeaderPolicy(csp=CSP, permissions="camera=(self)", cache_control=_no_store_but_static)

_INTERNAL = InputError(
    "internal",
    "確認中に問題が発生しました。もう一度お試しください",
    "something went wrong while checking; please try again",
    status=500,
)


def defaults() -> dict[str, Any]:
    """Return the configuration from the environment (``SHOMEI_DATA_DIR``,
    ``SHOMEI_TRUST_FILE``, ``SHOMEI_LINK_RELAYS`` as comma-separated origins, see
    :mod:`verifier.relay`, ``SHOMEI_VERIFIER_RATE_LIMIT`` per minute, 0 for none,
    ``SHOMEI_VERIFIER_TRUSTED_PROXIES``, the request pool's limits
    ``SHOMEI_VERIFIER_MAX_PENDING``, ``SHOMEI_VERIFIER_PENDING_PER_ADDRESS``,
    ``SHOMEI_VERIFIER_REQUESTS_PER_MINUTE``, and the ``SHOMEI_VERIFIER_<LIMIT>`` of
    :class:`verifier.config.Limits`)."""
    return {
        "DATA_DIR": os.environ.get("SHOMEI_DATA_DIR"),
        "TRUST_FILE": os.environ.get("SHOMEI_TRUST_FILE") or None,
        "VERIFIER": None,
        "EXPLORER_TX_URL": None,
        "LINK_RELAYS": [
            h for h in os.environ.get("SHOMEI_LINK_RELAYS", "").split(",") if h.strip()
        ],
        "LINK_FETCHER": None,
        "RATE_LIMIT_PER_MINUTE": int(os.environ.get("SHOMEI_VERIFIER_RATE_LIMIT", "600")),
        # Behind N reverse proxies, the client address is the Nth from the right of
        # X-Forwarded-For (the rate limit is per client address).
        "TRUSTED_PROXIES": int(os.environ.get("SHOMEI_VERIFIER_TRUSTED_PROXIES", "0")),
        # The cross-device request pool (verifier/requests.py), shared by the server's
        # processes: a SQLite file, by default ``requests.db`` in the data directory
        # (":memory:" keeps it in this process only).
        "REQUESTS_DB": None,
        "REQUESTS_MAX_PENDING": _env_int("SHOMEI_VERIFIER_MAX_PENDING", requests.MAX_PENDING),
        "REQUESTS_PER_ADDRESS": _env_int(
            "SHOMEI_VERIFIER_PENDING_PER_ADDRESS", requests.PER_ADDRESS
        ),
        "REQUESTS_PER_ADDRESS_PER_MINUTE": _env_int(
            "SHOMEI_VERIFIER_REQUESTS_PER_MINUTE", requests.PER_ADDRESS_PER_MINUTE
        ),
        # OpenID4VP (verifier/oid4vp.py): the certificate and P-256 key (PEM files) that
        # sign requests as ``x509_san_dns:<its DNS name>``; without them requests are
        # unsigned (``redirect_uri:``). The issuers whose 住民票 ``vct`` a request names
        # (besides those of the trust file), and the response mode asked for.
        "X509_CERT": os.environ.get("SHOMEI_VERIFIER_X509_CERT") or None,
        "X509_KEY": os.environ.get("SHOMEI_VERIFIER_X509_KEY") or None,
        "OID4VP_ISSUERS": [
            i.strip() for i in os.environ.get("SHOMEI_VERIFIER_ISSUERS", "").split(",") if i.strip()
        ],
        "OID4VP_RESPONSE_MODE": os.environ.get("SHOMEI_VERIFIER_RESPONSE_MODE")
        or "direct_post.jwt",
        # A wallet the request page also offers to open on this device (the demo's):
        # ``<WALLET_URL>/?request=<the openid4vp link>``. Unset: only the link itself.
        "WALLET_URL": os.environ.get("SHOMEI_VERIFIER_WALLET_URL") or None,
        "MAX_CONTENT_LENGTH": MAX_UPLOAD,
        # The contract PDF (``document``) on /verify and /api/verify: its own limits.
        "DOCUMENT_MAX_BYTES": documents.MAX_BYTES,
        "DOCUMENT_MAX_PAGES": documents.MAX_PAGES,
        # Images, PDF renders and link-mode fetches: what one request may take.
        "LIMITS": Limits.from_env(),
        "CLOCK": time.time,
    }


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The verifier app, configured from the environment and the data directory, or
    from ``test_config`` (``{"VERIFIER": Verifier(...)}`` skips the chain). Raises
    :class:`ShomeiError` for a configuration it cannot use (a bad limit or relay)."""
    from . import api, oid4vp_web, relay, web

    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder="static")
    try:
        app.config.from_mapping(defaults())
    except ValueError as e:
        raise ShomeiError(f"設定が不正です: {e}", f"bad configuration: {e}") from None
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["VERIFIER"] is None:
        _configure_from_chain(app.config)
    limits: Limits = app.config["LIMITS"]
    app.extensions["shomei_decoder"] = Decoder.for_limits(limits)
    if app.config["LINK_FETCHER"] is None:
        try:
            app.config["LINK_FETCHER"] = relay.make_fetcher(
                app.config["LINK_RELAYS"],
                timeout=limits.link_timeout_seconds,
                max_blob=limits.link_max_blob,
            )
        except ValueError as e:
            ja, en = f"SHOMEI_LINK_RELAYS が不正です: {e}", f"bad SHOMEI_LINK_RELAYS: {e}"
            raise ShomeiError(ja, en) from None
    if app.config["TRUSTED_PROXIES"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    per_minute = int(app.config["RATE_LIMIT_PER_MINUTE"])
    app.extensions["shomei_rate_limiter"] = RateLimiter(per_minute) if per_minute > 0 else None
    app.extensions["shomei_requests"] = _request_store(app.config)
    app.extensions["shomei_x509"] = _x509_identity(app.config)
    if app.config["OID4VP_RESPONSE_MODE"] not in oid4vp.MODES:
        raise ShomeiError(
            "SHOMEI_VERIFIER_RESPONSE_MODE が不正です", "bad SHOMEI_VERIFIER_RESPONSE_MODE"
        )
    edges_json.install(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    app.before_request(_rate_limit)
    app.before_request(_document_upload_limit)
    install_headers(app, HEADERS)
    app.register_error_handler(InputError, _input_error)
    app.register_error_handler(Busy, _busy)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.context_processor(_template_helpers)
    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(oid4vp_web.bp)
    return app


def _x509_identity(config: dict[str, Any]) -> X509Identity | None:
    """The configured signing identity (both files, or neither). Raises
    :class:`ShomeiError` for one without the other or files it cannot use."""
    cert, key = config["X509_CERT"], config["X509_KEY"]
    if not cert and not key:
        return None
    if not cert or not key:
        raise ShomeiError(
            "SHOMEI_VERIFIER_X509_CERT と SHOMEI_VERIFIER_X509_KEY は両方設定してください",
            "set both SHOMEI_VERIFIER_X509_CERT and SHOMEI_VERIFIER_X509_KEY",
        )
    return X509Identity.load(cert, key)


def _configure_from_chain(config: dict[str, Any]) -> None:
    from anchor.config import ChainConfig, data_dir

    from .config import build_verifier

    chain = ChainConfig.load(data_dir(config["DATA_DIR"]))
    config["VERIFIER"] = build_verifier(chain=chain, trust_file=config["TRUST_FILE"])
    if chain is not None and not config["EXPLORER_TX_URL"]:
        config["EXPLORER_TX_URL"] = chain.explorer_tx_url


def _request_store(config: dict[str, Any]) -> SqliteStore:
    """The request pool; its file is opened on first use (by each worker process)."""
    from anchor.config import data_dir

    path = config["REQUESTS_DB"] or data_dir(config["DATA_DIR"]) / FILE_NAME
    limits = requests.Limits(
        max_pending=int(config["REQUESTS_MAX_PENDING"]),
        per_address=int(config["REQUESTS_PER_ADDRESS"]),
        per_address_per_minute=int(config["REQUESTS_PER_ADDRESS_PER_MINUTE"]),
    )
    return SqliteStore(path=path, limits=limits)


def _template_helpers() -> dict[str, Any]:
    current = lang()
    return {"lang": current, "t": lambda ja, en: i18n.pick(current, ja, en)}


def _client() -> str:
    return request.remote_addr or "unknown"


def _rate_limit() -> Response | None:
    limiter = _limiter()
    if limiter is None or request.endpoint == "static":
        return None
    if limiter.allow(_client(), now=time.monotonic()):
        return None
    response = _error_response(InputError("rate_limited", *HTTP_ERRORS[429][1:], status=429))
    response.headers["Retry-After"] = str(limiter.retry_after())
    return response


def _document_upload_limit() -> None:
    """A form with a contract PDF may exceed MAX_CONTENT_LENGTH by the PDF's own limit;
    the credential file in it is still held to MAX_CONTENT_LENGTH (:func:`upload_part`).
    Only multipart requests to the verify endpoints: JSON bodies keep the app limit."""
    if request.endpoint in _DOCUMENT_ENDPOINTS and request.mimetype == "multipart/form-data":
        config = current_app.config
        request.max_content_length = (
            int(config["MAX_CONTENT_LENGTH"]) + int(config["DOCUMENT_MAX_BYTES"]) + _FORM_OVERHEAD
        )


def _limiter() -> RateLimiter | None:
    limiter: RateLimiter | None = current_app.extensions["shomei_rate_limiter"]
    return limiter


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error_response(err: CodedError) -> Response:
    if _wants_json():
        response = json_error(err)
    else:
        message = err.en if lang() == "en" else err.ja
        response = Response(render_template("verifier/error.html", message=message))
    response.status_code = err.status
    return response


def _input_error(err: InputError) -> Response:
    return _error_response(err)


def _busy(err: Busy) -> Response:
    response = _error_response(err)
    response.headers["Retry-After"] = str(err.retry_after)
    return response


def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    coded = from_http(err)
    response = _error_response(InputError(coded.code, coded.ja, coded.en, status=status))
    return keep_allow(err, response)


def _unexpected(err: Exception) -> Response:
    # The type and where, never the message: it could quote what was being verified.
    _log.error(
        "unexpected %s in %s %s\n%s",
        type(err).__name__,
        request.method,
        request.path,
        "".join(traceback.format_tb(err.__traceback__)),
    )
    return _error_response(_INTERNAL)
