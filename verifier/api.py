"""``POST /api/verify``, ``POST /api/scan`` and ``GET /api/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.wrappers import Response

from . import inputs, openapi, service
from .http import decoder, upload_part
from .inputs import InputError

bp = Blueprint("api", __name__, url_prefix="/api")

_UNSUPPORTED = InputError(
    "unsupported_media_type",
    "対応していないデータ形式です（JSON または multipart/form-data）",
    "unsupported content type: send application/json or multipart/form-data",
    status=415,
)


def _bad(ja: str, en: str) -> InputError:
    return InputError("bad_request", ja, en)


def _uploaded() -> bytes:
    """Return the multipart ``file`` part. Raises :class:`InputError` without one."""
    data = upload_part("file")
    if data is None:
        raise _bad("ファイル（file）がありません", "no file part named 'file'")
    return data


def _verify_form() -> dict[str, Any]:
    """Verify a multipart ``file`` (the credential) and/or ``document`` (the PDF)."""
    file, document = upload_part("file"), upload_part("document")
    if file is None and document is None:
        raise _bad(
            "ファイル（file）または契約書PDF（document）がありません",
            "no part named 'file' or 'document'",
        )
    config = current_app.config
    sub = service.submission(
        file=file,
        document=document,
        max_document_bytes=config["DOCUMENT_MAX_BYTES"],
        max_pages=config["DOCUMENT_MAX_PAGES"],
        decoder=decoder(),
    )
    result = service.verify_submission(
        config["VERIFIER"], sub, now=config["CLOCK"](), fetch_link=config["LINK_FETCHER"]
    )
    return result.to_json()


def _json_request() -> dict[str, Any]:
    """Return the JSON body as an object. Raises :class:`InputError` otherwise."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _bad("JSON のオブジェクトを送ってください", "send a JSON object")
    return body


def _optional(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{name} は文字列にしてください", f"{name} must be a string")
    return value


def _verify_json(body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("presentation")
    if not isinstance(text, str):
        raise _bad("presentation（文字列）がありません", "missing string 'presentation'")
    at = _optional(body, "at")
    evidence = body.get("evidence")
    result = service.verify_text(
        current_app.config["VERIFIER"],
        text,
        now=service.parse_at(at) if at else current_app.config["CLOCK"](),
        fetch_link=current_app.config["LINK_FETCHER"],
        evidence=service.parse_evidence(evidence) if evidence is not None else None,
        nonce=_optional(body, "nonce"),
        aud=_optional(body, "aud"),
    )
    return result.to_json()


def _verify(text: str) -> dict[str, Any]:
    result = service.verify_text(
        current_app.config["VERIFIER"],
        text,
        now=current_app.config["CLOCK"](),
        fetch_link=current_app.config["LINK_FETCHER"],
    )
    return result.to_json()


@bp.post("/verify")
def verify() -> Response:
    """Verify what was sent; 200 with the result document, whatever the verdict."""
    if request.mimetype == "application/json":
        return jsonify(_verify_json(_json_request()))
    if request.mimetype == "multipart/form-data":
        return jsonify(_verify_form())
    raise _UNSUPPORTED


@bp.post("/scan")
def scan() -> Response:
    """Look for a QR code in one camera frame: ``{"found": false}``, or the result."""
    if request.mimetype in ("image/jpeg", "image/png"):
        frame = request.get_data(cache=False)
    elif request.mimetype == "multipart/form-data":
        frame = _uploaded()
    else:
        raise _UNSUPPORTED
    texts = inputs.qr_texts(frame, decoder=decoder())
    if not texts:
        return jsonify({"found": False})
    return jsonify({"found": True, "payload": texts[0], **_verify(texts[0])})


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi.document(max_upload=current_app.config["MAX_CONTENT_LENGTH"]))
