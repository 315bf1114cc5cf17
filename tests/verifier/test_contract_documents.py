"""A contract PDF checked against its credential: 原本と一致 / 不一致, the parties, the
amount, the period and the parties' signatures over the digest, on the pages and in
the API; unsafe PDFs are refused."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from issuer.contracts import agreements as issuer_agreements
from verifier import documents
from verifier.agreements import check_agreements
from verifier.app import create_app
from verifier.policy import Verifier

ISS = "https://city.example"
NOW = int(time.time())


def make_pdf(pages: int = 1, text: str = "Contract 2025-0345") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(False)  # the text stays visible: one byte of it is changed below
    pdf.set_font("helvetica", size=12)
    for i in range(pages):
        pdf.add_page()
        pdf.cell(text=f"{text} page {i + 1}")
    return bytes(pdf.output())


PDF = make_pdf()
DIGEST = hashlib.sha256(PDF).hexdigest()


def agreement(
    key: SigningKey, party: str, *, digest: str = DIGEST, at: int = NOW - 3600
) -> issuer_agreements.Agreement:
    expected = issuer_agreements.Expected(
        audience=ISS,
        contract_number=doctypes.sample("contract")["contract_number"],
        document_sha256=digest,
        party=party,
        nonce="n-" + party,
    )
    return issuer_agreements.sign(key, expected, now=at)


@pytest.fixture(scope="module")
def contractor_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def signed(issuer_key, contractor_key) -> list[issuer_agreements.Agreement]:
    return [agreement(issuer_key, "orderer"), agreement(contractor_key, "contractor")]


def credential(
    key: SigningKey, agreements: list[issuer_agreements.Agreement], *, with_jws: bool = True
) -> str:
    """A contract credential; ``with_jws=False`` leaves the agreements' JWSs out (as in
    credentials issued before entries carried them)."""
    dt = doctypes.get("contract")
    claims = doctypes.sample("contract")
    claims["document_sha256"] = DIGEST
    entries = [a.claim() for a in agreements]
    claims["agreements"] = entries if with_jws else [_no_jws(e) for e in entries]
    claims = doctypes.validate_claims("contract", claims)
    return sdjwt.issue(
        claims,
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=None,
        always_plain=dt.never_disclosable,
    ).sd_jwt


def attach(pdf: bytes, files: dict[str, bytes]) -> bytes:
    """The PDF with embedded files added in an incremental update (the original bytes
    stay its first part)."""
    from pypdf import PdfWriter

    writer = PdfWriter(io.BytesIO(pdf), incremental=True)
    for name, data in files.items():
        writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def trust(issuer_key) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISS, name="長崎市", municipality_code="422011", jwks=[issuer_key.jwk])
    )


@pytest.fixture
def client(trust) -> FlaskClient:
    app = create_app({"VERIFIER": Verifier(trust=trust), "TESTING": True})
    return app.test_client()


def post(client: FlaskClient, path: str = "/api/verify", **parts: bytes) -> Any:
    names = {"file": "contract.sd-jwt", "document": "contract.pdf"}
    data = {k: (io.BytesIO(v), names[k]) for k, v in parts.items()}
    return client.post(path, data=data, content_type="multipart/form-data")


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in doc["checks"]}


def check(doc: dict[str, Any], check_id: str) -> dict[str, str]:
    return next(c for c in doc["checks"] if c["id"] == check_id)


# ------------------------------------------------------------------------ the API


def _no_jws(entry: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in entry.items() if k != "jws"}


def test_the_credential_alone_carries_checkable_agreements(client, issuer_key, signed) -> None:
    doc = post(client, file=credential(issuer_key, signed).encode(), document=PDF).get_json()
    assert doc["verdict"] == "valid" and statuses(doc)["document"] == "pass"
    assert [a["status"] for a in doc["agreements"]] == ["pass", "pass"]


def test_pdf_and_credential_match(client, issuer_key, signed) -> None:
    cred = credential(issuer_key, signed, with_jws=False)
    doc = post(client, file=cred.encode(), document=PDF).get_json()
    assert doc["verdict"] == "valid" and doc["document_type"] == "contract"
    assert statuses(doc)["document"] == "pass"
    assert check(doc, "document")["message_ja"].startswith("原本と一致します")
    assert doc["document"] == {"sha256": DIGEST, "matches": True, "original_bytes": len(PDF)}
    assert doc["disclosed"]["contractor"]["corporate_number"] == "7310001234567"
    # Without the agreement JWSs the signatures themselves cannot be checked: warn.
    assert [a["party"] for a in doc["agreements"]] == ["orderer", "contractor"]
    assert [a["status"] for a in doc["agreements"]] == ["warn", "warn"]
    assert "登録鍵" in doc["agreements"][0]["message_ja"]


def test_one_changed_byte_is_a_mismatch(client, issuer_key, signed) -> None:
    changed = bytearray(PDF)
    at = PDF.index(b"Contract")
    changed[at] ^= 0x20
    doc = post(
        client, file=credential(issuer_key, signed).encode(), document=bytes(changed)
    ).get_json()
    assert doc["verdict"] == "invalid"
    assert statuses(doc)["document"] == "fail"
    assert "原本と一致しません" in check(doc, "document")["message_ja"]
    assert "does not match the original" in check(doc, "document")["message_en"]
    assert doc["document"]["matches"] is False


def test_pdf_carrying_its_credential_and_agreements_alone(client, issuer_key, signed) -> None:
    carrier = attach(
        PDF,
        {
            "shomei-contract.sd-jwt": credential(issuer_key, signed).encode(),
            "orderer.agreement.jwt": signed[0].jws.encode(),
            "contractor.agreement.jwt": signed[1].jws.encode(),
        },
    )
    assert carrier.startswith(PDF)
    doc = post(client, document=carrier).get_json()
    assert doc["verdict"] == "valid", doc["checks"]
    assert doc["document"]["matches"] is True and doc["document"]["original_bytes"] == len(PDF)
    assert [a["status"] for a in doc["agreements"]] == ["pass", "pass"]
    assert "両当事者の署名を確認しました" in check(doc, "document")["message_ja"]
    # The same PDF dropped as the credential file works as well.
    assert post(client, file=carrier).get_json()["verdict"] == "valid"


def test_attachment_added_with_a_changed_page_is_no_match(client, issuer_key, signed) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, NumberObject

    writer = PdfWriter(io.BytesIO(PDF), incremental=True)
    writer.add_attachment("shomei-contract.sd-jwt", credential(issuer_key, signed).encode())
    writer.pages[0][NameObject("/Rotate")] = NumberObject(90)
    out = io.BytesIO()
    writer.write(out)
    doc = post(client, document=out.getvalue()).get_json()
    assert doc["verdict"] == "invalid" and doc["document"]["matches"] is False


def test_wrong_key_agreement_is_invalid(client, issuer_key, contractor_key, attacker_key) -> None:
    forged = agreement(attacker_key, "contractor")
    entry = forged.claim() | {"key_thumbprint": contractor_key.kid}
    orderer = agreement(issuer_key, "orderer")
    # The credential names the contractor's registered key, the JWS another one.
    cred = _with_contractor_entry(issuer_key, orderer, entry)
    carrier = attach(PDF, {"c.sd-jwt": cred.encode(), "a.jwt": forged.jws.encode()})
    doc = post(client, document=carrier).get_json()
    assert doc["verdict"] == "invalid"
    contractor = doc["agreements"][1]
    assert contractor["status"] == "fail"
    assert "別の鍵で署名されています" in contractor["message_ja"]
    assert "受注者の署名を確認できません" in check(doc, "document")["message_ja"]
    assert "signed with another key" in check(doc, "document")["message_en"]


def _with_contractor_entry(
    key: SigningKey, orderer: issuer_agreements.Agreement, entry: dict[str, str]
) -> str:
    dt = doctypes.get("contract")
    claims = doctypes.sample("contract")
    claims["document_sha256"] = DIGEST
    claims["agreements"] = [orderer.claim(), entry]
    return sdjwt.issue(
        claims,
        key=key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=None,
        always_plain=dt.never_disclosable,
    ).sd_jwt


def test_agreement_over_another_digest_fails(issuer_key, contractor_key) -> None:
    other = agreement(contractor_key, "contractor", digest="0" * 64)
    orderer = agreement(issuer_key, "orderer")
    claims = {
        "contract_number": doctypes.sample("contract")["contract_number"],
        "document_sha256": DIGEST,
        "agreements": [orderer.claim(), other.claim()],
    }
    checks = check_agreements(
        claims,
        issuer=ISS,
        tokens=[orderer.jws, other.jws],
        issuer_key=lambda kid: issuer_key.jwk if kid == issuer_key.kid else None,
    )
    assert checks is not None
    assert [c.status for c in checks] == ["pass", "fail"]
    assert "document_sha256" in checks[1].en


def test_orderer_signed_with_a_key_not_the_issuers(client, issuer_key, attacker_key) -> None:
    orderer, contractor = agreement(attacker_key, "orderer"), agreement(issuer_key, "contractor")
    cred = credential(issuer_key, [orderer, contractor])
    carrier = attach(PDF, {"c.sd-jwt": cred.encode(), "o.jwt": orderer.jws.encode()})
    doc = post(client, document=carrier).get_json()
    assert doc["verdict"] == "invalid"
    assert "発行者（市）の登録鍵ではありません" in doc["agreements"][0]["message_ja"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"hello, not a PDF", 400, "not_a_pdf"),
        (b"%PDF-1.7\n garbage that no reader can parse", 400, "not_a_pdf"),
        ("encrypted", 400, "encrypted_pdf"),
        ("pages", 400, "too_many_pages"),
        ("large", 413, "too_large"),
    ],
)
def test_unusable_pdfs_are_refused(client, issuer_key, signed, data, status, code) -> None:
    if data == "encrypted":
        from pypdf import PdfWriter

        writer = PdfWriter(clone_from=io.BytesIO(PDF))
        writer.encrypt("secret", algorithm="AES-128")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    elif data == "pages":
        data = make_pdf(pages=documents.MAX_PAGES + 1)
    elif data == "large":
        # A small limit: the test client would spool a 10 MiB body to an unclosed file.
        limit = 200 * 1024
        client.application.config["DOCUMENT_MAX_BYTES"] = limit
        data = PDF + b"\n%" + b"x" * limit
    r = post(client, file=credential(issuer_key, signed).encode(), document=data)
    assert r.status_code == status
    error = r.get_json()["error"]
    assert error["code"] == code and error["message"]["ja"] and error["message"]["en"]


def test_pdf_alone_without_a_credential_is_400(client) -> None:
    r = post(client, document=PDF)
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "no_attached_credential"


def test_oversized_credential_attachment_is_413(client) -> None:
    big = attach(PDF, {"shomei-contract.sd-jwt": b"e" * (sdjwt.DEFAULT_MAX_SIZE + 1)})
    r = post(client, document=big)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "attachment_too_large"


def test_the_credential_file_keeps_the_app_limit(trust, issuer_key, signed) -> None:
    app = create_app(
        {"VERIFIER": Verifier(trust=trust), "TESTING": True, "MAX_CONTENT_LENGTH": 2048}
    )
    client = app.test_client()
    r = post(client, file=b"x" * 4000, document=PDF)
    assert r.status_code == 413
    # ...while a PDF larger than MAX_CONTENT_LENGTH is accepted beside a small file.
    r = post(client, file=b"SH1:", document=make_pdf(pages=3) + b"%" + b"x" * 4000)
    assert r.status_code in (200, 400) and r.status_code != 413


def test_json_body_keeps_the_app_limit(trust) -> None:
    app = create_app(
        {"VERIFIER": Verifier(trust=trust), "TESTING": True, "MAX_CONTENT_LENGTH": 1024}
    )
    r = app.test_client().post("/api/verify", json={"presentation": "x" * 5000})
    assert r.status_code == 413


# ------------------------------------------------------------------------ the pages


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_result_page_shows_the_contract(client, issuer_key, signed, lang) -> None:
    path = "/verify?lang=en" if lang == "en" else "/verify"
    r = post(client, path, file=credential(issuer_key, signed).encode(), document=PDF)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="original"' in html and 'id="contract"' in html
    assert "株式会社サンプル建設" in html and "7310001234567" in html and "長崎市長" in html
    if lang == "ja":
        assert "原本と一致" in html and "原本と不一致" not in html
        assert "¥12,650,000（税込）" in html
        assert "2025年10月20日（令和7年10月20日） 〜 2026年3月19日（令和8年3月19日）" in html
        assert "発注者" in html and "受注者" in html and "法人番号" in html
        assert "2025年10月10日（令和7年10月10日）" in html
    else:
        assert "Matches the original" in html
        assert "¥12,650,000 (tax included)" in html
        assert "Construction period" in html and "Corporate number" in html
    assert html.count('data-party="') == 2


def test_result_page_mismatch(client, issuer_key, signed) -> None:
    html = post(
        client, "/verify", file=credential(issuer_key, signed).encode(), document=PDF + b"\n"
    ).get_data(as_text=True)
    assert "原本と不一致" in html and "無効" in html


def test_result_page_pdf_alone_with_signatures(client, issuer_key, signed) -> None:
    carrier = attach(
        PDF,
        {"shomei-contract.sd-jwt": credential(issuer_key, signed).encode()}
        | {f"{a.party}.jwt": a.jws.encode() for a in signed},
    )
    html = post(client, "/verify", document=carrier).get_data(as_text=True)
    assert "原本と一致" in html and html.count('class="check pass" data-party') == 2


def test_scan_page_has_the_document_input(client) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'name="document"' in html and "契約書PDF（原本の確認）" in html
    assert "Contract PDF (check the original)" in client.get("/?lang=en").get_data(as_text=True)


def test_bad_pdf_on_the_page_is_a_400_page(client, issuer_key, signed) -> None:
    r = post(client, "/verify", file=credential(issuer_key, signed).encode(), document=b"nope")
    assert r.status_code == 400 and "PDFファイルではない" in r.get_data(as_text=True)


def test_read_pdf_limits_without_http() -> None:
    with pytest.raises(documents.DocumentError, match="大きすぎます") as e:
        documents.read_pdf(b"%PDF-" + b"x" * documents.MAX_BYTES)
    assert e.value.status == 413
    checked = documents.read_pdf(PDF)
    assert checked.sha256 == DIGEST and checked.pages == 1 and checked.attachments == ()


def test_cli_verify_pdf(tmp_path, issuer_key, signed) -> None:
    import json

    from click.testing import CliRunner

    from shomei_cli import main

    trust = TrustList.document(
        ISS, name="長崎市", municipality_code="422011", jwks=[issuer_key.jwk]
    )
    trust_file = tmp_path / "trust.json"
    trust_file.write_text(json.dumps(trust))
    (tmp_path / "c.sd-jwt").write_text(credential(issuer_key, signed))
    carrier = attach(PDF, {f"{a.party}.jwt": a.jws.encode() for a in signed})
    (tmp_path / "c.pdf").write_bytes(carrier)
    (tmp_path / "bad.pdf").write_bytes(PDF + b"\n")
    (tmp_path / "no.pdf").write_bytes(b"hello")
    base = ["verify", str(tmp_path / "c.sd-jwt"), "--offline", "--trust", str(trust_file)]
    ok = CliRunner().invoke(main, [*base, "--pdf", str(tmp_path / "c.pdf"), "--json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["document"]["matches"] is True
    assert [a["status"] for a in doc["agreements"]] == ["pass", "pass"]
    bad = CliRunner().invoke(main, [*base, "--pdf", str(tmp_path / "bad.pdf")])
    assert bad.exit_code == 1 and "原本と一致しません" in bad.output
    unusable = CliRunner().invoke(main, [*base, "--pdf", str(tmp_path / "no.pdf")])
    assert unusable.exit_code == 2
