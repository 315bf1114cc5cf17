"""Reading a dropped contract PDF safely. Pure: no Flask, no network.

The PDF is parsed with pypdf only to count its pages and to list its embedded files
(a contract PDF may carry its own credential, ``shomei-contract.sd-jwt``, and the
parties' agreement JWSs). It is never rendered and nothing in it is run. What is
compared with the credential's ``document_sha256`` is the SHA-256 of the exact bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from credentials import sdjwt
from credentials.errors import ShomeiError

if TYPE_CHECKING:
    from pypdf import PdfReader

MAX_BYTES = 10 * 1024 * 1024
MAX_PAGES = 200
#: An attachment is read only up to the core's input limit (64 KiB).
MAX_ATTACHMENT = sdjwt.DEFAULT_MAX_SIZE
#: At most this many embedded files are looked at.
MAX_ATTACHMENTS = 16
_MAGIC = b"%PDF-"
#: Names under which an attachment is meant to be a credential: too large is an error.
_CREDENTIAL_SUFFIXES = (".sd-jwt", ".jwt", ".sh1", ".txt")


class DocumentError(ShomeiError):
    """The file is not a PDF the verifier reads (not a PDF, malformed, encrypted, too
    large, too many pages). ``code`` and ``status`` are for the HTTP answer."""

    def __init__(self, code: str, ja: str, en: str, *, status: int = 400) -> None:
        super().__init__(ja, en)
        self.code = code
        self.status = status


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """An embedded file: its name and its bytes (at most :data:`MAX_ATTACHMENT`)."""

    name: str
    data: bytes

    def text(self) -> str | None:
        """The content as stripped UTF-8 text, or None for binary content."""
        try:
            return self.data.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True, kw_only=True)
class CheckedPdf:
    """A PDF that passed the checks: its bytes, digest, page count and attachments."""

    data: bytes
    sha256: str
    pages: int
    attachments: tuple[Attachment, ...]
    #: Lengths of earlier revisions (incremental updates) of which this file only adds
    #: embedded files: the original contract PDF may be one of them.
    revisions: tuple[int, ...] = ()


def is_pdf(data: bytes) -> bool:
    return data.startswith(_MAGIC)


def read_pdf(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PAGES,
    max_attachment: int = MAX_ATTACHMENT,
) -> CheckedPdf:
    """Return the checked PDF. Raises :class:`DocumentError` (413 for too large)."""
    if not data:
        raise DocumentError("no_document", "PDFが空です", "the PDF is empty")
    if len(data) > max_bytes:
        mib = max_bytes // (1024 * 1024)
        raise DocumentError(
            "too_large",
            f"PDFが大きすぎます（{mib} MiBまで）",
            f"the PDF is too large (at most {mib} MiB)",
            status=413,
        )
    # Real PDFs start with the header; readers tolerate junk before it, we do not.
    if not is_pdf(data):
        raise _not_a_pdf()
    pages, attachments, revisions = _parse(data, max_pages=max_pages, max_attachment=max_attachment)
    return CheckedPdf(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        pages=pages,
        attachments=attachments,
        revisions=revisions,
    )


def _parse(
    data: bytes, *, max_pages: int, max_attachment: int
) -> tuple[int, tuple[Attachment, ...], tuple[int, ...]]:
    from pypdf import PdfReader

    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    # pypdf warns and logs about the repairs of sloppy files: not ours to show, and
    # never an error (the tests turn warnings into errors).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise DocumentError(
                    "encrypted_pdf",
                    "暗号化（パスワード保護）されたPDFは確認できません。保護を解除したPDFを選んでください",
                    "encrypted (password-protected) PDFs cannot be checked: use an unprotected PDF",
                )
            pages = len(reader.pages)
            if pages < 1:
                raise _not_a_pdf()
            if pages > max_pages:
                raise DocumentError(
                    "too_many_pages",
                    f"ページ数が多すぎます（{pages}ページ、{max_pages}ページまで）",
                    f"too many pages ({pages}; at most {max_pages})",
                )
            attachments = _attachments(reader, max_attachment)
            revisions = _attachment_only_revisions(data, reader) if attachments else ()
            return pages, attachments, revisions
    except DocumentError:
        raise
    except Exception:  # pypdf raises many kinds on malformed input; all mean "unreadable"
        raise _not_a_pdf() from None
    finally:
        logger.setLevel(level)


def _attachments(reader: PdfReader, max_attachment: int) -> tuple[Attachment, ...]:
    """The embedded files small enough to be a credential or an agreement; a large one
    named like a credential is refused, other large ones (drawings) are skipped."""
    found: list[Attachment] = []
    for i, file in enumerate(reader.attachment_list):
        if i >= MAX_ATTACHMENTS:
            break
        name = str(file.name)
        declared = file.size
        # pypdf caps what one stream may inflate to; the declared size is checked first.
        content = b"" if declared is not None and declared > max_attachment else file.content
        if (declared is not None and declared > max_attachment) or len(content) > max_attachment:
            if name.lower().startswith("shomei") or name.lower().endswith(_CREDENTIAL_SUFFIXES):
                raise DocumentError(
                    "attachment_too_large",
                    f"PDFの添付ファイル {name[:60]} が大きすぎます"
                    f"（{max_attachment // 1024} KiBまで）",
                    f"the PDF's attachment {name[:60]} is too large "
                    f"(at most {max_attachment // 1024} KiB)",
                    status=413,
                )
            continue
        found.append(Attachment(name=name, data=bytes(content)))
    return tuple(found)


#: At most this many earlier revisions are looked at.
MAX_REVISIONS = 4
_EOF = b"%%EOF"


def _attachment_only_revisions(data: bytes, reader: PdfReader) -> tuple[int, ...]:
    """Return the lengths of the earlier revisions that the later updates change only
    by adding embedded files: every object of the revision reads the same in the whole
    file, except the catalog and its name dictionary, which may gain /Names and
    /EmbeddedFiles and nothing else (no new page, action or script)."""
    from pypdf import PdfReader

    ends: list[int] = []
    at = data.rfind(_EOF, 0, len(data) - len(_EOF))
    while at > 0 and len(ends) < MAX_REVISIONS:
        end = at + len(_EOF)
        end += 2 if data[end : end + 2] == b"\r\n" else 1 if data[end : end + 1] in b"\r\n" else 0
        ends.append(end)
        at = data.rfind(_EOF, 0, at)
    found = []
    for end in ends:
        try:
            old = PdfReader(io.BytesIO(data[:end]), strict=False)
            if not old.is_encrypted and _only_attachments_added(old, reader):
                found.append(end)
        except Exception:  # not a complete PDF on its own: not a revision
            continue
    return tuple(found)


def _only_attachments_added(old: PdfReader, new: PdfReader) -> bool:
    old_root: Any = old.trailer.raw_get("/Root")
    new_root: Any = new.trailer.raw_get("/Root")
    old_cat: Any = old_root.get_object()
    new_cat: Any = new_root.get_object()
    allowed = {old_root.idnum}
    old_names = old_cat.raw_get("/Names") if "/Names" in old_cat else None
    if old_names is not None and hasattr(old_names, "idnum"):
        allowed.add(old_names.idnum)
    # The catalog: the same but for /Names; /Names: the same but for /EmbeddedFiles.
    if _plain(_without(old_cat, "/Names")) != _plain(_without(new_cat, "/Names")):
        return False
    old_n, new_n = old_cat.get("/Names"), new_cat.get("/Names")
    old_nd = old_n.get_object() if old_n is not None else {}
    new_nd = new_n.get_object() if new_n is not None else {}
    if _plain(_without(old_nd, "/EmbeddedFiles")) != _plain(_without(new_nd, "/EmbeddedFiles")):
        return False
    for gen, table in old.xref.items():
        for idnum in table:
            if idnum in allowed or gen == 65535:
                continue
            if _plain(_effective(old.get_object(idnum))) != _plain(
                _effective(new.get_object(idnum))
            ):
                return False
    return len(old.xref_objStm) == 0 or all(
        _plain(_effective(old.get_object(i))) == _plain(_effective(new.get_object(i)))
        for i in old.xref_objStm
        if i not in allowed
    )


_INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")


def _effective(obj: Any) -> Any:
    """A page with its inherited attributes filled in from its parents (writers may
    copy them into the page without changing what it shows); other objects as they are."""
    if not isinstance(obj, dict) or obj.get("/Type") != "/Page":
        return obj
    page = dict(obj)
    parent, depth = obj.get("/Parent"), 0
    while parent is not None and depth < 32:
        node = parent.get_object()
        for key in _INHERITABLE:
            if key not in page and key in node:
                page[key] = node[key]
        parent, depth = node.get("/Parent"), depth + 1
    return page


def _without(d: object, key: str) -> dict[str, object]:
    return {k: v for k, v in d.items() if k != key} if isinstance(d, dict) else {}


def _plain(value: object) -> object:
    """A comparable form of a pypdf object: references by number, streams by bytes."""
    from pypdf.generic import IndirectObject, StreamObject

    if isinstance(value, IndirectObject):
        return ("ref", value.idnum, value.generation)
    if isinstance(value, StreamObject):
        return ("stream", _plain(dict(value)), bytes(value._data))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return (type(value).__name__, repr(value)) if value is not None else None


def _not_a_pdf() -> DocumentError:
    return DocumentError(
        "not_a_pdf",
        "PDFファイルではないか、壊れていて読み込めません",
        "not a PDF file, or damaged and unreadable",
    )


def original_length(
    claims: dict[str, Any], document: bytes | None, revisions: Sequence[int]
) -> int | None:
    """The length of the part of ``document`` whose SHA-256 is ``document_sha256``: the
    whole file, or one of its attachment-only earlier revisions; None for no match."""
    expected = claims.get("document_sha256")
    if document is None or not isinstance(expected, str):
        return None
    for length in (len(document), *revisions):
        if 0 < length <= len(document):
            digest = hashlib.sha256(memoryview(document)[:length]).hexdigest()
            if hmac.compare_digest(digest, expected.lower()):
                return length
    return None


def document_json(
    claims: dict[str, Any], document: bytes | None, original: int | None
) -> dict[str, Any] | None:
    """The result's ``document`` entry: the dropped file's digest and whether it is the
    original (None when the credential discloses no digest); None without a file."""
    if document is None:
        return None
    disclosed = isinstance(claims.get("document_sha256"), str)
    return {
        "sha256": hashlib.sha256(document).hexdigest(),
        "matches": (original is not None) if disclosed else None,
        "original_bytes": original,
    }
