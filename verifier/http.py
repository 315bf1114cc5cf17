"""What the verifier's web pages and its API share about a request: the page language
and the uploaded parts, and the bilingual texts of the HTTP errors. Imported by
:mod:`verifier.app`, :mod:`verifier.api` and :mod:`verifier.web`; imports none of them.
"""

from __future__ import annotations

from flask import current_app, request

from . import i18n
from .inputs import InputError

HTTP_CODES = {
    400: ("bad_request", "リクエストが不正です", "bad request"),
    404: ("not_found", "ページが見つかりません", "not found"),
    405: ("method_not_allowed", "この方法では利用できません", "method not allowed"),
    413: ("too_large", "データが大きすぎます", "request too large"),
    415: (
        "unsupported_media_type",
        "対応していないデータ形式です",
        "unsupported content type",
    ),
    429: (
        "rate_limited",
        "リクエストが多すぎます。しばらく待ってからやり直してください",
        "too many requests; try again shortly",
    ),
}


def lang() -> str:
    """Return the page language of this request (``?lang=en``, else Japanese)."""
    return i18n.choose(request.args.get("lang"))


def upload_part(name: str) -> bytes | None:
    """Return the bytes of the multipart part ``name`` (None when absent or without a
    file name in a browser form). Raises :class:`InputError` (413) for a credential file
    over MAX_CONTENT_LENGTH; the ``document`` part is checked by its reader."""
    upload = request.files.get(name)
    if upload is None:
        return None
    data: bytes = upload.read()
    if name != "document" and len(data) > int(current_app.config["MAX_CONTENT_LENGTH"]):
        raise InputError("too_large", *HTTP_CODES[413][1:], status=413)
    return data
