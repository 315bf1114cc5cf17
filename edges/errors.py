"""The one JSON error document of Shomei's own APIs (issuer, verifier, wallet):

    {"error": {"code": "not_found", "message": {"ja": "…", "en": "…"}}}

with the HTTP status of the error. The OAuth endpoints of OpenID4VCI (token, nonce,
credential) keep the shape their standards prescribe (RFC 6749 §5.2).
"""

from __future__ import annotations

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from credentials.errors import CodedError

#: code, ja, en of the HTTP errors a framework raises before a view could say more.
HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "リクエストが不正です", "bad request"),
    401: ("unauthorized", "認証が必要です", "authentication required"),
    403: ("forbidden", "権限がありません", "forbidden"),
    404: ("not_found", "見つかりません", "not found"),
    405: ("method_not_allowed", "この方法では利用できません", "method not allowed"),
    408: (
        "request_timeout",
        "データの受信が時間切れになりました",
        "the request did not arrive in time",
    ),
    409: ("conflict", "この操作はできません", "not possible in the present state"),
    413: ("too_large", "データが大きすぎます", "request too large"),
    415: ("unsupported_media_type", "対応していないデータ形式です", "unsupported content type"),
    429: (
        "rate_limited",
        "リクエストが多すぎます。しばらく待ってからやり直してください",
        "too many requests; try again shortly",
    ),
    500: ("internal", "問題が発生しました", "something went wrong"),
    503: ("unavailable", "ただいま利用できません", "service unavailable"),
}


def coded(status: int, *, ja: str | None = None, en: str | None = None) -> CodedError:
    """The coded error of an HTTP status (its message replaced when given)."""
    code, default_ja, default_en = HTTP_ERRORS.get(
        status, HTTP_ERRORS[500 if status >= 500 else 400]
    )
    return CodedError(code, ja or default_ja, en or default_en, status=status)


def from_http(error: HTTPException) -> CodedError:
    """The coded error of a framework HTTP error; a bilingual message set with the
    apps' ``abort_with`` (``ja``/``en`` attributes) is kept."""
    return coded(error.code or 500, ja=getattr(error, "ja", None), en=getattr(error, "en", None))


def json_error(error: CodedError) -> Response:
    """``error`` as the one JSON error document, with its status."""
    response = jsonify(error.to_json())
    response.status_code = error.status
    return response


def keep_allow(error: HTTPException, response: Response) -> Response:
    """``response`` with the ``Allow`` header of a 405 ``error`` (RFC 9110 §15.5.6)."""
    allow = dict(error.get_headers()).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response
