"""Electronic public-works contracts (当事者型) through the clerk's and the contractor's
pages: register, upload, link, the contractor's agreement JWS (signed here as the
browser would), the supervisor's approval, one credential per party that the verifier
accepts with the same PDF and refuses with another; refused uploads, keys, digests and
links; amendment and termination."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from fpdf import FPDF
from issuer_testing import add_user, city_with_staff, csrf_token, signed_in
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from credentials import _jws, sdjwt
from credentials.keys import SigningKey
from credentials.status_list import verify_token
from credentials.trust import TrustList
from issuer import db
from issuer.audit.models import AuditEntry
from issuer.certificates.models import Certificate
from issuer.contracts.models import Contract, ContractSignature
from issuer.keys import service as keys
from verifier.policy import Verifier

ISSUER = "https://nagasaki.example.jp"
PASSPHRASE = "city-key-passphrase"
SETTINGS = keys.IssuerSettings(issuer_id=ISSUER, name="長崎市", municipality_code="422011")
CONTRACT_LINK = re.compile(r"/contracts/([A-Za-z0-9_-]{22})")
SIGN_LINK = re.compile(r"/contract-sign/([A-Za-z0-9_-]{43})")
CONTRACTOR = {
    "name": "株式会社サンプル建設",
    "corporate_number": "7000012050002",
    "representative": "代表取締役 田中 一郎",
    "email": "keiyaku@sample-kensetsu.example.jp",
}
TERMS = {
    "title": "令和8年度 市道桜町1号線舗装補修工事",
    "contract_number": "長崎市契第2026-0345号",
    "amount_jpy": "12,650,000",
    "period_start": "2026-12-10",
    "period_end": "2027-03-19",
    "site": "長崎県長崎市桜町地内",
}


def pdf_bytes(pages: int = 1, text: str = "Contract") -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for i in range(pages):
        doc.add_page()
        doc.cell(text=f"{text} page {i + 1}")
    return bytes(doc.output())


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf_bytes())))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def city_app(make_app: Any, database_url: str, tmp_path: Path) -> Flask:
    return city_with_staff(make_app, tmp_path / "data", SETTINGS, PASSPHRASE, database_url)


@pytest.fixture
def clerk(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "clerk1")


@pytest.fixture
def supervisor(city_app: Flask) -> FlaskClient:
    return signed_in(city_app, "boss")


def register_contractor(client: FlaskClient, **changes: str) -> Any:
    token = csrf_token(client, "/contracts/contractors/new")
    form = {**CONTRACTOR, **changes, "csrf_token": token}
    return client.post("/contracts/contractors/new", data=form)


def contractor_id(app: Flask) -> str:
    with Session(db.engine_of(app)) as session:
        from issuer.contracts.models import Contractor

        return session.scalars(select(Contractor.public_id)).one()


def upload(
    client: FlaskClient, app: Flask, document: bytes, path: str = "/contracts/new", **changes: str
) -> Any:
    token = csrf_token(client, path)
    form: dict[str, Any] = {**TERMS, **changes, "csrf_token": token}
    form.setdefault("contractor", contractor_id(app))
    form["document"] = FileStorage(
        io.BytesIO(document), filename="contract.pdf", content_type="application/pdf"
    )
    # Encoded in memory: the test client would spool a large body to a file it leaves open.
    boundary, body = encode_multipart(MultiDict(form))
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def new_contract(client: FlaskClient, app: Flask, document: bytes) -> str:
    if register_contractor(client).status_code == 400:
        pass  # already registered
    response = upload(client, app, document)
    assert response.status_code == 303, response.get_data(as_text=True)
    match = CONTRACT_LINK.search(response.headers["Location"])
    assert match
    return match.group(1)


def make_link(client: FlaskClient, public_id: str) -> str:
    token = csrf_token(client, f"/contracts/{public_id}")
    page = client.post(f"/contracts/{public_id}/link", data={"csrf_token": token})
    assert page.status_code == 200
    match = SIGN_LINK.search(page.get_data(as_text=True))
    assert match
    return match.group(1)


def expected_of(page: str) -> dict[str, Any]:
    match = re.search(r'data-expected="([^"]+)"', page)
    assert match
    import html

    return json.loads(html.unescape(match.group(1)))


def agreement(
    key: SigningKey, expected: dict[str, Any], *, iat: float | None = None, **changes: Any
) -> str:
    """The JWS the browser makes (contract-sign.js)."""
    header = _jws.encode_header(
        {"alg": "ES256", "typ": "shomei-contract-agreement+jwt", "jwk": key.jwk}
    )
    payload = {**expected, "iat": int(iat if iat is not None else time.time()), **changes}
    return _jws.sign(header, payload, key.private_key)


class Contractor:
    """The contractor's browser: its own client (no session of the city) and its key."""

    def __init__(self, app: Flask, token: str, key: SigningKey | None = None) -> None:
        self.client = app.test_client()
        self.token = token
        self.key = key or SigningKey.generate()

    def page(self) -> Any:
        return self.client.get(f"/contract-sign/{self.token}")

    def csrf(self) -> str:
        return csrf_token(self.client, f"/contract-sign/{self.token}")

    def register(self, key: SigningKey | None = None) -> Any:
        jwk = (key or self.key).jwk
        return self.client.post(
            f"/contract-sign/{self.token}/key",
            data={"jwk": json.dumps(jwk), "csrf_token": self.csrf()},
        )

    def sign(self, jws: str | None = None, **changes: Any) -> Any:
        page = self.page().get_data(as_text=True)
        token = csrf_token(self.client, f"/contract-sign/{self.token}")
        jws = jws or agreement(self.key, expected_of(page), **changes)
        return self.client.post(
            f"/contract-sign/{self.token}",
            data={"agreement": jws, "csrf_token": token},
            headers={"Accept": "application/json"},
        )


def approve(client: FlaskClient, public_id: str) -> Any:
    token = csrf_token(client, f"/contracts/{public_id}")
    return client.post(f"/contracts/{public_id}/approve", data={"csrf_token": token})


def trust_from(app: Flask) -> TrustList:
    meta = app.test_client().get("/.well-known/jwt-vc-issuer").get_json()
    entry = {"name": meta["name"], "municipality_code": meta["municipality_code"]}
    return TrustList.from_json({"issuers": {meta["issuer"]: {**entry, "jwks": meta["jwks"]}}})


def status_of(app: Flask, credential: str) -> int:
    """The credential's status entry, as a verifier reads it from the status endpoint."""
    ref = sdjwt.ParsedSdJwt.parse(credential).unverified_payload["status"]["status_list"]
    response = app.test_client().get(ref["uri"].removeprefix(ISSUER))
    entries = verify_token(
        response.get_data(as_text=True),
        resolve_key=trust_from(app).resolve_key,
        uri=ref["uri"],
        issuer=ISSUER,
        now=time.time(),
    )
    return entries.get(ref["idx"])


def audit_entries(app: Flask) -> list[AuditEntry]:
    with Session(db.engine_of(app)) as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def contract_row(app: Flask, public_id: str) -> Contract:
    with Session(db.engine_of(app)) as session:
        return session.scalars(select(Contract).where(Contract.public_id == public_id)).one()


def signed_contract(app: Flask, clerk: FlaskClient, document: bytes) -> tuple[str, Contractor]:
    public_id = new_contract(clerk, app, document)
    party = Contractor(app, make_link(clerk, public_id))
    assert party.register().status_code == 200
    assert party.sign().get_json() == {"signed": True}
    return public_id, party


# ------------------------------------------------------------------ the main flow
def test_full_flow_two_credentials_that_verify_against_the_pdf(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    document = pdf_bytes(3)
    public_id, party = signed_contract(city_app, clerk, document)
    assert contract_row(city_app, public_id).state == "awaiting_approval"
    assert approve(supervisor, public_id).status_code == 303
    row = contract_row(city_app, public_id)
    assert row.state == "issued" and row.document_sha256 == hashlib.sha256(document).hexdigest()

    verifier = Verifier(trust=trust_from(city_app))
    credentials = {}
    for who in ("orderer", "contractor"):
        response = supervisor.get(f"/contracts/{public_id}/credential-{who}.sd-jwt")
        assert response.status_code == 200
        credentials[who] = response.get_data(as_text=True)
    assert credentials["orderer"] != credentials["contractor"]
    for credential in credentials.values():
        result = verifier.verify(credential, now=time.time(), document=document)
        checks = {c.id: c.status for c in result.checks}
        assert checks["signature"] == "pass" and checks["document"] == "pass", result.to_json()
        assert result.document_type == "contract"
        claims = result.disclosed
        assert claims["document_sha256"] == row.document_sha256
        assert claims["contractor"]["corporate_number"] == "7000012050002"
        assert claims["amount_jpy"] == 12650000
        assert claims["orderer"] == {"name": "長崎市", "municipality_code": "422011"}
        agreements = claims["agreements"]
        assert [a["party"] for a in agreements] == ["orderer", "contractor"]
        assert agreements[1]["key_thumbprint"] == party.key.kid
        tampered = bytearray(document)
        tampered[len(tampered) // 2] ^= 0x01
        bad = verifier.verify(credential, now=time.time(), document=bytes(tampered))
        assert {c.id: c.status for c in bad.checks}["document"] == "fail"
        assert not bad.valid

    # Each signature in the credential is the signature of the stored agreement JWS.
    with Session(db.engine_of(city_app)) as session:
        stored = {s.party: s for s in session.scalars(select(ContractSignature))}
    for entry in agreements:
        assert stored[entry["party"]].jws.endswith("." + entry["signature"])
    page = supervisor.get(f"/contracts/{public_id}").get_data(as_text=True)
    assert "締結済み" in page and "記録待ち" in page

    actions = [e.action for e in audit_entries(city_app)]
    for action in (
        "contractor_registered",
        "contract_uploaded",
        "contract_link_created",
        "contract_signed",
        "contract_approved",
        "contract_issued",
    ):
        assert action in actions
    assert actions.count("contract_issued") == 2


def test_the_pdf_with_its_proof_verifies_alone(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    from verifier import documents

    document = pdf_bytes(2)
    public_id, _party = signed_contract(city_app, clerk, document)
    assert approve(supervisor, public_id).status_code == 303
    assert "証明付きPDF" in supervisor.get(f"/contracts/{public_id}").get_data(as_text=True)
    verifier = Verifier(trust=trust_from(city_app))
    for who in ("orderer", "contractor"):
        response = supervisor.get(f"/contracts/{public_id}/contract-{who}.pdf")
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        carrier = response.get_data()
        assert carrier.startswith(document) and len(carrier) > len(document)
        # What the verifier does with a PDF dropped alone: the credential and both
        # agreement JWSs come out of its embedded files.
        checked = documents.read_pdf(carrier)
        texts = {a.name: a.text() for a in checked.attachments}
        credential = texts["shomei-contract.sd-jwt"]
        assert credential == supervisor.get(
            f"/contracts/{public_id}/credential-{who}.sd-jwt"
        ).get_data(as_text=True)
        tokens = [t for t in texts["shomei-agreements.txt"].split() if t]
        assert len(tokens) == 2
        result = verifier.verify(
            credential,
            now=time.time(),
            document=checked.data,
            agreement_tokens=tokens,
            document_revisions=checked.revisions,
        )
        checks = {c.id: c.status for c in result.checks}
        assert checks["document"] == "pass", result.to_json()
        assert result.valid
        signed = result.to_json()["agreements"]
        assert [a["status"] for a in signed] == ["pass", "pass"], signed
    assert supervisor.get(f"/contracts/{public_id}/contract-nobody.pdf").status_code == 404


def test_once_anchored_the_pdf_with_its_proof_carries_the_anchor(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    from anchor.accounts import ChainAccount
    from anchor.backends import EvmChain
    from anchor.batcher import Batcher, BatchPolicy
    from anchor.registry import add_key, register_issuer
    from verifier import documents
    from verifier.registry_trust import RegistryTrust
    from verifier.service import attached_credential, verify_text

    gov = EvmChain.fresh()
    account = ChainAccount.dev(1)
    register_issuer(
        gov, account.address, issuer_id=ISSUER, name="長崎市", municipality_code="422011"
    )
    chain = gov.using(account)
    city = keys.load(city_app.config["DATA_DIR"], PASSPHRASE)
    add_key(chain, city.key.jwk)
    document = pdf_bytes(1)
    public_id, _party = signed_contract(city_app, clerk, document)
    assert approve(supervisor, public_id).status_code == 303
    batcher = Batcher(
        engine=db.engine_of(city_app),
        chain=chain,
        issuer_address=account.address,
        policy=BatchPolicy(max_age=0),
    )
    batcher.run_until_idle(timeout=30, interval=0)

    carrier = supervisor.get(f"/contracts/{public_id}/contract-contractor.pdf").get_data()
    checked = documents.read_pdf(carrier)
    assert "shomei-contract.sh1" in {a.name for a in checked.attachments}
    text = attached_credential(checked)
    assert text is not None and text.startswith("SH1:")
    trust = RegistryTrust(gov.using(None), ttl=0)
    result = verify_text(
        Verifier(trust=trust, anchors=trust),
        text,
        now=time.time(),
        document=checked.data,
        agreement_tokens=[],  # the credential's own agreements carry their JWSs
        document_revisions=checked.revisions,
    )
    checks = {c.id: c.status for c in result.checks}
    assert checks["anchor"] == "pass" and checks["document"] == "pass", result.to_json()
    assert result.valid and result.anchor is not None


def test_audit_entries_carry_no_personal_values(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    public_id, _ = signed_contract(city_app, clerk, pdf_bytes())
    approve(supervisor, public_id)
    text = json.dumps(
        [[e.actor, e.target, e.details] for e in audit_entries(city_app)], ensure_ascii=False
    )
    for value in (*CONTRACTOR.values(), TERMS["title"], TERMS["site"], "12650000"):
        assert value not in text


def test_nothing_is_issued_before_the_city_approves(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    public_id = new_contract(clerk, city_app, pdf_bytes())
    assert approve(supervisor, public_id).status_code == 303  # not signed yet: refused
    assert contract_row(city_app, public_id).state == "draft"
    party = Contractor(city_app, make_link(clerk, public_id))
    party.register()
    party.sign()
    with Session(db.engine_of(city_app)) as session:
        assert session.scalars(select(Certificate)).all() == []
    assert clerk.get(f"/contracts/{public_id}/credential-contractor.sd-jwt").status_code == 404


def test_a_clerk_cannot_approve(city_app: Flask, clerk: FlaskClient):
    public_id, _ = signed_contract(city_app, clerk, pdf_bytes())
    assert approve(clerk, public_id).status_code == 403
    assert contract_row(city_app, public_id).state == "awaiting_approval"


# ------------------------------------------------------------------ refused agreements
def test_wrong_key_wrong_digest_stale_and_replay_are_refused(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    public_id = new_contract(clerk, city_app, pdf_bytes())
    party = Contractor(city_app, make_link(clerk, public_id))
    assert party.register().status_code == 200
    other = SigningKey.generate()
    assert party.register(other).status_code == 400  # one key per contractor
    page = party.page().get_data(as_text=True)
    expected = expected_of(page)
    refused = [
        agreement(other, expected),  # not the registered key
        agreement(party.key, expected, document_sha256="0" * 64),  # another document
        agreement(party.key, expected, contract_number="長崎市契第9999号"),
        agreement(party.key, expected, party="orderer"),
        agreement(party.key, expected, nonce="x" * 24),
        agreement(party.key, expected, iat=time.time() - 3600),  # stale
    ]
    tampered = agreement(party.key, expected)
    head, body, sig = tampered.split(".")
    refused.append(f"{head}.{body}.{sig[:-2]}AA")
    none_alg = _jws.encode_header({"alg": "none", "typ": "shomei-contract-agreement+jwt"})
    refused.append(f"{none_alg}.{tampered.split('.')[1]}.")
    for jws in refused:
        response = party.sign(jws)
        assert response.status_code == 400, jws
        assert "error" in response.get_json()
    assert contract_row(city_app, public_id).state == "awaiting_contractor"
    reasons = [
        e.details.get("reason") for e in audit_entries(city_app) if e.action == "contract_refused"
    ]
    assert {"other_key", "wrong_key", "wrong_document", "stale", "payload", "bad_signature"} <= set(
        reasons
    )

    good = agreement(party.key, expected)
    token = party.csrf()
    assert party.sign(good).status_code == 200
    replay = party.client.post(
        f"/contract-sign/{party.token}", data={"agreement": good, "csrf_token": token}
    )
    assert replay.status_code == 410  # the link is used up: a replay is refused
    assert party.page().status_code == 410


def test_an_expired_or_unknown_link_is_refused(make_app: Any, tmp_path: Path, sqlite_url: str):
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    app = make_app(sqlite_url, KEY_PASSPHRASE=PASSPHRASE, CONTRACT_LINK_TTL_SECONDS=-1)
    add_user(app, "clerk1", "clerk")
    client = signed_in(app, "clerk1")
    public_id = new_contract(client, app, pdf_bytes())
    party = Contractor(app, make_link(client, public_id))
    assert party.page().status_code == 410
    assert party.client.get(f"/contract-sign/{party.token}/document.pdf").status_code == 410
    assert party.client.get("/contract-sign/" + "A" * 43).status_code == 404
    reasons = [
        e.details.get("reason") for e in audit_entries(app) if e.action == "contract_refused"
    ]
    assert "expired_link" in reasons and "unknown_link" in reasons


def test_a_new_link_replaces_the_old_one(city_app: Flask, clerk: FlaskClient):
    public_id = new_contract(clerk, city_app, pdf_bytes())
    first = make_link(clerk, public_id)
    second = make_link(clerk, public_id)
    assert Contractor(city_app, first).page().status_code == 410
    assert Contractor(city_app, second).page().status_code == 200


def test_the_contractor_sees_the_pdf_inline(city_app: Flask, clerk: FlaskClient):
    document = pdf_bytes(2)
    public_id = new_contract(clerk, city_app, document)
    party = Contractor(city_app, make_link(clerk, public_id))
    page = party.page()
    assert page.status_code == 200
    assert "contract-sign.js" in page.get_data(as_text=True)
    assert "<script>" not in page.get_data(as_text=True)
    response = party.client.get(f"/contract-sign/{party.token}/document.pdf")
    assert response.data == document
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


# ------------------------------------------------------------------ uploads
@pytest.mark.parametrize(
    ("document", "message"),
    [
        (encrypted_pdf(), "暗号化"),
        (b"PK\x03\x04 not a pdf at all", "PDFファイルではない"),
        (b"%PDF-1.7\n broken", "PDFファイルではない"),
        (b"", "契約書PDFを選んでください"),
    ],
)
def test_bad_uploads_are_refused_with_a_message(
    city_app: Flask, clerk: FlaskClient, document: bytes, message: str
):
    register_contractor(clerk)
    response = upload(clerk, city_app, document)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with Session(db.engine_of(city_app)) as session:
        assert session.scalars(select(Contract)).all() == []


def test_size_and_page_limits(make_app: Any, tmp_path: Path, sqlite_url: str):
    keys.init(tmp_path / "data", SETTINGS, passphrase=PASSPHRASE)
    app = make_app(
        sqlite_url, KEY_PASSPHRASE=PASSPHRASE, CONTRACT_MAX_PDF_PAGES=3, CONTRACT_MAX_PDF_BYTES=4000
    )
    add_user(app, "clerk1", "clerk")
    client = signed_in(app, "clerk1")
    register_contractor(client)
    response = upload(client, app, pdf_bytes(4))
    assert response.status_code == 400 and "ページ数が多すぎます" in response.get_data(as_text=True)
    big = pdf_bytes(1) + b"%" + b"0" * 4000
    response = upload(client, app, big)
    assert response.status_code == 400 and "大きすぎます" in response.get_data(as_text=True)


def test_a_pdf_of_several_mebibytes_is_accepted(city_app: Flask, clerk: FlaskClient):
    import os

    from PIL import Image

    doc = FPDF()
    doc.add_page()
    noise = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))  # incompressible
    doc.image(noise, x=10, y=10, w=100)
    document = bytes(doc.output())
    assert len(document) > 2 * 1024 * 1024
    public_id = new_contract(clerk, city_app, document)
    assert clerk.get(f"/contracts/{public_id}/document.pdf").data == document
    other_form = {"name": "y" * (2 * 1024 * 1024)}
    assert clerk.post("/contracts/contractors/new", data=other_form).status_code == 413


def test_field_errors_and_the_corporate_number_check_digit(city_app: Flask, clerk: FlaskClient):
    response = register_contractor(clerk, corporate_number="8000012050002", email="nope")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "法人番号" in text and "メールアドレスが正しくありません" in text
    assert register_contractor(clerk).status_code == 303
    response = upload(clerk, city_app, pdf_bytes(), amount_jpy="十万円", period_end="2026-01-01")
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "金額は半角数字" in text and 'id="period_end-error"' in text


# ------------------------------------------------------------------ amendment and termination
def test_amendment_signed_again_supersedes_and_termination_revokes(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    original = pdf_bytes(1, "Original")
    public_id, party = signed_contract(city_app, clerk, original)
    approve(supervisor, public_id)
    first = supervisor.get(f"/contracts/{public_id}/credential-contractor.sd-jwt").get_data(
        as_text=True
    )
    same = upload(clerk, city_app, original, path=f"/contracts/{public_id}/amend")
    assert same.status_code == 400  # an amendment needs a new PDF

    amended_pdf = pdf_bytes(1, "Amended")
    response = upload(
        clerk, city_app, amended_pdf, path=f"/contracts/{public_id}/amend", amount_jpy="13000000"
    )
    assert response.status_code == 303
    amended_id = CONTRACT_LINK.search(response.headers["Location"]).group(1)
    amended = contract_row(city_app, amended_id)
    assert amended.version == 2 and amended.previous_id == contract_row(city_app, public_id).id
    assert contract_row(city_app, public_id).state == "issued"  # until the amendment is issued

    again = Contractor(city_app, make_link(clerk, amended_id), key=party.key)
    assert again.register().status_code == 200  # the same key: nothing to change
    assert again.sign().status_code == 200
    assert approve(supervisor, amended_id).status_code == 303
    assert contract_row(city_app, public_id).state == "superseded"

    verifier = Verifier(trust=trust_from(city_app))
    assert status_of(city_app, first) == 1  # revoked: superseded by the amendment
    newer = supervisor.get(f"/contracts/{amended_id}/credential-orderer.sd-jwt").get_data(
        as_text=True
    )
    result = verifier.verify(newer, now=time.time(), document=amended_pdf)
    assert result.valid and result.disclosed["amount_jpy"] == 13000000
    assert status_of(city_app, newer) == 0

    token = csrf_token(supervisor, f"/contracts/{amended_id}")
    supervisor.post(
        f"/contracts/{amended_id}/terminate", data={"csrf_token": token, "reason": "工事中止"}
    )
    assert contract_row(city_app, amended_id).state == "terminated"
    assert status_of(city_app, newer) == 1
    assert "取り消し済み" in supervisor.get(f"/contracts/{amended_id}").get_data(as_text=True)
    actions = [e.action for e in audit_entries(city_app)]
    assert "contract_amended" in actions and "contract_terminated" in actions


def test_a_clerk_cannot_terminate(city_app: Flask, clerk: FlaskClient):
    public_id = new_contract(clerk, city_app, pdf_bytes())
    token = csrf_token(clerk, f"/contracts/{public_id}")
    response = clerk.post(
        f"/contracts/{public_id}/terminate", data={"csrf_token": token, "reason": "x"}
    )
    assert response.status_code == 403


def test_pages_and_navigation(city_app: Flask, clerk: FlaskClient):
    assert "/contracts/" in clerk.get("/").get_data(as_text=True)
    assert "まだ契約はありません" in clerk.get("/contracts/").get_data(as_text=True)
    public_id = new_contract(clerk, city_app, pdf_bytes())
    listing = clerk.get("/contracts/").get_data(as_text=True)
    assert TERMS["title"] in listing and "下書き" in listing
    assert clerk.get(f"/contracts/{public_id}/document.pdf").headers["Content-Type"] == (
        "application/pdf"
    )
    assert clerk.get("/contracts/nope").status_code == 404
    assert city_app.test_client().get("/contracts/").status_code == 302  # sign in first


def test_each_copy_can_be_sent_to_a_wallet(
    city_app: Flask, clerk: FlaskClient, supervisor: FlaskClient
):
    public_id, _ = signed_contract(city_app, clerk, pdf_bytes())
    approve(supervisor, public_id)
    page = supervisor.get(f"/contracts/{public_id}").get_data(as_text=True)
    cert_ids = re.findall(r"/certificates/([A-Za-z0-9_-]{22})", page)
    assert len(set(cert_ids)) == 2
    for cert_id in set(cert_ids):
        shown = clerk.get(f"/certificates/{cert_id}")
        assert shown.status_code == 200 and CONTRACTOR["name"] in shown.get_data(as_text=True)
        token = csrf_token(clerk, f"/certificates/{cert_id}")
        offer = clerk.post(f"/certificates/{cert_id}/offer", data={"csrf_token": token})
        assert offer.status_code in (200, 303)
        followed = clerk.get(offer.headers["Location"]) if offer.status_code == 303 else offer
        assert "openid-credential-offer://" in followed.get_data(as_text=True)
        printed = clerk.get(f"/certificates/{cert_id}/print.pdf")
        assert printed.status_code == 200 and printed.data.startswith(b"%PDF-")
