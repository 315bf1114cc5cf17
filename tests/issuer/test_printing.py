"""The print view: a certificate as an A4 PDF whose QR code verifies on paper too.

The PDF is read back as a verifier would meet it: parsed (fonts embedded, Japanese text
extractable), its page rendered to pixels, the QR code decoded from the pixels and the
payload verified against the city's published keys, and against a real (in-process)
chain once the batcher has anchored the certificate.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from issuer_testing import city_with_staff, signed_in
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.batcher import Batcher, BatchPolicy
from anchor.registry import add_key, register_issuer
from credentials import doctypes
from credentials.trust import TrustList
from issuer import db
from issuer.accounts.models import User
from issuer.audit.models import AuditEntry
from issuer.certificates import printing
from issuer.certificates import service as certificates
from issuer.keys import service as keys
from verifier import inputs
from verifier.policy import VerificationResult, Verifier
from verifier.registry_trust import RegistryTrust

ISSUER = "https://iizuka.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="飯塚市", municipality_code="402052")
A4_POINTS = (595.28, 841.89)
FULL = {
    **doctypes.sample("juminhyo"),
    "relationship_to_head": "本人",
    "registered_domicile": "福岡県飯塚市新立岩1番",
    "domicile_head": "山田 太郎",
}


@pytest.fixture
def city_app(make_app: Any, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, PASSPHRASE)


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "clerk1")


def city_of(app: Flask) -> keys.City:
    return keys.load(app.config["DATA_DIR"], PASSPHRASE)


def user(session: Session, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    assert found is not None
    return found


def issue_juminhyo(app: Flask, claims: dict[str, Any] = FULL) -> str:
    """A 住民票 with every field (household and domicile asked for); its public id."""
    with Session(db.engine_of(app)) as session:
        cert = certificates.issue_juminhyo(
            session,
            claims,
            city=city_of(app),
            clerk=user(session, "clerk1"),
            now=time.time(),
            include_household=True,
            include_domicile=True,
        )
        return cert.public_id


def issue_partnership(app: Flask) -> str:
    with Session(db.engine_of(app)) as session:
        first, _ = certificates.issue_partnership(
            session,
            doctypes.sample("partnership"),
            city=city_of(app),
            clerk=user(session, "clerk1"),
            now=time.time(),
        )
        return first.public_id


def fetch_pdf(client: FlaskClient, public_id: str) -> bytes:
    response = client.get(f"/certificates/{public_id}/print.pdf")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('inline; filename="shomei-')
    assert disposition.endswith(f'-{public_id}.pdf"')
    return response.get_data()


def scan(pdf: bytes) -> inputs.Presentation:
    """The QR code on the PDF's first page, read from pixels (150 dpi) as a verifier
    reads a photo or a scan."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=150 / 72).to_pil()
    finally:
        document.close()
    png = io.BytesIO()
    image.save(png, format="PNG")
    return inputs.from_bytes(png.getvalue())


def trust_from(app: Flask) -> TrustList:
    meta = app.test_client().get("/.well-known/jwt-vc-issuer").get_json()
    entry = {"name": meta["name"], "municipality_code": meta["municipality_code"]}
    return TrustList.from_json({"issuers": {meta["issuer"]: {**entry, "jwks": meta["jwks"]}}})


def verify(verifier: Verifier, found: inputs.Presentation) -> VerificationResult:
    result = verifier.verify(found.text, now=time.time(), evidence=found.evidence)
    failed = [c for c in result.checks if c.status == "fail"]
    assert not failed, failed
    assert result.verdict == "valid"
    return result


def audit_entries(app: Flask) -> list[AuditEntry]:
    with Session(db.engine_of(app)) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def embedded_fonts(reader: PdfReader) -> list[Any]:
    """The font descriptors of the first page's fonts (Type0 through their CIDFont)."""
    descriptors = []
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        font = font.get_object()
        for descendant in font.get("/DescendantFonts", [font]):
            descriptors.append(descendant.get_object()["/FontDescriptor"].get_object())
    return descriptors


# ------------------------------------------------------------------ the PDF
def test_a_clerk_prints_a_juminhyo_whose_qr_verifies(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    pdf = fetch_pdf(clerk, public_id)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")

    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4_POINTS)
    descriptors = embedded_fonts(reader)
    assert descriptors and all("/FontFile2" in d for d in descriptors)  # embedded TrueType
    assert all("+" in str(d["/FontName"]) for d in descriptors)  # a subset (ABCDEF+Name)
    text = page.extract_text()
    for expected in (
        "住民票の写し",
        "飯塚市",
        "402052",
        public_id,
        "山田",
        "福岡県飯塚市立岩1234番地5",
        "1980年4月1日（昭和55年4月1日）",
        "2019年5月1日（令和元年5月1日）",
        "本籍",
        "年齢到達",
        "18歳以上: はい 20歳以上: はい",  # computed at issuance: born 1980
        "ブロックチェーンへの記録待ち",
    ):
        assert expected in text, expected

    found = scan(pdf)
    assert found.source == "embedded"
    assert found.evidence is None  # not anchored yet
    result = verify(Verifier(trust=trust_from(city_app)), found)
    # Every claim of the certificate, as issued, with the 年齢到達 the issuer computed.
    assert result.disclosed == {**FULL, "age_equal_or_over": {"18": True, "20": True}}
    assert result.issuer is not None and result.issuer.municipality_code == "402052"


def test_a_partnership_prints_with_its_title_and_children(city_app: Flask, clerk: FlaskClient):
    public_id = issue_partnership(city_app)
    pdf = fetch_pdf(clerk, public_id)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "パートナーシップ宣誓書受領証" in text
    assert "鈴木 陽向" in text and "402052、401307、401005" in text
    result = verify(Verifier(trust=trust_from(city_app)), scan(pdf))
    assert result.disclosed == doctypes.sample("partnership")


def test_printing_is_audited_without_personal_values(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    fetch_pdf(clerk, public_id)
    viewed, printed = audit_entries(city_app)[-2:]
    assert (viewed.action, printed.action) == ("certificate_viewed", "certificate_printed")
    for entry in (viewed, printed):
        assert entry.actor == "clerk1" and entry.target == f"certificate:{public_id}"
        assert set(entry.details) == {"vct", "status_index", "page"}
        assert entry.details["page"] == "print"
        assert "山田" not in str(entry.details)


def test_the_certificate_page_links_to_the_pdf(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    html = clerk.get(f"/certificates/{public_id}").get_data(as_text=True)
    assert f'href="/certificates/{public_id}/print.pdf"' in html and "印刷用PDF" in html
    assert "記録後に印刷" in html  # not anchored yet: suggests printing later


# ------------------------------------------------------------------ refusals
def test_a_revoked_certificate_is_not_printed(city_app: Flask, clerk: FlaskClient):
    public_id = issue_juminhyo(city_app)
    with Session(db.engine_of(city_app)) as session:
        certificates.revoke(
            session,
            public_id,
            city=city_of(city_app),
            supervisor=user(session, "boss"),
            reason="転出のため",
            now=time.time(),
        )
    before = len(audit_entries(city_app))
    response = clerk.get(f"/certificates/{public_id}/print.pdf")
    assert response.status_code == 409
    assert response.content_type.startswith("text/html")
    assert "取り消し済み" in response.get_data(as_text=True)
    assert len(audit_entries(city_app)) == before  # nothing unsealed, nothing printed
    page = clerk.get(f"/certificates/{public_id}").get_data(as_text=True)
    assert "print.pdf" not in page


def test_an_expired_certificate_is_not_printed(city_app: Flask):
    public_id = issue_juminhyo(city_app)
    with Session(db.engine_of(city_app)) as session:
        later = certificates.find(session, public_id).expires_at
        with pytest.raises(printing.NotPrintable, match="有効期限"):
            printing.print_certificate(
                session, public_id, city=city_of(city_app), clerk=user(session, "clerk1"), now=later
            )


def test_signed_out_unknown_and_unreadable_font(city_app: Flask, make_app: Any, tmp_path: Path):
    public_id = issue_juminhyo(city_app)
    response = city_app.test_client().get(f"/certificates/{public_id}/print.pdf")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    clerk = signed_in(city_app, "clerk1")
    assert clerk.get("/certificates/AAAAAAAAAAAAAAAAAAAAAA/print.pdf").status_code == 404

    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    app = make_app(KEY_PASSPHRASE=PASSPHRASE, PRINT_FONT=str(broken))
    client = signed_in(app, "clerk1")
    before = len(audit_entries(app))
    response = client.get(f"/certificates/{public_id}/print.pdf")
    assert response.status_code == 503
    assert len(audit_entries(app)) == before  # nothing was unsealed
    html = response.get_data(as_text=True)
    assert "印刷用フォントを読み込めません" in html and "Traceback" not in html


# ------------------------------------------------------------------ anchored
def test_once_anchored_the_qr_carries_the_evidence(city_app: Flask, clerk: FlaskClient):
    gov = EvmChain.fresh()
    account = ChainAccount.dev(1)
    register_issuer(
        gov, account.address, issuer_id=ISSUER, name="飯塚市", municipality_code="402052"
    )
    chain = gov.using(account)
    add_key(chain, city_of(city_app).key.jwk)
    trust = RegistryTrust(gov.using(None), ttl=0)
    verifier = Verifier(trust=trust, anchors=trust)

    public_id = issue_juminhyo(city_app)
    early = verify(verifier, scan(fetch_pdf(clerk, public_id)))
    assert early.check("anchor").status == "warn"  # printed before anchoring

    batcher = Batcher(
        engine=db.engine_of(city_app),
        chain=chain,
        issuer_address=account.address,
        policy=BatchPolicy(max_age=0),
    )
    batcher.run_until_idle(timeout=30, interval=0)
    pdf = fetch_pdf(clerk, public_id)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "記録済み" in text and "記録待ち" not in text
    found = scan(pdf)
    assert found.evidence is not None
    result = verify(verifier, found)
    assert result.check("anchor").status == "pass"
    assert result.anchor is not None
    assert result.disclosed == {**FULL, "age_equal_or_over": {"18": True, "20": True}}
    page = clerk.get(f"/certificates/{public_id}").get_data(as_text=True)
    assert "print.pdf" in page and "記録後に印刷" not in page


# ------------------------------------------------------------------ pure helpers
@pytest.mark.parametrize(
    ("iso", "printed"),
    [
        ("1912-07-29", "1912年7月29日（明治45年7月29日）"),
        ("1912-07-30", "1912年7月30日（大正元年7月30日）"),
        ("1926-12-24", "1926年12月24日（大正15年12月24日）"),
        ("1926-12-25", "1926年12月25日（昭和元年12月25日）"),
        ("1989-01-07", "1989年1月7日（昭和64年1月7日）"),
        ("1989-01-08", "1989年1月8日（平成元年1月8日）"),
        ("2019-04-30", "2019年4月30日（平成31年4月30日）"),
        ("2019-05-01", "2019年5月1日（令和元年5月1日）"),
        ("2025-10-06", "2025年10月6日（令和7年10月6日）"),
    ],
)
def test_dates_print_in_both_calendars(iso: str, printed: str):
    assert printing.display_value(doctypes.get("juminhyo"), "birthdate", iso) == printed


def test_moments_are_in_jst_and_other_values_unchanged():
    # 2019-04-30T15:00:00Z is already 2019-05-01 in Japan: the first day of 令和.
    assert printing.moment(1_556_636_400) == "2019年5月1日（令和元年5月1日） 00:00"
    dt = doctypes.get("partnership")
    assert printing.display_value(dt, "certificate_number", "飯塚市第2025-0012号") == (
        "飯塚市第2025-0012号"
    )
    children = [{"family_name": "鈴木", "given_name": "陽向", "birthdate": "2018-08-20"}]
    assert printing.display_value(dt, "children", children) == (
        "鈴木 陽向 2018年8月20日（平成30年8月20日）"
    )


def test_a_payload_too_large_for_a_qr_code_is_a_clear_error():
    with pytest.raises(printing.PrintError, match="QRコードに収まりません"):
        printing.qr_modules("SH1:" + "A" * 5000)
    modules = printing.qr_modules("SH1:ABC")
    assert len(modules) == 21 and all(len(row) == 21 for row in modules)  # version 1


def test_the_default_font_comes_from_an_installed_package():
    font = printing.default_font()
    assert font.name == "ipaexg.ttf" and font.stat().st_size > 1_000_000
