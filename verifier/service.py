"""What the verifier service does with a request, without the web framework.

The views hand over raw bytes or text; these helpers turn them into a presentation and
a :class:`~verifier.policy.VerificationResult`, exactly as ``shomei verify`` does, and
raise :class:`InputError` (with an error code and an HTTP status) for input that is no
credential at all. Nothing here logs or keeps what it sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anchor import evidence as anchor_evidence
from anchor import merkle
from credentials import qr
from credentials.agreement import looks_like_agreement
from credentials.encoding import JST, b64d
from credentials.errors import InvalidCredential, NotACredential, ShomeiError

from . import documents
from .agreements import tokens_in
from .documents import CheckedPdf
from .inputs import Decoder, InputError, LinkFetcher, file_text, from_text
from .policy import VerificationResult, Verifier


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What was handed in: the credential's text and, optionally, the contract PDF."""

    text: str
    document: CheckedPdf | None = None

    @property
    def agreement_tokens(self) -> tuple[str, ...]:
        """The agreement JWSs among the PDF's attachments (one or more per file)."""
        if self.document is None:
            return ()
        return tokens_in(a.text() for a in self.document.attachments)


def read_document(
    data: bytes, *, max_bytes: int, max_pages: int, decoder: Decoder | None = None
) -> CheckedPdf:
    """Return the checked contract PDF, parsed in one of ``decoder``'s turns. Raises
    :class:`InputError` (400, 413) and :class:`edges.busy.Busy`."""
    try:
        if len(data) > max_bytes:  # refused at once, without waiting for a turn
            return documents.read_pdf(data, max_bytes=max_bytes, max_pages=max_pages)
        with (decoder or Decoder()).hold():
            return documents.read_pdf(data, max_bytes=max_bytes, max_pages=max_pages)
    except documents.DocumentError as e:
        raise InputError(e.code, e.ja, e.en, status=e.status) from None


def attached_credential(pdf: CheckedPdf) -> str | None:
    """Return the credential a PDF carries as an embedded file, or None: an ``SH1:``
    payload first (it may carry the anchor evidence), else the first attachment whose
    text is an SD-JWT or another Shomei QR payload."""
    found: list[tuple[bool, int, str]] = []
    for attachment in pdf.attachments:
        text = attachment.text()
        if text and not looks_like_agreement(text) and (kind := qr.classify(text)) is not None:
            found.append((kind != "embedded", len(found), text))
    return min(found)[2] if found else None


def submission(
    *,
    file: bytes | None,
    pasted: str = "",
    document: bytes | None,
    max_document_bytes: int = documents.MAX_BYTES,
    max_pages: int = documents.MAX_PAGES,
    decoder: Decoder | None = None,
) -> Submission:
    """Return what to verify from an uploaded credential file, pasted text and a
    contract PDF (any may be missing; a PDF alone must carry its credential, and so may
    a PDF given as the credential file); ``decoder`` reads a QR code's image or PDF.
    Raises :class:`InputError` (and :class:`edges.busy.Busy`)."""

    def read(data: bytes) -> CheckedPdf:
        return read_document(
            data, max_bytes=max_document_bytes, max_pages=max_pages, decoder=decoder
        )

    pdf = read(document) if document is not None else None
    if file:
        if pdf is None and documents.is_pdf(file):
            try:
                carrier = read(file)
            except InputError:
                carrier = None  # not for attachments: perhaps a QR code on its first page
            text = attached_credential(carrier) if carrier else None
            if carrier is not None and text is not None:
                return Submission(text=text, document=carrier)
        return Submission(text=file_text(file, decoder=decoder), document=pdf)
    if pasted.strip():
        return Submission(text=pasted.strip(), document=pdf)
    if pdf is None:
        raise InputError(
            "bad_request",
            "QRコードの画像・ファイルを選ぶか、内容を貼り付けてください",
            "choose a QR image or a file, or paste the contents",
        )
    text = attached_credential(pdf)
    if text is None:
        raise InputError(
            "no_attached_credential",
            "PDFに証明書が添付されていません。証明書（QRコードの画像・ファイル）も選んでください",
            "the PDF carries no credential: choose the credential (QR image or file) too",
        )
    return Submission(text=text, document=pdf)


def parse_at(text: str) -> float:
    """Return the POSIX time of an ISO 8601 time; without an offset it is JST.
    Raises :class:`InputError` for anything else."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            "bad_request", f"日時が不正です（{text[:40]}）", "bad time: use ISO 8601"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=JST)).timestamp()


def parse_evidence(value: object) -> bytes:
    """Return anchor evidence bytes from a receipt document (as ``shomei receipt``
    prints it) or from base64url text. Raises :class:`InputError` otherwise."""
    try:
        if isinstance(value, dict):
            return anchor_evidence.encode_receipt(merkle.Receipt.from_json(value["receipt"]))
        if isinstance(value, str):
            return b64d(value.strip())
    except (ValueError, KeyError, TypeError, ShomeiError):
        pass
    raise InputError(
        "bad_request",
        "記録の証明（evidence）が不正です",
        "malformed evidence: a receipt document or base64url bytes",
    )


def verify_text(
    verifier: Verifier,
    text: str,
    *,
    now: float,
    fetch_link: LinkFetcher | None = None,
    evidence: bytes | None = None,
    nonce: str | None = None,
    aud: str | None = None,
    document: bytes | None = None,
    agreement_tokens: Sequence[str] = (),
    document_revisions: Sequence[int] = (),
) -> VerificationResult:
    """Decode ``text`` (see :func:`decode_text`) and verify it at ``now``; ``evidence``
    replaces the evidence the payload carries; ``document`` is the contract PDF to
    compare with ``document_sha256``, ``agreement_tokens`` the agreement JWSs with it.

    A damaged payload becomes a result with a failed ``format`` check (as in ``shomei
    verify``). Raises :class:`InputError` for text that is no credential at all.
    """
    if len(text) > verifier.max_size:
        raise InputError(
            "too_large",
            f"提示データが大きすぎます（上限 {verifier.max_size} 文字）",
            f"presentation too large (at most {verifier.max_size} characters)",
            status=413,
        )
    try:
        pres = from_text(text, fetch_link=fetch_link)
    except NotACredential as e:
        raise InputError("not_a_credential", e.ja, e.en) from None
    except InvalidCredential as e:
        return VerificationResult.malformed(e)
    return verifier.verify(
        pres.text,
        now=now,
        nonce=nonce,
        aud=aud,
        evidence=evidence if evidence is not None else pres.evidence,
        document=document,
        agreement_tokens=agreement_tokens,
        document_revisions=document_revisions,
    )


def verify_submission(
    verifier: Verifier, sub: Submission, *, now: float, fetch_link: LinkFetcher | None
) -> VerificationResult:
    """Verify a :class:`Submission` (see :func:`verify_text`)."""
    return verify_text(
        verifier,
        sub.text,
        now=now,
        fetch_link=fetch_link,
        document=sub.document.data if sub.document else None,
        agreement_tokens=sub.agreement_tokens,
        document_revisions=sub.document.revisions if sub.document else (),
    )
