"""``POST /api/encode``: a presentation (and its anchor evidence) as a QR payload.

Stateless: the presentation is packed and returned, never stored or logged. The
wallet sends the issuer's evidence document as it received it (``GET
/oid4vci/evidence/<leaf>``, the same JSON as ``shomei receipt``); it travels in the QR
as the binary receipt, exactly as ``shomei present --receipt`` puts it there.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.wrappers import Response

from anchor import evidence as anchor_evidence
from anchor import merkle
from credentials import qr
from credentials.encoding import b64e, loads_bounded
from credentials.errors import CodedError, ShomeiError
from edges.errors import json_error

bp = Blueprint("encode", __name__, url_prefix="/api")

MAX_BODY = 64 * 1024
#: DESIGN §6: an embedded-mode QR stays at or below version 25 (error correction M).
MAX_EMBEDDED_VERSION = 25


class EncodeError(ValueError):
    """A request this endpoint cannot use; the message goes to the client."""


def _error(code: str, ja: str, en: str, status: int = 400) -> Response:
    response = json_error(CodedError(code, ja, en, status=status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _too_large() -> Response:
    return _error("too_large", f"{MAX_BODY} バイトまでです", f"at most {MAX_BODY} bytes", 413)


def evidence_bytes(document: Any) -> bytes | None:
    """The QR evidence bytes of the issuer's evidence document (None for null).
    Raises :class:`EncodeError` for anything else."""
    if document is None:
        return None
    try:
        return anchor_evidence.encode_receipt(merkle.Receipt.from_json(document["receipt"]))
    except (ValueError, KeyError, TypeError, AttributeError, ShomeiError):
        raise EncodeError("evidence is not the issuer's evidence document") from None


def encode(presentation: str, evidence: bytes | None, *, link: bool = False) -> dict[str, Any]:
    """``{"mode": "embedded", "payload", "version"}`` when the QR fits version 25 at
    level M, else (or with ``link``) ``{"mode": "too_large", "container"}`` (base64url,
    unpadded) for the wallet to seal and put on a relay."""
    payload = qr.encode_embedded(presentation, evidence)
    try:
        version = qr.qr_version(payload)
    except ValueError:
        version = None
    if not link and version is not None and version <= MAX_EMBEDDED_VERSION:
        return {"mode": "embedded", "payload": payload, "version": version}
    container = qr.encode_container(presentation, evidence)
    text = b64e(container)
    return {"mode": "too_large", "container": text}


@bp.post("/encode")
def encode_view() -> Response:
    if (request.content_length or 0) > MAX_BODY:
        return _too_large()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return _too_large()
    try:
        body = loads_bounded(raw) if request.is_json else None
    except ValueError:  # UnicodeDecodeError included
        body = None
    if not isinstance(body, dict):
        return _error("bad_request", "JSON のオブジェクトを送ってください", "send a JSON object")
    presentation = body.get("presentation")
    if (
        not isinstance(presentation, str)
        or not presentation
        or qr.classify(presentation) != "sd-jwt"
    ):
        return _error(
            "bad_request",
            "presentation は SD-JWT の文字列にしてください",
            "presentation must be an SD-JWT string",
        )
    try:
        # ?container=1: the resident chose a link-mode QR code (or a test forces one)
        link = request.args.get("container") == "1"
        result = encode(presentation, evidence_bytes(body.get("evidence")), link=link)
    except EncodeError:
        return _error(
            "bad_evidence",
            "evidence が発行元の証拠文書ではありません",
            "evidence is not the issuer's evidence document",
        )
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response
