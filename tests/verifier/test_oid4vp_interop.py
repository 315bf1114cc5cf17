"""Interop: a wallet built on @openid4vc/openid4vp 0.4.6, @sd-jwt/sd-jwt-vc 0.19 and
jose (tests/interop/oid4vp_wallet.mjs, run by node) answers our verifier's OpenID4VP
1.0 request. The verifier is the real app on 127.0.0.1 with a trust file and a test
certificate the wallet pins; the 住民票 is issued here with a holder key the wallet
holds. Signed (x509_san_dns) and unsigned (redirect_uri), direct_post and
direct_post.jwt; a refusal, a replay, a wrong nonce, a wrong audience and extra
disclosed claims are each refused with a clear message on the company's page."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from werkzeug.serving import make_server

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.app import create_app
from verifier.x509_identity import write_self_signed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "oid4vp_wallet.mjs"
ISS = "https://city.example"
NODE = shutil.which("node")


@pytest.fixture(autouse=True)
def _node() -> None:
    """The libraries are installed by `make test` (npm ci): their absence is a failure."""
    if NODE is None or not (ROOT / "node_modules" / "@openid4vc" / "openid4vp").is_dir():
        pytest.fail("node and node_modules (make node_modules/.installed) are needed")


class Verifier:
    def __init__(self, url: str, cert_pem: str) -> None:
        self.url = url
        self.cert_pem = cert_pem
        self.http = requests.Session()

    def new_request(self, **form: Any) -> tuple[str, str]:
        """POST /request as the company's page does: (request page URL, openid4vp link)."""
        r = self.http.post(f"{self.url}/request", data=form, allow_redirects=False, timeout=10)
        assert r.status_code == 303, r.text
        page = f"{self.url}{r.headers['Location']}"
        html = self.http.get(page, timeout=10).text
        link = re.search(r'<a id="oid4vp-link" class="button" href="([^"]+)"', html)
        assert link is not None, html
        return page, unescape(link.group(1))

    def status(self, page: str) -> Any:
        return self.http.get(f"{page}/status", timeout=10).json()


@pytest.fixture(scope="module")
def verifier(
    issuer_key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Verifier]:
    folder = tmp_path_factory.mktemp("oid4vp")
    trust = folder / "trust.json"
    doc = TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[issuer_key.jwk])
    trust.write_text(json.dumps(doc), encoding="utf-8")
    cert, key = write_self_signed(folder, "127.0.0.1", now=dt.datetime.now(dt.UTC))
    app = create_app(
        {
            "DATA_DIR": str(folder / "data"),
            "TRUST_FILE": str(trust),
            "X509_CERT": str(cert),
            "X509_KEY": str(key),
            "RATE_LIMIT_PER_MINUTE": 0,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["VERIFIER_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Verifier(url, cert.read_text(encoding="ascii"))
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def credential(issuer_key: SigningKey, holder_key: SigningKey) -> str:
    dt_ = doctypes.get("juminhyo")
    now = int(time.time())
    return sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=issuer_key,
        issuer=ISS,
        vct=dt_.vct_for(ISS),
        iat=now - 60,
        exp=now + 86400,
        always_plain=dt_.never_disclosable,
        holder_jwk=holder_key.jwk,
    ).sd_jwt


def holder_private_jwk(key: SigningKey) -> dict[str, str]:
    d = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    from credentials.encoding import b64e

    return {**key.jwk, "d": b64e(d)}


def wallet(
    tmp_path: Path,
    verifier: Verifier,
    link: str,
    credential: str,
    holder_key: SigningKey,
    tamper: str = "none",
) -> dict[str, Any]:
    """Run the library wallet on ``link``; its report."""
    spec = tmp_path / f"wallet-{tamper}.json"
    spec.write_text(
        json.dumps(
            {
                "link": link,
                "credential": credential,
                "holderJwk": holder_private_jwk(holder_key),
                "trustedCertPem": verifier.cert_pem,
                "tamper": tamper,
            }
        ),
        encoding="utf-8",
    )
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(SCRIPT), str(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def result_page(verifier: Verifier, page: str) -> str:
    return verifier.http.get(f"{page}/result", timeout=10).text


@pytest.mark.parametrize(
    ("signed", "mode"),
    [
        ("1", "direct_post.jwt"),
        ("1", "direct_post"),
        ("0", "direct_post.jwt"),
        ("0", "direct_post"),
    ],
)
def test_a_library_wallet_answers_our_request(
    tmp_path, verifier, credential, holder_key, signed, mode
) -> None:
    page, link = verifier.new_request(preset="address", signed=signed, response_mode=mode)
    if signed == "1":
        assert link.startswith(
            "openid4vp://?client_id=x509_san_dns:127.0.0.1&request_uri=http://127.0.0.1:"
        )
    else:
        assert link.startswith(
            "openid4vp://?response_type=vp_token&client_id=redirect_uri:http://127.0.0.1:"
        )
    assert verifier.status(page) == {"state": "pending"}

    report = wallet(tmp_path, verifier, link, credential, holder_key)
    assert "error" not in report, report
    assert report["signed"] is (signed == "1")
    assert report["client"]["prefix"] == ("x509_san_dns" if signed == "1" else "redirect_uri")
    request = report["request"]
    assert request["response_mode"] == mode
    query = request["dcql_query"]["credentials"][0]
    assert query["format"] == "dc+sd-jwt"
    assert query["meta"]["vct_values"] == [f"{ISS}/vct/juminhyo/1"]
    assert [c["path"] for c in query["claims"]] == [["family_name"], ["given_name"], ["address"]]
    if mode == "direct_post.jwt":
        key = request["client_metadata"]["jwks"]["keys"][0]
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("EC", "P-256", "enc", "ECDH-ES")
        assert "d" not in key
        assert report["encrypted"] is True
    assert report["responses"] == [{"status": 200, "body": {"verdict": "valid"}}], re.sub(
        r"\s+", " ", re.sub("<[^>]+>", " ", result_page(verifier, page))
    )[:3000]

    # the company's page follows: answered, and the result names the resident
    assert verifier.status(page) == {"state": "answered"}
    html = result_page(verifier, page)
    assert "有効" in html and "山田" in html and "立岩" in html
    assert "1980" not in html  # the birth date was not asked for, nor disclosed
    assert re.search(r'data-check="holder"[^>]*class="[^"]*pass', html) or re.search(
        r'class="[^"]*pass[^"]*"[^>]*data-check="holder"', html
    )
    # a reload shows it again
    assert "山田" in verifier.http.get(page, timeout=10).text


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("nonce", "所持者の鍵署名の nonce が一致しません"),
        ("aud", "所持者の鍵署名の aud が一致しません"),
        ("extra", "依頼していない項目が開示されています（birthdate, sex）"),
    ],
)
def test_bad_answers_are_refused_with_a_clear_message(
    tmp_path, verifier, credential, holder_key, tamper, message
) -> None:
    page, link = verifier.new_request(preset="address")
    report = wallet(tmp_path, verifier, link, credential, holder_key, tamper)
    assert report["responses"] == [{"status": 200, "body": {"verdict": "invalid"}}], report
    html = result_page(verifier, page)
    assert "無効" in html and message in html
    if tamper == "extra":
        assert "1980" not in html  # what was not asked for is not shown either


def test_a_replayed_answer_is_refused(tmp_path, verifier, credential, holder_key) -> None:
    _page, link = verifier.new_request(preset="address", response_mode="direct_post")
    report = wallet(tmp_path, verifier, link, credential, holder_key, "replay")
    first, again = report["responses"]
    assert first == {"status": 200, "body": {"verdict": "valid"}}
    assert again["status"] == 400
    assert again["body"]["error"]["code"] == "already_answered"
    assert "この依頼にはすでに回答があります" in again["body"]["error"]["message"]["ja"]


def test_a_refusal_shows_on_the_page(tmp_path, verifier, credential, holder_key) -> None:
    page, link = verifier.new_request(preset="identity")
    report = wallet(tmp_path, verifier, link, credential, holder_key, "refuse")
    assert report["responses"] == [{"status": 200, "body": {"verdict": "refused"}}]
    assert verifier.status(page) == {"state": "answered"}
    html = result_page(verifier, page)
    assert "拒否されました" in html and "access_denied" in html


def test_the_request_object_is_signed_with_the_certificate(verifier) -> None:
    """What the wallet fetched by reference, checked here without the library: the JWT
    header names our certificate and the type; POST echoes the wallet's nonce."""
    _, link = verifier.new_request(preset="age")
    uri = re.search(r"request_uri=([^&]+)", link)
    assert uri is not None
    from urllib.parse import unquote

    r = verifier.http.post(unquote(uri.group(1)), data={"wallet_nonce": "n-123"}, timeout=10)
    assert r.headers["Content-Type"] == "application/oauth-authz-req+jwt"
    header_b64, payload_b64, _ = r.text.split(".")
    from credentials.encoding import b64d

    header, payload = json.loads(b64d(header_b64)), json.loads(b64d(payload_b64))
    assert header["typ"] == "oauth-authz-req+jwt" and header["alg"] == "ES256"
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(__import__("base64").b64decode(header["x5c"][0]))
    assert leaf.public_bytes(serialization.Encoding.PEM).decode() == verifier.cert_pem
    assert payload["wallet_nonce"] == "n-123"
    assert payload["client_id"] == "x509_san_dns:127.0.0.1"
    claims = payload["dcql_query"]["credentials"][0]["claims"]
    assert claims == [{"path": ["age_equal_or_over", "20"]}]
