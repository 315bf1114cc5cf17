"""The print view: a certificate as an A4 PDF that verifies on paper too. No Flask.

The page carries the title from the document type's metadata, the issuing city and its
全国地方公共団体コード, every claim under its Japanese label (dates in 西暦 and 和暦),
issue date, expiry, the certificate number, and a large embedded-mode QR code of a
presentation disclosing every claim, with the Merkle receipt as anchor evidence once
the certificate's batch is on chain. Before that the QR still verifies (the anchor is
reported as a warning) and the page says it waits to be anchored.

The Japanese font is embedded as a subset, so the PDF renders anywhere: IPAex Gothic
from the ``japanize-matplotlib`` distribution (found without importing matplotlib), or
the TrueType file a caller names (the app's ``PRINT_FONT``). A revoked or expired
certificate is not printed.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont, TTLibError
from fpdf import FPDF
from fpdf.enums import WrapMode
from PIL import Image
from sqlalchemy.orm import Session

import issuer.certificates.service as certificates
from anchor import evidence as anchor_evidence
from anchor.queue import find_evidence
from anchor.store import ANCHORED
from credentials import doctypes, qr, sdjwt
from credentials.doctypes import format_date
from credentials.encoding import JST
from credentials.errors import ShomeiError
from issuer.accounts.models import User
from issuer.audit import service as audit
from issuer.certificates.models import REVOKED
from issuer.keys.service import City

FONT_PACKAGE = "japanize_matplotlib"
FONT_FILE = ("fonts", "ipaexg.ttf")
FONT_FAMILY = "shomei-jp"
QR_SIZE_MM = 72.0
PAGE = "print"


class PrintError(ShomeiError):
    """The PDF cannot be made (no font, the QR code would not fit)."""


class NotPrintable(certificates.CertificateError):
    """The certificate must not go on paper as valid (revoked, expired)."""


@dataclass(frozen=True, kw_only=True)
class Printed:
    """A certificate's PDF and what went into its QR code."""

    pdf: bytes
    filename: str
    qr_version: int
    anchored: bool  # the QR carries anchor evidence


@dataclass(frozen=True, kw_only=True)
class Sheet:
    """Everything that goes on the paper; :func:`render_pdf` draws it."""

    doc_type: str
    claims: Mapping[str, Any]
    city_name: str
    municipality_code: str
    public_id: str
    issued_at: float
    expires_at: float
    anchor: certificates.AnchorState
    qr_modules: tuple[tuple[bool, ...], ...]  # the QR code, True = dark, no quiet zone
    printed_at: float


# ------------------------------------------------------------------ service
def print_certificate(
    session: Session,
    cert_id: str,
    *,
    city: City,
    clerk: User,
    now: float,
    font: Path | None = None,
) -> Printed:
    """The PDF of certificate ``cert_id``; the viewing and the printing are recorded in
    the audit log (committed). Raises :class:`~issuer.certificates.NotFound`,
    :class:`NotPrintable` (revoked or expired: nothing is unsealed) and
    :class:`PrintError` (no font, QR code too large)."""
    refuse_unprintable(certificates.find(session, cert_id), now=now)
    font = font or default_font()
    check_font(font)  # before unsealing: a bad font setting reveals nothing
    opened = certificates.open_certificate(
        session, cert_id, city=city, viewer=clerk, now=now, page=PAGE
    )
    cert = opened.certificate
    evidence = evidence_for(session, cert.leaf)
    text = qr_payload(opened.credential, evidence)
    modules = qr_modules(text)
    sheet = Sheet(
        doc_type=cert.doc_type,
        claims=opened.claims,
        city_name=city.settings.name,
        municipality_code=city.settings.municipality_code,
        public_id=cert.public_id,
        issued_at=cert.issued_at,
        expires_at=cert.expires_at,
        anchor=certificates.anchor_state(session, cert.leaf),
        qr_modules=modules,
        printed_at=now,
    )
    pdf = render_pdf(sheet, font=font)
    audit.record(
        session,
        actor=clerk.username,
        action=audit.CERTIFICATE_PRINTED,
        target=f"certificate:{cert.public_id}",
        details={"vct": cert.doc_type, "status_index": cert.status_index, "page": PAGE},
        now=now,
    )
    session.commit()
    return Printed(
        pdf=pdf,
        filename=f"shomei-{cert.doc_type}-{cert.public_id}.pdf",
        qr_version=(len(modules) - 17) // 4,
        anchored=evidence is not None,
    )


def refuse_unprintable(cert: Any, *, now: float) -> None:
    """Returns None for a certificate that may be printed; raises :class:`NotPrintable`
    for a revoked one or one past its expiry at ``now``."""
    if cert.state == REVOKED:
        raise NotPrintable(
            "この証明書は取り消し済みのため印刷できません",
            "this certificate has been revoked and cannot be printed",
        )
    if now >= cert.expires_at:
        raise NotPrintable(
            "この証明書は有効期限が切れているため印刷できません",
            "this certificate has expired and cannot be printed",
        )


def evidence_for(session: Session, leaf: bytes) -> bytes | None:
    """The anchor evidence (a full Merkle receipt) for ``leaf`` once its batch is
    anchored, else None. Reads the anchoring tables only: no chain needed."""
    found = find_evidence(session, leaf)
    return None if found is None else anchor_evidence.encode_receipt(found.receipt)


def qr_payload(credential: str, evidence: bytes | None) -> str:
    """The embedded-mode QR text of a presentation disclosing every claim of
    ``credential``, with ``evidence``."""
    presentation = sdjwt.present(credential, disclose=sdjwt.claim_names(credential))
    return qr.encode_embedded(presentation, evidence)


def qr_modules(text: str) -> tuple[tuple[bool, ...], ...]:
    """The modules of the QR code of ``text`` (level M, smallest version), rows of
    True for dark, without the quiet zone. Raises :class:`PrintError` when ``text`` does
    not fit version 40."""
    try:
        png = qr.render_png(text, scale=1, border=0)
    except ValueError:
        raise PrintError(
            "内容が多すぎてQRコードに収まりません。システム担当者に連絡してください",
            "the certificate is too large for a QR code; contact the system administrator",
        ) from None
    image = Image.open(io.BytesIO(png)).convert("L")
    pixels = image.tobytes()  # one byte per module, 0 = dark
    size = image.width
    return tuple(tuple(p == 0 for p in pixels[r * size : (r + 1) * size]) for r in range(size))


def default_font() -> Path:
    """IPAex Gothic as shipped in the ``japanize-matplotlib`` distribution (located
    without importing it). Raises :class:`PrintError` when it is not installed."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*FONT_FILE)
        if path.is_file():
            return path
    raise PrintError(
        "印刷用の日本語フォントが見つかりません（japanize-matplotlib をインストールするか"
        "PRINT_FONT を設定してください）",
        "no Japanese font for printing: install japanize-matplotlib or set PRINT_FONT",
    )


# ------------------------------------------------------------------ drawing
def render_pdf(sheet: Sheet, *, font: Path) -> bytes:
    """The A4 portrait PDF of ``sheet``, ``font`` (a TrueType file) embedded as a
    subset. Raises :class:`PrintError` when the font cannot be read."""
    dt = doctypes.get(sheet.doc_type)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creator("Shomei")
    pdf.set_title(dt.title("ja"))
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(auto=True, margin=18)
    check_font(font)
    pdf.add_font(FONT_FAMILY, fname=str(font))
    pdf.add_page()
    _header(pdf, sheet, dt)
    _qr(pdf, sheet.qr_modules, x=pdf.w - pdf.r_margin - QR_SIZE_MM, y=pdf.t_margin)
    pdf.set_y(max(pdf.get_y(), pdf.t_margin + QR_SIZE_MM) + 8)
    _claims(pdf, dt, sheet.claims)
    _note(pdf, sheet)
    return bytes(pdf.output())


def check_font(font: Path) -> None:
    """Returns None for a readable font file; raises :class:`PrintError` otherwise.
    Opened here, not by fpdf2, so a bad file is closed again."""
    try:
        with font.open("rb") as f:
            TTFont(f, lazy=True).close()
    except (OSError, TTLibError) as e:
        raise PrintError(
            "印刷用フォントを読み込めません", f"cannot read the print font: {type(e).__name__}"
        ) from None


def _header(pdf: FPDF, sheet: Sheet, dt: doctypes.DocumentType) -> None:
    width = pdf.epw - QR_SIZE_MM - 6
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.multi_cell(width, 10, dt.title("ja"), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=9)
    pdf.multi_cell(width, 5, dt.title("en"), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    rows = [
        ("発行者", sheet.city_name),
        ("全国地方公共団体コード", sheet.municipality_code),
        ("証明書番号", sheet.public_id),
        ("発行日", moment(sheet.issued_at)),
        ("有効期限", moment(sheet.expires_at)),
        ("ブロックチェーン", _anchor_line(sheet.anchor)),
    ]
    for label, value in rows:
        pdf.set_font(FONT_FAMILY, size=7.5)
        pdf.cell(30, 6, label)
        pdf.set_font(FONT_FAMILY, size=8.5)
        pdf.multi_cell(
            width - 30, 6, value, align="L", new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR
        )


def _anchor_line(state: certificates.AnchorState) -> str:
    if state.state == ANCHORED and state.block_time is not None:
        return f"記録済み（ブロック {state.block}、{moment(state.block_time)}）"
    return "ブロックチェーンへの記録待ち"


def _qr(pdf: FPDF, modules: tuple[tuple[bool, ...], ...], *, x: float, y: float) -> None:
    """Draws the QR code as filled rectangles (one per run of dark modules), so it
    prints sharp at any resolution."""
    module = QR_SIZE_MM / len(modules)
    pdf.set_fill_color(0, 0, 0)
    for row, dark in enumerate(modules):
        col = 0
        while col < len(dark):
            if not dark[col]:
                col += 1
                continue
            start = col
            while col < len(dark) and dark[col]:
                col += 1
            # A hair taller than a module: no white seams between rows when rasterised.
            top = y + row * module
            pdf.rect(x + start * module, top, (col - start) * module, module * 1.02, "F")


def _claims(pdf: FPDF, dt: doctypes.DocumentType, claims: Mapping[str, Any]) -> None:
    pdf.set_font(FONT_FAMILY, size=10)
    with pdf.table(
        col_widths=(32, 88),
        first_row_as_headings=False,
        line_height=6.5,
        text_align="LEFT",
        wrapmode=WrapMode.CHAR,
    ) as table:
        for name in dt.claim_names:
            if name in claims:
                row = table.row()
                row.cell(dt.label(name, "ja"))
                row.cell(display_value(dt, name, claims[name]))


def _note(pdf: FPDF, sheet: Sheet) -> None:
    pdf.ln(6)
    pdf.set_font(FONT_FAMILY, size=9)
    lines: list[tuple[str, WrapMode]] = [
        (
            "【確認の方法】この証明書は電子署名されています。右上のQRコードを検証アプリ（Shomei "
            "verifier）で読み取ると、発行者・記載内容・取り消しの有無・有効期限を確認できます。"
            "記載内容がQRコードの内容と一致することを確かめてください。",
            WrapMode.CHAR,
        ),
        (
            "To verify: scan the QR code with the Shomei verifier; it checks the issuer's "
            "signature, the contents, revocation and expiry.",
            WrapMode.WORD,
        ),
    ]
    if sheet.anchor.state != ANCHORED:
        waiting = (
            "ブロックチェーンへの記録待ちです。記録後に印刷し直すと、QRコードに記録の証明が入ります"
            "（それまでは確認結果に「記録の証明なし」と表示されます）。"
        )
        lines.append((waiting, WrapMode.CHAR))
    lines.append((f"印刷日時 {moment(sheet.printed_at)}", WrapMode.CHAR))
    for line, wrap in lines:
        pdf.multi_cell(0, 5, line, align="L", new_x="LMARGIN", new_y="NEXT", wrapmode=wrap)
        pdf.ln(1)


# ------------------------------------------------------------------ text
def moment(timestamp: float) -> str:
    """A moment on paper: the JST date in 西暦 and 和暦, then the clock time."""
    when = datetime.fromtimestamp(timestamp, JST)
    return f"{format_date(when.date().isoformat())} {when:%H:%M}"


def display_value(dt: doctypes.DocumentType, path: str, value: Any) -> str:
    """A claim value as printed: dates in 西暦 and 和暦, list items on their own lines,
    nested members under their labels, booleans as はい / いいえ."""
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "、".join(value)
        return "\n".join(_item(dt, f"{path}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, dict):
        parts = [
            f"{dt.label(f'{path}.{k}', 'ja')}: {display_value(dt, f'{path}.{k}', v)}"
            for k, v in value.items()
        ]
        return " ".join(parts)
    if isinstance(value, str) and _is_date(value):
        return format_date(value)
    if isinstance(value, bool):  # 18歳以上: はい
        return "はい" if value else "いいえ"
    return str(value)


def _item(dt: doctypes.DocumentType, path: str, value: Any) -> str:
    """A list item on one line; an object's members by value (鈴木 陽向 2018年…)."""
    if isinstance(value, dict):
        return " ".join(display_value(dt, f"{path}.{k}", v) for k, v in value.items())
    return display_value(dt, path, value)


def _is_date(text: str) -> bool:
    try:
        doctypes.parse_date(text)
    except ValueError:
        return False
    return True
