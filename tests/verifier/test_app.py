"""The verifier web app and API through Flask's test client: the same result document
as ``shomei verify --json``, the pages in ja and en, errors, limits and headers."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from anchor import evidence as anchor_evidence
from anchor import merkle
from anchor.chain import AnchorRecord
from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.app import CSP, create_app
from verifier.policy import CHECK_IDS, Verifier

ISS = "https://city.example"
NOW = int(time.time())
DISCLOSE = ["family_name", "given_name", "birthdate", "address"]
STATUS = {"status_list": {"idx": 10, "uri": "https://city.example/statuslists/1"}}
EXPLORER = "https://explorer.example/tx/{tx}"


@pytest.fixture(scope="module")
def trust(issuer_key: SigningKey) -> TrustList:
    return TrustList.from_json(
        TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    )


def issue(key: SigningKey, *, status: dict[str, Any] | None = None, iss: str = ISS) -> str:
    dt = doctypes.get("juminhyo")
    return sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=key,
        issuer=iss,
        vct=dt.vct_for(iss),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
        status=status,
    ).sd_jwt


def present(key: SigningKey, **kw: Any) -> str:
    return sdjwt.present(issue(key, **kw), disclose=DISCLOSE)


def make_app(verifier: Verifier, **config: Any) -> Flask:
    return create_app({"VERIFIER": verifier, "TESTING": True, **config})


@pytest.fixture
def client(trust: TrustList) -> FlaskClient:
    return make_app(Verifier(trust=trust)).test_client()


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in doc["checks"]}


def page(response: Any) -> str:
    return str(response.get_data(as_text=True))


# --------------------------------------------------------------------------- the API


def test_valid_presentation_gives_the_cli_result_document(client, issuer_key, trust) -> None:
    pres = present(issuer_key)
    r = client.post("/api/verify", json={"presentation": pres})
    assert r.status_code == 200
    doc = r.get_json()
    assert doc == Verifier(trust=trust).verify(pres, now=time.time()).to_json()
    assert doc["verdict"] == "valid"
    assert doc["document_type"] == "juminhyo"
    assert doc["issuer"] == {"id": ISS, "name": "飯塚市", "municipality_code": "402052"}
    assert list(doc["disclosed"]) == ["family_name", "given_name", "birthdate", "address"]
    assert doc["disclosed"]["family_name"] == "山田"
    assert [c["id"] for c in doc["checks"]] == list(CHECK_IDS)
    assert list(doc) == ["verdict", "document_type", "issuer", "disclosed", "anchor", "checks"]


@pytest.mark.parametrize(
    ("lang", "label", "answer", "hidden"),
    [("ja", "20歳以上", "はい", "生年月日"), ("en", "20 or over", "Yes", "Date of birth")],
)
def test_age_alone_shows_20_or_over_and_no_birth_date(
    client, issuer_key, lang, label, answer, hidden
) -> None:
    """A 住民票 as the issuer makes it (age_equal_or_over's members disclosable one by
    one) presented with only age_equal_or_over.20: the company reads 20歳以上 はい, and
    neither the birth date nor the 18 member travels."""
    dt = doctypes.get("juminhyo")
    claims = doctypes.sample("juminhyo")
    claims["age_equal_or_over"] = doctypes.age_equal_or_over(
        claims["birthdate"], on=doctypes.issuance_date(NOW)
    )
    credential = sdjwt.issue(
        claims,
        key=issuer_key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
        disclosable_members=dt.member_disclosable,
    ).sd_jwt
    pres = sdjwt.present(credential, disclose=["age_equal_or_over.20"])
    doc = client.post("/api/verify", json={"presentation": pres}).get_json()
    assert doc["verdict"] == "valid"
    assert doc["disclosed"] == {"age_equal_or_over": {"20": True}}
    assert claims["birthdate"] not in pres and "1980" not in str(doc)
    html = page(client.post(f"/verify?lang={lang}", data={"presentation": pres}))
    assert f"<th>{label}</th>" in html.replace('<th scope="row">', "<th>"), html
    assert answer in html and hidden not in html
    assert ("18歳以上" if lang == "ja" else "18 or over") not in html


def _key_bound(issuer_key: SigningKey, holder: SigningKey, **kb: Any) -> str:
    dt = doctypes.get("juminhyo")
    cred = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=issuer_key,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=NOW - 100,
        exp=NOW + 86400,
        always_plain=dt.never_disclosable,
        holder_jwk=holder.jwk,
    ).sd_jwt
    return sdjwt.present(cred, disclose=DISCLOSE, **kb)


def test_audience_alone_asks_for_holder_binding(client, issuer_key) -> None:
    # A key-bound credential without a key-binding JWT, checked with only "aud".
    holder = SigningKey.generate()
    bare = _key_bound(issuer_key, holder)
    doc = client.post("/api/verify", json={"presentation": bare, "aud": "https://co.example"})
    assert doc.get_json()["verdict"] == "invalid"
    assert statuses(doc.get_json())["holder"] == "fail"
    # The key-binding JWT is made now: the app checks its freshness against the clock, and
    # NOW is when this module was collected, minutes earlier in a full run.
    bound = _key_bound(
        issuer_key,
        holder,
        holder_key=holder,
        nonce="n-1",
        aud="https://co.example",
        iat=int(time.time()),
    )
    doc = client.post("/api/verify", json={"presentation": bound, "aud": "https://co.example"})
    assert doc.get_json()["verdict"] == "valid" and statuses(doc.get_json())["holder"] == "pass"
    doc = client.post("/api/verify", json={"presentation": bound, "aud": "https://other.example"})
    assert statuses(doc.get_json())["holder"] == "fail"
    # Nothing asked: a screen presentation of a key-bound credential stays a warning.
    doc = client.post("/api/verify", json={"presentation": bare})
    assert statuses(doc.get_json())["holder"] == "warn"


def test_sh1_payload_is_verified_too(client, issuer_key) -> None:
    r = client.post("/api/verify", json={"presentation": qr.encode_embedded(present(issuer_key))})
    assert r.status_code == 200 and r.get_json()["verdict"] == "valid"


def test_png_qr_upload(client, issuer_key) -> None:
    png = qr.render_png(qr.encode_embedded(present(issuer_key)))
    r = client.post(
        "/api/verify",
        data={"file": (io.BytesIO(png), "qr.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["disclosed"]["address"] == doctypes.sample("juminhyo")["address"]


def test_pdf_with_a_qr_on_its_first_page(client, issuer_key, tmp_path) -> None:
    from fpdf import FPDF

    png = tmp_path / "qr.png"
    png.write_bytes(qr.render_png(qr.encode_embedded(present(issuer_key))))
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=20, y=20, w=120)
    data = bytes(pdf.output())
    r = client.post(
        "/api/verify",
        data={"file": (io.BytesIO(data), "c.pdf")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["verdict"] == "valid"


def test_text_file_upload(client, issuer_key) -> None:
    data = (present(issuer_key) + "\n").encode()
    r = client.post(
        "/api/verify",
        data={"file": (io.BytesIO(data), "p.txt")},
        content_type="multipart/form-data",
    )
    assert r.get_json()["verdict"] == "valid"


def test_tampered_presentation_is_invalid_with_the_failing_check(client, issuer_key) -> None:
    jwt, *rest = present(issuer_key).split("~")
    head, body, sig = jwt.split(".")
    forged = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    r = client.post("/api/verify", json={"presentation": "~".join([forged, *rest])})
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["verdict"] == "invalid"
    assert statuses(doc)["signature"] == "fail"
    assert doc["disclosed"] == {}


def test_damaged_sh1_payload_fails_the_format_check(client) -> None:
    r = client.post("/api/verify", json={"presentation": "SH1:" + "A" * 40})
    assert r.status_code == 200
    assert statuses(r.get_json())["format"] == "fail"


def test_unknown_issuer_is_invalid(client, attacker_key) -> None:
    pres = sdjwt.present(issue(attacker_key, iss="https://evil.example"), disclose=DISCLOSE)
    doc = client.post("/api/verify", json={"presentation": pres}).get_json()
    assert doc["verdict"] == "invalid"
    assert statuses(doc)["issuer"] == "fail"
    assert "信頼された発行者ではありません" in doc["checks"][2]["message"]


def revoked_app(trust: TrustList) -> Flask:
    def fetch(ref: dict[str, Any], *, issuer: str | None = None) -> int:
        assert ref == STATUS and issuer == ISS
        return 1

    return make_app(Verifier(trust=trust, status_fetcher=fetch))


def test_revoked_credential_says_so(issuer_key, trust) -> None:
    client = revoked_app(trust).test_client()
    pres = present(issuer_key, status=STATUS)
    doc = client.post("/api/verify", json={"presentation": pres}).get_json()
    assert doc["verdict"] == "invalid"
    status = next(c for c in doc["checks"] if c["id"] == "status")
    assert status["status"] == "fail" and "取り消し済み" in status["message"]
    html = page(client.post("/verify", data={"presentation": pres}))
    assert '<p class="revoked">取り消し済み</p>' in html
    assert "無効" in html
    assert "Revoked" in page(client.post("/verify?lang=en", data={"presentation": pres}))


class Anchors:
    """An anchor source that knows one root (the chain itself is tested elsewhere)."""

    chain_id = 31337

    def __init__(self, root: bytes | None = None) -> None:
        self.root = root

    def anchor_of(self, iss: str, root: bytes) -> AnchorRecord | None:
        if root != self.root:
            return None
        return AnchorRecord(
            issuer_address="0x" + "11" * 20,
            root=root,
            block=7,
            timestamp=NOW - 50,
            tx="0x" + "ab" * 32,
        )


def test_not_anchored_warns_and_stays_valid(issuer_key, trust) -> None:
    client = make_app(Verifier(trust=trust, anchors=Anchors())).test_client()
    doc = client.post("/api/verify", json={"presentation": present(issuer_key)}).get_json()
    assert doc["verdict"] == "valid"
    assert statuses(doc)["anchor"] == "warn"
    assert doc["anchor"] is None


def anchored(key: SigningKey) -> tuple[str, bytes, bytes]:
    """A presentation, its anchor evidence, and the root it leads to."""
    cred = issue(key)
    leaves = [merkle.leaf_hash(cred.split("~")[0]), merkle.leaf_hash("eyJ.other.x")]
    batch = merkle.build(leaves)
    ev = anchor_evidence.encode_receipt(batch.receipt(3, 0))
    return sdjwt.present(cred, disclose=DISCLOSE), ev, batch.root


def test_anchor_block_time_and_explorer_link(issuer_key, trust) -> None:
    pres, ev, root = anchored(issuer_key)
    app = make_app(Verifier(trust=trust, anchors=Anchors(root)), EXPLORER_TX_URL=EXPLORER)
    client = app.test_client()
    payload = qr.encode_embedded(pres, ev)
    doc = client.post("/api/verify", json={"presentation": payload}).get_json()
    assert statuses(doc)["anchor"] == "pass"
    assert doc["anchor"]["block"] == 7 and doc["anchor"]["timestamp"].endswith("+09:00")
    html = page(client.post("/verify", data={"presentation": payload}))
    assert f'href="https://explorer.example/tx/0x{"ab" * 32}"' in html
    assert "JST" in html


def test_evidence_field_as_base64url(issuer_key, trust) -> None:
    import base64

    pres, ev, root = anchored(issuer_key)
    client = make_app(Verifier(trust=trust, anchors=Anchors(root))).test_client()
    body = {"presentation": pres, "evidence": base64.urlsafe_b64encode(ev).decode().rstrip("=")}
    assert statuses(client.post("/api/verify", json=body).get_json())["anchor"] == "pass"
    for bad in (5, "!!!", {"receipt": "x"}, {}):
        r = client.post("/api/verify", json={"presentation": pres, "evidence": bad})
        assert r.status_code == 400, bad


def test_at_verifies_as_of_another_time(client, issuer_key) -> None:
    body = {"presentation": present(issuer_key), "at": "2099-01-01T00:00:00"}
    doc = client.post("/api/verify", json=body).get_json()
    assert doc["verdict"] == "invalid" and statuses(doc)["validity"] == "fail"
    assert client.post("/api/verify", json={**body, "at": "tomorrow"}).status_code == 400


# --------------------------------------------------------------------------- errors


def error_code(r: Any) -> str:
    doc = r.get_json()
    assert set(doc["error"]["message"]) == {"ja", "en"}
    return str(doc["error"]["code"])


@pytest.mark.parametrize(
    "body",
    [{"presentation": "hello world"}, {"presentation": 5}, {}, [1, 2], "x"],
    ids=["text", "number", "empty", "list", "string"],
)
def test_garbage_json_is_400(client, body) -> None:
    r = client.post("/api/verify", json=body)
    assert r.status_code == 400
    assert error_code(r) in ("not_a_credential", "bad_request")


def test_malformed_json_is_400(client) -> None:
    r = client.post("/api/verify", data=b"{not json", content_type="application/json")
    assert r.status_code == 400 and error_code(r) == "bad_request"


def test_image_without_qr_and_unreadable_image_are_400(client) -> None:
    from PIL import Image

    blank = io.BytesIO()
    Image.new("L", (64, 64), 255).save(blank, format="PNG")
    for data, code in ((blank.getvalue(), "no_qr_found"), (b"\x89PNG\r\n\x1a\nxx", None)):
        r = client.post(
            "/api/verify",
            data={"file": (io.BytesIO(data), "x.png")},
            content_type="multipart/form-data",
        )
        assert r.status_code == 400
        assert error_code(r) == (code or "unreadable_image")


def test_missing_file_part_and_binary_file_are_400(client) -> None:
    r = client.post("/api/verify", data={"other": "x"}, content_type="multipart/form-data")
    assert r.status_code == 400
    r = client.post(
        "/api/verify",
        data={"file": (io.BytesIO(b"\xff\xfe\x00\x81"), "x.bin")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and error_code(r) == "not_a_credential"


def test_link_mode_without_relays_is_a_clear_400(client) -> None:
    link = qr.LinkRef.new("https://relay.example/r").to_url()
    r = client.post("/api/verify", json={"presentation": link})
    assert r.status_code == 400 and error_code(r) == "link_not_configured"
    assert "中継サーバー" in r.get_json()["error"]["message"]["ja"]


def test_link_mode_relay_not_on_the_list_fails_the_format_check(trust) -> None:
    client = make_app(Verifier(trust=trust), LINK_RELAYS=["relay.example"]).test_client()
    link = qr.LinkRef.new("https://other.example/r").to_url()
    doc = client.post("/api/verify", json={"presentation": link}).get_json()
    assert statuses(doc)["format"] == "fail"
    assert "許可されていない" in doc["checks"][0]["message"]


def test_oversized_request_is_413(trust) -> None:
    client = make_app(Verifier(trust=trust), MAX_CONTENT_LENGTH=1024).test_client()
    r = client.post("/api/verify", json={"presentation": "x" * 2000})
    assert r.status_code == 413 and error_code(r) == "too_large"
    r = client.post(
        "/api/verify",
        data={"file": (io.BytesIO(b"x" * 4000), "big.txt")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 413


def test_oversized_presentation_is_413(client) -> None:
    r = client.post("/api/verify", json={"presentation": "e" * (sdjwt.DEFAULT_MAX_SIZE + 1)})
    assert r.status_code == 413 and error_code(r) == "too_large"


@pytest.mark.parametrize("content_type", ["application/xml", "text/html", "image/png"])
def test_wrong_content_type_is_415(client, content_type) -> None:
    r = client.post("/api/verify", data=b"abc", content_type=content_type)
    assert r.status_code == 415 and error_code(r) == "unsupported_media_type"


def test_rate_limit_is_429_with_retry_after(trust) -> None:
    client = make_app(Verifier(trust=trust), RATE_LIMIT_PER_MINUTE=3).test_client()
    codes = [client.post("/api/verify", json={"presentation": "x"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    r = client.post("/api/verify", json={"presentation": "x"})
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    other = client.post(
        "/api/verify", json={"presentation": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    )
    assert other.status_code == 400


def test_rate_limit_behind_a_trusted_proxy_is_per_forwarded_address(trust) -> None:
    app = make_app(Verifier(trust=trust), RATE_LIMIT_PER_MINUTE=1, TRUSTED_PROXIES=1)
    client = app.test_client()

    def post(forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return int(client.post("/api/verify", json={}, headers=headers).status_code)

    assert [post("192.0.2.1"), post("192.0.2.1"), post("192.0.2.2")] == [400, 429, 400]


def test_unknown_path_and_method_are_json_errors(client) -> None:
    assert error_code(client.get("/api/nothing")) == "not_found"
    r = client.get("/api/verify")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"


def test_unexpected_exception_is_logged_without_the_body(issuer_key, trust, caplog) -> None:
    class Broken(Verifier):
        def verify(self, presentation: str, **kw: Any) -> Any:
            raise RuntimeError(presentation)

    app = make_app(Broken(trust=trust))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    pres = present(issuer_key)
    r = app.test_client().post("/api/verify", json={"presentation": pres})
    assert r.status_code == 500 and error_code(r) == "internal"
    assert "Traceback" not in page(r) and pres not in page(r)
    assert "RuntimeError" in caplog.text and pres not in caplog.text


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/", "/api/openapi.json", "/api/nothing"])
def test_security_headers_on_every_response(client, path) -> None:
    h = client.get(path).headers
    assert h["Content-Security-Policy"] == CSP
    assert "script-src" not in CSP and "'unsafe-inline'" not in CSP
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["Permissions-Policy"] == "camera=(self)"
    assert h["Cache-Control"] == "no-store"


def test_results_are_not_stored(client, issuer_key) -> None:
    pres = present(issuer_key)
    for r in (
        client.post("/api/verify", json={"presentation": pres}),
        client.post("/verify", data={"presentation": pres}),
    ):
        assert r.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in r.headers


def test_static_files_are_served_without_no_store(client) -> None:
    r = client.get("/static/scan.js")
    assert r.status_code == 200 and "getUserMedia" in page(r)
    assert r.headers.get("Cache-Control") != "no-store"
    r.close()


# --------------------------------------------------------------------------- pages


def test_scan_page_in_ja_and_en(client) -> None:
    ja = page(client.get("/"))
    assert "QRコードを読み取る" in ja and '<html lang="ja">' in ja
    assert "<video" in ja and 'id="start-camera"' in ja and "/static/scan.js" in ja
    assert 'name="file"' in ja and 'name="presentation"' in ja
    assert "<script>" not in ja  # no inline script: the CSP forbids it
    en = page(client.get("/?lang=en"))
    assert "Scan the QR code" in en and '<html lang="en">' in en
    assert 'action="/verify?lang=en"' in en


def test_result_page_in_ja(client, issuer_key) -> None:
    html = page(client.post("/verify", data={"presentation": present(issuer_key)}))
    assert '<h1 class="word">有効</h1>' in html and 'class="verdict ok"' in html
    assert "飯塚市" in html and "402052" in html and "住民票の写し" in html
    assert "1980年4月1日（昭和55年4月1日）" in html  # 西暦 and 和暦
    assert '<th scope="row">氏</th><td>山田</td>' in html
    assert html.count('class="check ') == len(CHECK_IDS)
    assert "発行者の署名を確認しました" in html
    css = client.get("/static/verifier.css")
    assert "@media print" in page(css)
    css.close()


def test_result_page_in_en(client, issuer_key) -> None:
    html = page(client.post("/verify?lang=en", data={"presentation": present(issuer_key)}))
    assert "Valid" in html and "issuer signature verified" in html
    assert "1 April 1980 (Showa 55)" in html
    assert "Certificate of residence" in html and "Family name" in html


def test_result_page_from_an_uploaded_qr_image(client, issuer_key) -> None:
    png = qr.render_png(qr.encode_embedded(present(issuer_key)))
    r = client.post(
        "/verify", data={"file": (io.BytesIO(png), "qr.png")}, content_type="multipart/form-data"
    )
    assert r.status_code == 200 and "有効" in page(r)


def test_invalid_result_page_is_red_with_the_reason(client, attacker_key) -> None:
    pres = sdjwt.present(issue(attacker_key, iss="https://evil.example"), disclose=DISCLOSE)
    html = page(client.post("/verify", data={"presentation": pres}))
    assert 'class="verdict ng"' in html and "無効" in html
    assert 'class="check fail" data-check="issuer"' in html


def test_page_errors_are_html_in_the_chosen_language(client) -> None:
    r = client.post("/verify", data={"presentation": "hello"})
    assert r.status_code == 400 and "証明書またはQRコードの内容ではありません" in page(r)
    r = client.post("/verify?lang=en", data={})
    assert r.status_code == 400 and "paste the contents" in page(r)


# --------------------------------------------------------------------------- scan


def test_scan_frame_without_qr_and_with_one(client, issuer_key) -> None:
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank, format="JPEG")
    r = client.post("/api/scan", data=blank.getvalue(), content_type="image/jpeg")
    assert r.status_code == 200 and r.get_json() == {"found": False}
    payload = qr.encode_embedded(present(issuer_key))
    frame = io.BytesIO()
    Image.open(io.BytesIO(qr.render_png(payload))).convert("RGB").save(frame, format="JPEG")
    doc = client.post("/api/scan", data=frame.getvalue(), content_type="image/jpeg").get_json()
    assert doc["found"] is True and doc["payload"] == payload and doc["verdict"] == "valid"


def test_scan_rejects_other_content(client) -> None:
    assert client.post("/api/scan", json={"a": 1}).status_code == 415
    r = client.post("/api/scan", data=b"not an image", content_type="image/jpeg")
    assert r.status_code == 400 and error_code(r) == "unreadable_image"


def test_openapi_document(client) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    verify = doc["paths"]["/api/verify"]["post"]
    assert set(verify["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"200", "400", "413", "415", "429"} <= set(verify["responses"])
    assert "/api/scan" in doc["paths"]


# --------------------------------------------------------------------------- CLI


def test_cli_has_verifier_serve() -> None:
    from click.testing import CliRunner

    from shomei_cli import main

    out = CliRunner().invoke(main, ["verifier", "serve", "--help"])
    assert out.exit_code == 0
    assert "--port" in out.output and "--host" in out.output and "--data-dir" in out.output


def test_app_from_the_data_directory_without_a_chain(tmp_path) -> None:
    app = create_app({"DATA_DIR": str(tmp_path), "TESTING": True})
    assert app.config["VERIFIER"] is not None and app.config["EXPLORER_TX_URL"] is None


# --------------------------------------------------------------------------- link mode


def test_link_mode_through_an_allowed_relay(issuer_key, trust) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    blobs: dict[str, bytes] = {}

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = blobs.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        pres, ev, root = anchored(issuer_key)
        origin = f"http://127.0.0.1:{httpd.server_address[1]}"
        ref = qr.LinkRef.new(f"{origin}/r")
        link = ref.to_url()
        blobs["/r/" + link.rsplit("/", 1)[1].split("#")[0]] = qr.seal(pres, ref, evidence=ev)
        app = make_app(Verifier(trust=trust, anchors=Anchors(root)), LINK_RELAYS=[f"{origin}/r"])
        doc = app.test_client().post("/api/verify", json={"presentation": link}).get_json()
        assert doc["verdict"] == "valid" and statuses(doc)["anchor"] == "pass"
        missing = qr.LinkRef.new(f"http://127.0.0.1:{httpd.server_address[1]}/r").to_url()
        doc = app.test_client().post("/api/verify", json={"presentation": missing}).get_json()
        assert statuses(doc)["format"] == "fail" and "取得できません" in doc["checks"][0]["message"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- the limiter


def test_token_bucket_refills_per_key_and_is_thread_safe() -> None:
    import threading

    from verifier.ratelimit import RateLimiter

    limiter = RateLimiter(60, max_keys=3)  # one token a second, bursts of 60
    assert sum(limiter.allow("a", now=0.0) for _ in range(70)) == 60
    assert not limiter.allow("a", now=0.5)
    assert limiter.allow("a", now=1.6)
    assert limiter.allow("b", now=1.6)
    for key in ("c", "d", "e"):
        limiter.allow(key, now=2.0)
    assert len(limiter._buckets) == 3  # the oldest went first

    shared = RateLimiter(100)
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [shared.allow("x", now=10.0) for _ in range(50)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100
    with pytest.raises(ValueError):
        RateLimiter(0)
