"""Checking an uploaded contract PDF before the city keeps it. No Flask.

The PDF is parsed with pypdf only to learn that it is a well-formed, unencrypted PDF
and how many pages it has; it is never rendered, and nothing in it (JavaScript, forms,
embedded files) is run. What the city signs is the SHA-256 of the exact bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass

from credentials.errors import ShomeiError

MAX_BYTES = 10 * 1024 * 1024
MAX_PAGES = 200
_MAGIC = b"%PDF-"


class DocumentError(ShomeiError):
    """The upload is not a PDF the city accepts (not a PDF, encrypted, too large, too
    many pages)."""


@dataclass(frozen=True, kw_only=True)
class CheckedPdf:
    data: bytes
    sha256: str
    pages: int

    @property
    def size(self) -> int:
        return len(self.data)


def check_pdf(data: bytes, *, max_bytes: int = MAX_BYTES, max_pages: int = MAX_PAGES) -> CheckedPdf:
    """The PDF with its digest and page count. Raises :class:`DocumentError`."""
    if not data:
        raise DocumentError("契約書PDFを選んでください", "choose the contract PDF")
    if len(data) > max_bytes:
        raise DocumentError(
            f"PDFが大きすぎます（{max_bytes // (1024 * 1024)} MiBまで）",
            f"the PDF is too large (at most {max_bytes // (1024 * 1024)} MiB)",
        )
    # Real PDFs start with the header; readers tolerate junk before it, we do not.
    if not data.startswith(_MAGIC):
        raise _not_a_pdf()
    pages = _count_pages(data)
    if pages < 1:
        raise _not_a_pdf()
    if pages > max_pages:
        raise DocumentError(
            f"ページ数が多すぎます（{pages}ページ、{max_pages}ページまで）",
            f"too many pages ({pages}; at most {max_pages})",
        )
    return CheckedPdf(data=data, sha256=hashlib.sha256(data).hexdigest(), pages=pages)


def _count_pages(data: bytes) -> int:
    from pypdf import PdfReader

    # pypdf logs its repairs of sloppy files as warnings; they are not ours to show.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentError(
                "暗号化（パスワード保護）されたPDFは受け付けません。保護を解除したPDFを選んでください",
                "encrypted (password-protected) PDFs are not accepted: upload an unprotected PDF",
            )
        return len(reader.pages)
    except DocumentError:
        raise
    except Exception:  # pypdf raises many kinds on malformed input; all mean "not a PDF"
        raise _not_a_pdf() from None


CREDENTIAL_ATTACHMENT = "shomei-contract.sd-jwt"
ANCHORED_ATTACHMENT = "shomei-contract.sh1"
AGREEMENTS_ATTACHMENT = "shomei-agreements.txt"


def with_credential(
    pdf: bytes, *, credential: str, agreements: list[str], anchored: str | None = None
) -> bytes:
    """The contract PDF carrying its credential and both parties' agreement JWSs as
    embedded files, added in an *incremental update*: the original bytes stay the first
    part of the file, so a verifier still finds the digest the parties signed (and
    checks that the update adds nothing but the embedded files). ``anchored`` is the
    credential with its anchor evidence as an ``SH1:`` payload, once anchored: it comes
    first, so a verifier reading the PDF alone also checks the anchor."""
    import warnings

    from pypdf import PdfWriter

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf's notes on sloppy files are not ours to show
        writer = PdfWriter(io.BytesIO(pdf), incremental=True)
        if anchored is not None:
            writer.add_attachment(ANCHORED_ATTACHMENT, anchored.encode("ascii"))
        writer.add_attachment(CREDENTIAL_ATTACHMENT, credential.encode("ascii"))
        writer.add_attachment(AGREEMENTS_ATTACHMENT, ("\n".join(agreements) + "\n").encode())
        out = io.BytesIO()
        writer.write(out)
    data = out.getvalue()
    assert data.startswith(pdf), "an incremental update keeps the original bytes"
    return data


def _not_a_pdf() -> DocumentError:
    return DocumentError(
        "PDFファイルではないか、壊れています", "the file is not a PDF or is damaged"
    )
