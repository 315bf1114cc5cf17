"""What the verifier's web pages and its API share about a request: the page language
and the uploaded parts. Imported by :mod:`verifier.app`, :mod:`verifier.api` and
:mod:`verifier.web`; imports none of them.
"""

from __future__ import annotations

from flask import current_app, request

from edges.errors import HTTP_ERRORS

from . import i18n
from .inputs import Decoder, InputError


def lang() -> str:
    """Return the page language of this request (``?lang=en``, else Japanese)."""
    return i18n.choose(request.args.get("lang"))


def decoder() -> Decoder:
    """The app's reader of QR images and PDFs (its limits and its gate)."""
    found: Decoder = current_app.extensions["shomei_decoder"]
    return found


def upload_part(name: str) -> bytes | None:
    """Return the bytes of the multipart part ``name`` (None when absent or without a
    file name in a browser form). Raises :class:`InputError` (413) for a credential file
    over MAX_CONTENT_LENGTH; the ``document`` part is checked by its reader."""
    upload = request.files.get(name)
    if upload is None:
        return None
    data: bytes = upload.read()
    if name != "document" and len(data) > int(current_app.config["MAX_CONTENT_LENGTH"]):
        raise InputError("too_large", *HTTP_ERRORS[413][1:], status=413)
    return data
