"""A resident presents from the wallet, in a real browser, against ``shomei demo``:
氏名 and 住所 as an embedded QR code (drawn by the wallet's own encoder, decoded here
with zxing-cpp, verified by the demo verifier: exactly those claims); a link-mode QR
(sealed in the browser, fetched from the wallet's relay, opened here); and a verifier's
OpenID4VP 1.0 request from the demo verifier answered with a key-binding JWT (holder
check ``pass``). Screenshots in
``build/screenshots/``."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import zxingcpp
from conftest import Demo, free_port
from PIL import Image

from anchor import merkle
from credentials import doctypes, qr, sdjwt
from issuer.keys import service as issuer_keys
from shomei_demo import PASSPHRASE
from verifier.app import create_app as create_verifier

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOWN = ["family_name", "given_name", "address"]


@pytest.fixture(scope="module")
def wallet_url(demo: Demo) -> Iterator[str]:
    """The demo's wallet when it serves one, else the wallet app on a free port here."""
    url = getattr(demo, "wallet_url", None)
    if url:
        yield url
        return
    from werkzeug.serving import make_server

    from wallet_demo.app import create_app

    server = make_server("127.0.0.1", free_port(), create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def b64u_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def record_for(cred: str, *, key_id: str | None, evidence: Any) -> dict[str, Any]:
    """The wallet's record of a credential (store.js's shape), as receive.js keeps it."""
    jwt, *disclosures = cred.rstrip("~").split("~")
    payload = b64u_json(jwt.split(".")[1])
    claims = []
    for d in disclosures:
        _, name, value = b64u_json(d)
        claims.append({"name": name, "value": value, "disclosure": d})
    plain = {k: v for k, v in payload.items() if not k.startswith("_")}
    return {
        "id": "test-" + merkle.leaf_hash(jwt).hex()[:16],
        "sdJwt": cred,
        "docType": payload["vct"].split("/vct/")[1].split("/")[0],
        "vct": payload["vct"],
        "issuer": payload["iss"],
        "issuerName": "飯塚市",
        "issuedAt": payload["iat"],
        "expiresAt": payload.get("exp"),
        "claims": claims,
        "plain": plain,
        "status": "valid",
        "statusValue": 0,
        "keyId": key_id,
        "leafHex": merkle.leaf_hash(jwt).hex(),
        "evidenceUrl": None,
        "evidence": evidence,
        "receivedAt": int(time.time() * 1000),
    }


def open_wallet(browser: Any, wallet_url: str, query: str = "") -> tuple[Any, Any]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 480, "height": 1000})
    page = context.new_page()
    page.goto(f"{wallet_url}/{query}")
    page.wait_for_load_state("networkidle")
    return context, page


def store_and_present(page: Any, record: dict[str, Any]) -> None:
    page.evaluate(
        """async (rec) => {
            const store = await import("/static/js/store.js");
            await store.putCredential(rec);
            window.dispatchEvent(new CustomEvent("shomei:present", {detail: {id: rec.id}}));
        }""",
        record,
    )
    page.wait_for_selector("#present:not([hidden]) #present-show")


def scan_qr(page: Any) -> str:
    shot = page.locator("#present-qr svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)).convert("L"))
    assert found, "zxing found no QR code in the wallet's screen"
    return str(found[0].text)


def verify(demo: Demo, payload: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(f"{demo.verifier_url}/api/verify", json=payload, timeout=30)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in doc["checks"]}


def demo_record(demo: Demo) -> dict[str, Any]:
    out = demo.data_dir / "demo"
    cred = (out / "juminhyo.sd-jwt").read_text().strip()
    evidence = json.loads((out / "juminhyo.receipt.json").read_text())
    return record_for(cred, key_id=None, evidence=evidence)


def test_present_name_and_address_as_an_embedded_qr(
    browser: Any, demo: Demo, wallet_url: str, shots: Path
) -> None:
    context, page = open_wallet(browser, wallet_url)
    store_and_present(page, demo_record(demo))
    page.screenshot(path=str(shots / "01-choose.png"), full_page=True)
    page.click('button[data-preset="住所確認"]')
    preview = page.inner_text("#present-preview")
    assert "山田" in preview and "太郎" in preview and "立岩" in preview
    assert "1980" not in preview and "生年月日" not in preview
    page.screenshot(path=str(shots / "02-preview.png"), full_page=True)
    page.click("#present-show")
    page.wait_for_selector("#present-qr svg")
    assert page.get_attribute("#present-qr", "data-mode") == "embedded"
    assert int(page.get_attribute("#present-qr", "data-version") or 99) <= 25
    shown = page.inner_text(".present-shown")
    assert "住所" in shown and "生年月日" not in shown
    page.screenshot(path=str(shots / "03-qr.png"), full_page=True)

    text = scan_qr(page)
    assert text.startswith("SH1:")
    doc = verify(demo, {"presentation": text})
    assert doc["verdict"] == "valid", doc
    assert set(doc["disclosed"]) == set(SHOWN)
    assert statuses(doc)["anchor"] == "pass"
    page.click("#present-close")
    assert page.is_hidden("#present")
    context.close()


def test_link_mode_sealed_in_the_browser(
    browser: Any, demo: Demo, wallet_url: str, shots: Path
) -> None:
    context, page = open_wallet(browser, wallet_url, "?present-link=1")
    record = demo_record(demo)
    store_and_present(page, record)
    for claim in record["claims"]:
        page.check(f"#present-claim-{claim['name']}")
    page.click("#present-show")
    page.wait_for_selector("#present-qr svg")
    assert page.get_attribute("#present-qr", "data-mode") == "link"
    assert int(page.get_attribute("#present-qr", "data-version") or 99) <= 6
    page.screenshot(path=str(shots / "01-link-qr.png"), full_page=True)

    url = scan_qr(page)
    ref = qr.LinkRef.parse(url)
    assert qr.classify(url) == "link" and ref.base_url == f"{wallet_url}/relay"
    # the verifier fetches the blob from the relay (on its allow list) and opens it
    checker = create_verifier({"DATA_DIR": demo.data_dir, "LINK_RELAYS": [wallet_url]})
    r = checker.test_client().post("/api/verify", json={"presentation": url})
    assert r.status_code == 200, r.get_json()
    doc = r.get_json()
    assert doc["verdict"] == "valid", doc
    assert set(doc["disclosed"]) == {c["name"] for c in record["claims"]}
    assert statuses(doc)["anchor"] == "pass"  # the evidence travelled in the sealed blob
    blob_url = url.partition("#")[0]
    assert requests.get(blob_url, timeout=10).status_code == 404  # handed out once
    context.close()


def test_answer_our_verifiers_openid4vp_request(
    browser: Any, demo: Demo, wallet_url: str, shots: Path
) -> None:
    # the company's screen: ask for 氏名 and 住所 over OpenID4VP
    company = browser.new_context(locale="ja-JP", viewport={"width": 900, "height": 1200})
    screen = company.new_page()
    screen.goto(f"{demo.verifier_url}/")
    for name in SHOWN:
        screen.check(f'#request-form input[value="{name}"]')
    screen.click("#request-start")
    screen.wait_for_selector("#oid4vp-qr")
    assert screen.query_selector("#legacy-request, #request-text, #request-qr") is None
    screen.screenshot(path=str(shots / "01-request.png"), full_page=True)
    link = screen.get_attribute("#oid4vp-link", "href") or ""
    # signed by the demo's certificate for localhost, answered on localhost
    query = parse_qs(urlsplit(link).query)
    assert link.startswith("openid4vp://?") and query["client_id"] == ["x509_san_dns:localhost"]
    assert urlsplit(query["request_uri"][0]).hostname == "localhost", link
    qr_png = screen.locator("#oid4vp-qr").screenshot()
    scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png)).convert("L"))
    assert scanned and scanned[0].text == link
    same_device = screen.get_attribute("#oid4vp-wallet-link", "href") or ""
    assert same_device == f"{wallet_url}/?{urlencode({'request': link})}"

    # the resident's wallet: a holder key in the browser, a credential bound to it
    context, page = open_wallet(browser, wallet_url)
    holder = page.evaluate("""async () => (await import("/static/js/keys.js")).createHolderKey()""")
    city = issuer_keys.load(demo.data_dir, PASSPHRASE)
    dt = doctypes.get("juminhyo")
    now = int(time.time())
    cred = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=city.key,
        issuer=city.issuer_id,
        vct=dt.vct_for(city.issuer_id),
        iat=now,
        exp=now + 86400,
        always_plain=dt.never_disclosable,
        holder_jwk=holder["publicJwk"],
    ).sd_jwt
    store_and_present(page, record_for(cred, key_id=holder["id"], evidence=None))
    # 「依頼に答える」 on the presenting screen opens the OpenID4VP reader: paste the link
    page.click("#present-answer")
    page.fill("#vp-request-text", link)
    page.click("#vp-request-read")
    page.wait_for_selector("#vp-consent, #vp-error:not([hidden])")
    assert page.query_selector("#vp-consent"), page.inner_text("#answer")
    assert page.inner_text("#vp-client") == "localhost"
    assert page.get_attribute("#vp-client", "data-prefix") == "x509_san_dns"
    asked = page.inner_text("#vp-asked")
    assert "山田" in asked and "1980" not in asked, asked
    page.screenshot(path=str(shots / "02-wallet-confirm.png"), full_page=True)
    page.click("#vp-consent")
    page.wait_for_selector('#vp-status[data-state="sent"], #vp-status[data-state="failed"]')
    assert page.get_attribute("#vp-status", "data-state") == "sent", page.inner_text("#vp-status")
    page.screenshot(path=str(shots / "03-wallet-sent.png"), full_page=True)

    # the company's screen follows to the result: exactly the requested claims
    screen.wait_for_selector("#verdict", timeout=15000)
    assert screen.inner_text("#verdict .word").strip() == "有効"
    holder_row = screen.get_attribute('tr[data-check="holder"]', "class") or ""
    assert "pass" in holder_row.split()
    shown = screen.inner_text(".claims")
    assert "山田" in shown and "1980" not in shown, shown
    screen.screenshot(path=str(shots / "04-result.png"), full_page=True)

    # answered once: the same request again, opened through the page's same-device link
    # (the wallet's /?request=…), is refused by the verifier
    page.goto(same_device)
    page.wait_for_selector("#vp-error:not([hidden])")
    error = page.inner_text("#vp-error")
    assert "依頼元が依頼の内容を返しませんでした（400）" in error, error
    assert "request=" not in page.url  # the wallet takes the request out of the address bar
    context.close()
    company.close()
