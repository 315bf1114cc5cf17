"""Reading a dropped contract PDF safely. Pure: no Flask, no network.

The PDF is parsed with pypdf only to count its pages and to list its embedded files
(a contract PDF may carry its own credential, ``shomei-contract.sd-jwt``, and the
parties' agreement JWSs). It is never rendered and nothing in it is run. What is
compared with the credential's ``document_sha256`` is the SHA-256 of the exact bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    pages, attachments = _parse(data, max_pages=max_pages, max_attachment=max_attachment)
    return CheckedPdf(
        data=data, sha256=hashlib.sha256(data).hexdigest(), pages=pages, attachments=attachments
    )


def _parse(
    data: bytes, *, max_pages: int, max_attachment: int
) -> tuple[int, tuple[Attachment, ...]]:
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
            return pages, _attachments(reader, max_attachment)
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


def _not_a_pdf() -> DocumentError:
    return DocumentError(
        "not_a_pdf",
        "PDFファイルではないか、壊れていて読み込めません",
        "not a PDF file, or damaged and unreadable",
    )
