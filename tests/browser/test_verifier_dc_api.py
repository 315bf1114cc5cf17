"""The company's request page and the W3C Digital Credentials API, in a real browser
against the verifier app on 127.0.0.1: no button where the browser lacks the API (the
QR code stays); where it has it, the button hands ``navigator.credentials.get`` the
signed OpenID4VP request (``openid4vp-v1-signed``, Annex A) and posts what comes back:
here the browser's wallet declines, and the page says 拒否されました."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

import credentials.jws as jws
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.app import create_app
from verifier.x509_identity import write_self_signed

pytestmark = [pytest.mark.browser]
ISS = "https://city.example"

WITHOUT_API = "delete window.DigitalCredential;"
#: A browser wallet that records the request (in sessionStorage: the page moves on to
#: the result) and declines it.
FAKE_API = """
window.DigitalCredential = class DigitalCredential {
  static userAgentAllowsProtocol(p) { return p.startsWith("openid4vp-v1-"); }
};
Object.defineProperty(navigator, "credentials", { value: {
  get: async (options) => {
    sessionStorage.setItem("dcCall", JSON.stringify(options));
    return { protocol: options.digital.requests[0].protocol, data: { error: "access_denied" } };
  }
}});
"""


@pytest.fixture(scope="module")
def verifier_url(issuer_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dcapi")
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def open_request(browser: Any, url: str, script: str) -> tuple[Any, Any]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 900, "height": 1300})
    context.add_init_script(script)
    page = context.new_page()
    page.goto(f"{url}/")
    page.click("#preset-address")
    page.wait_for_selector("#oid4vp-qr")
    return context, page


def test_no_api_no_button(browser: Any, verifier_url: str, shots: Path) -> None:
    context, page = open_request(browser, verifier_url, WITHOUT_API)
    assert page.is_hidden("#dc-api-start")
    assert page.is_visible("#oid4vp-qr")
    link = page.get_attribute("#oid4vp-link", "href") or ""
    assert link.startswith(
        "openid4vp://?client_id=x509_san_dns:127.0.0.1&request_uri=http://127.0.0.1:"
    )
    assert int(page.get_attribute("#oid4vp-qr", "data-version") or 99) <= 10
    page.screenshot(path=str(shots / "01-request-page.png"), full_page=True)
    context.close()


def test_the_browser_wallet_gets_the_signed_request(
    browser: Any, verifier_url: str, shots: Path
) -> None:
    context, page = open_request(browser, verifier_url, FAKE_API)
    page.wait_for_selector("#dc-api-start:not([hidden])")
    page.screenshot(path=str(shots / "01-with-dc-api.png"), full_page=True)
    page.click("#dc-api-start")
    page.wait_for_selector("#verdict", timeout=15000)
    assert page.inner_text("#verdict .word").strip() == "拒否されました"
    page.screenshot(path=str(shots / "02-refused.png"), full_page=True)

    options = json.loads(page.evaluate("sessionStorage.getItem('dcCall')"))
    assert options["mediation"] == "required"
    (request,) = options["digital"]["requests"]
    assert request["protocol"] == "openid4vp-v1-signed"
    token = jws.CompactJws(request["data"]["request"], what="request", what_en="request")
    header, payload = token.unverified_header, token.unverified_payload
    assert header["typ"] == "oauth-authz-req+jwt" and header["x5c"]
    assert payload["client_id"] == "x509_san_dns:127.0.0.1"
    assert payload["expected_origins"] == [verifier_url]
    assert payload["response_mode"] == "dc_api.jwt"
    assert payload["client_metadata"]["jwks"]["keys"][0]["alg"] == "ECDH-ES"
    claims = payload["dcql_query"]["credentials"][0]["claims"]
    assert claims == [{"path": ["family_name"]}, {"path": ["given_name"]}, {"path": ["address"]}]
    assert "response_uri" not in payload and "state" not in payload
    context.close()
