"""A resident receives a 住民票 into the wallet PWA in a real browser (Debian's
chromium) from ``shomei demo``'s issuer: the deep link, a wrong and then the right
確認番号, the certificate listed as 有効 and then 記録済み once anchored, its details,
a reload (IndexedDB keeps it), a key-bound presentation made by ``sdjwt.js`` that the
project's verifier accepts, revocation seen from the status list, and deletion.
Screenshots in ``build/screenshots/``."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, CSRF, Demo, clerk_session, issue_juminhyo
from fake_camera import write_y4m

from credentials import qr, sdjwt
from credentials.trust import TrustList
from verifier.policy import Verifier

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCHEME = "openid-credential-offer://"
MOBILE = {"width": 360, "height": 780}


def issue_and_offer(s: requests.Session, demo: Demo) -> tuple[str, str, str]:
    """A new 住民票 offered to a wallet: (certificate id, deep link, tx_code)."""
    cert = issue_juminhyo(s, demo)
    token = CSRF.search(s.get(f"{demo.issuer_url}/certificates/{cert}").text)
    assert token
    page = s.post(
        f"{demo.issuer_url}/certificates/{cert}/offer", data={"csrf_token": token.group(1)}
    ).text
    link = re.search(r'href="(openid-credential-offer://[^"]+)"', page)
    tx = re.search(r'id="tx-code">(\d{3}) (\d{3})<', page)
    assert link and tx, page
    return cert, html.unescape(link.group(1)), tx.group(1) + tx.group(2)


def revoke(s: requests.Session, demo: Demo, cert: str) -> None:
    token = CSRF.search(s.get(f"{demo.issuer_url}/certificates/{cert}").text)
    assert token
    r = s.post(
        f"{demo.issuer_url}/certificates/{cert}/revoke",
        data={"csrf_token": token.group(1), "reason": "転出のため"},
    )
    assert r.ok


def trust_of(demo: Demo) -> TrustList:
    meta = requests.get(f"{demo.issuer_url}/.well-known/jwt-vc-issuer", timeout=10).json()
    return TrustList.from_json(
        TrustList.document(
            meta["issuer"],
            name=meta["name"],
            municipality_code=meta["municipality_code"],
            jwks=meta["jwks"]["keys"],
        )
    )


STORED = """async () => {
  const store = await import("/static/js/store.js");
  const records = await store.listCredentials();
  const out = [];
  for (const r of records) {
    const key = await store.getKey(r.keyId);
    out.push({record: r, publicJwk: key && key.publicJwk,
              extractable: key ? key.privateKey.extractable : null});
  }
  return out;
}"""
PRESENT = """async (id) => {
  const store = await import("/static/js/store.js");
  const sdjwt = await import("/static/js/sdjwt.js");
  const record = await store.getCredential(id);
  return sdjwt.present(record, ["family_name", "address"],
                       {nonce: "n-1", aud: "https://verifier.example"});
}"""
REFRESH = """async (id) => {
  const store = await import("/static/js/store.js");
  const list = await import("/static/js/list.js");
  const record = await list.refreshRecord(await store.getCredential(id), {force: true});
  return record.statusValue;
}"""


def test_receive_keep_present_and_delete(browser: Any, demo: Demo, shots: Path) -> None:
    wallet_url = demo.wallet_url
    s = clerk_session(demo)
    cert, link, tx_code = issue_and_offer(s, demo)
    assert link.startswith(SCHEME)
    context = browser.new_context(locale="ja-JP", viewport=MOBILE)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # Refusals (the wrong code's 400, evidence 404 before anchoring) are expected;
    # anything else, a CSP violation above all, is not.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )

    # The deep link hands the offer (by reference) over; the address bar forgets it.
    assert link.startswith(f"{SCHEME}?credential_offer_uri={demo.issuer_url}/oid4vci/offers/")
    page.goto(f"{wallet_url}/{link[len(SCHEME) :]}")
    page.wait_for_selector("#code-step:not([hidden])")
    assert "credential_offer" not in page.url
    assert page.inner_text("#offer-type") == "住民票の写し"
    from playwright.sync_api import expect

    expect(page.locator("#offer-issuer")).to_contain_text("飯塚市")
    page.screenshot(path=str(shots / "01-offer.png"), full_page=True)

    wrong = f"{(int(tx_code) + 1) % 1_000_000:06d}"
    page.fill("#tx-code", wrong)
    page.click("#receive-submit")
    page.wait_for_selector("#receive-error:not([hidden])")
    assert "確認番号が違います" in page.inner_text("#receive-error")
    assert "あと4回" in page.inner_text("#receive-error")  # the issuer says how many are left
    page.screenshot(path=str(shots / "02-wrong-code.png"), full_page=True)

    page.fill("#tx-code", tx_code)
    page.click("#receive-submit")
    page.wait_for_selector("#list-view:not([hidden]) .cert-item", timeout=30_000)
    item = page.locator(".cert-item")
    assert item.count() == 1
    assert item.locator(".cert-title").inner_text() == "住民票の写し"
    assert "飯塚市" in item.locator(".cert-issuer").inner_text()
    assert "令和" in item.inner_text() and "有効期限" in item.inner_text()
    page.wait_for_selector(".status[data-status=valid]", timeout=15_000)
    assert item.locator(".status").inner_text() == "有効"
    page.screenshot(path=str(shots / "03-received.png"), full_page=True)
    page.wait_for_selector(".anchor-state[data-anchor=anchored]", timeout=30_000)
    assert item.locator(".anchor-state").inner_text() == "記録済み"
    page.screenshot(path=str(shots / "04-anchored.png"), full_page=True)

    # Details: every claim under its Japanese label, dates in 西暦 and 和暦.
    page.click(".cert-open")
    page.wait_for_selector("#detail-view:not([hidden])")
    claims = page.inner_text("#detail-claims")
    assert "氏" in claims and "山田" in claims and "住所" in claims
    assert "1980年4月1日（昭和55年4月1日）" in claims
    assert "令和元年5月1日" in claims  # address_since 2019-05-01
    # 年齢到達, each member its own disclosure, resolved and labelled from /types.json.
    assert "18歳以上" in claims and "20歳以上" in claims and "はい" in claims
    assert "_sd" not in claims
    page.screenshot(path=str(shots / "05-details.png"), full_page=True)

    # Still there after a reload (IndexedDB), and in English on request.
    page.reload()
    page.wait_for_selector(".cert-item .anchor-state[data-anchor=anchored]")
    page.click("#toggle-large")
    page.click("#toggle-lang")
    # The list is drawn again in English once the switch is handled: wait for it (a
    # locator assertion: a polled JS string would need eval, which the CSP forbids).
    expect(page.locator(".cert-item .cert-title")).to_have_text("Certificate of residence")
    page.screenshot(path=str(shots / "06-reloaded-english-large.png"), full_page=True)
    page.click("#toggle-lang")
    page.click("#toggle-large")

    # The stored credential is bound to the key the page made, which cannot be exported.
    (stored,) = page.evaluate(STORED)
    record = stored["record"]
    assert stored["extractable"] is False
    payload = sdjwt.ParsedSdJwt.parse(record["sdJwt"]).unverified_payload
    assert payload["cnf"] == {"jwk": stored["publicJwk"]}
    assert set(stored["publicJwk"]) == {"kty", "crv", "x", "y"}
    assert record["evidence"]["receipt"] and record["statusValue"] == 0
    assert record["evidenceUrl"].endswith(f"/oid4vci/evidence/{record['leafHex']}")

    # A presentation made in the browser verifies, holder binding included.
    presentation = page.evaluate(PRESENT, record["id"])
    result = Verifier(trust=trust_of(demo)).verify(
        presentation, now=time.time(), nonce="n-1", aud="https://verifier.example"
    )
    assert result.verdict == "valid", result.to_json()
    assert result.check("holder").status == "pass"
    assert set(result.disclosed) == {"family_name", "address"}
    wrong_aud = Verifier(trust=trust_of(demo)).verify(
        presentation, now=time.time(), nonce="n-1", aud="https://other.example"
    )
    assert wrong_aud.verdict == "invalid"

    # Revoked at the city office: the wallet reads it from the status list.
    revoke(s, demo, cert)
    assert page.evaluate(REFRESH, record["id"]) == 1
    page.reload()
    page.wait_for_selector(".status[data-status=revoked]")
    assert page.inner_text(".cert-item .status") == "取り消し済み"
    page.screenshot(path=str(shots / "07-revoked.png"), full_page=True)

    # Deleted after confirming: the record and its key are gone.
    page.click(".cert-open")
    page.click("#detail-delete")
    page.wait_for_selector("#delete-confirm:not([hidden])")
    page.screenshot(path=str(shots / "08-delete-confirm.png"), full_page=True)
    page.click("#delete-yes")
    page.wait_for_selector("#list-empty:not([hidden])")
    assert page.evaluate(STORED) == []
    gone = page.evaluate(
        "async (id) => (await import('/static/js/store.js')).getKey(id)", record["keyId"]
    )
    assert gone is None
    page.screenshot(path=str(shots / "09-deleted.png"), full_page=True)
    assert not problems, problems
    context.close()


def test_an_offer_by_value_is_received_too(browser: Any, demo: Demo) -> None:
    """Another issuer may put the whole offer in the QR code (credential_offer): the
    document our issuer serves by reference, pasted by value, works the same."""
    s = clerk_session(demo)
    _, link, tx_code = issue_and_offer(s, demo)
    (location,) = parse_qs(urlsplit(link).query)["credential_offer_uri"]
    document = requests.get(location, timeout=10).json()
    by_value = f"{SCHEME}?credential_offer={quote(json.dumps(document), safe='')}"
    context = browser.new_context(locale="ja-JP", viewport=MOBILE)
    page = context.new_page()
    page.goto(f"{demo.wallet_url}/")
    page.wait_for_selector("#list-empty:not([hidden])")
    page.click("#tab-receive")
    page.click("#offer-paste-summary")
    page.fill("#offer-text", by_value)
    page.click("#offer-paste")
    page.wait_for_selector("#code-step:not([hidden])")
    assert page.inner_text("#offer-type") == "住民票の写し"
    page.fill("#tx-code", tx_code)
    page.click("#receive-submit")
    page.wait_for_selector("#list-view:not([hidden]) .cert-item", timeout=30_000)
    (stored,) = page.evaluate(STORED)
    assert stored["record"]["issuer"] == document["credential_issuer"]
    context.close()


def test_camera_scan_a_used_offer_and_offline(playwright: Any, demo: Demo, shots: Path) -> None:
    """The offer QR read by the camera (Chromium's fake capture device playing a video
    of it); the same offer refused once used; the wallet opening offline."""
    s = clerk_session(demo)
    _, link, tx_code = issue_and_offer(s, demo)
    video = write_y4m(qr.render_png(link, scale=6), shots / "camera.y4m")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        context = browser.new_context(locale="ja-JP", viewport=MOBILE)
        context.grant_permissions(["camera"], origin=demo.wallet_url)
        page = context.new_page()
        page.goto(f"{demo.wallet_url}/")
        page.wait_for_selector("#list-empty:not([hidden])")
        page.click("#tab-receive")
        page.click("#camera-start")
        page.wait_for_selector("#camera-box:not([hidden])")
        page.screenshot(path=str(shots / "01-camera-on.png"), full_page=True)
        page.wait_for_selector("#code-step:not([hidden])", timeout=30_000)
        assert page.is_hidden("#camera-box")
        assert page.inner_text("#offer-type") == "住民票の写し"
        page.fill("#tx-code", tx_code)
        page.click("#receive-submit")
        page.wait_for_selector("#list-view:not([hidden]) .cert-item", timeout=30_000)
        page.screenshot(path=str(shots / "02-received.png"), full_page=True)

        # The same offer again: it worked once, so the issuer no longer serves it by
        # reference, and the wallet says what to do before asking for any code.
        page.click("#tab-receive")
        page.click("#offer-paste-summary")
        page.fill("#offer-text", link)
        page.click("#offer-paste")
        page.wait_for_selector("#receive-error:not([hidden])")
        assert "すでに使われています" in page.inner_text("#receive-error")
        assert "窓口" in page.inner_text("#receive-error")
        assert page.is_hidden("#code-step")
        page.screenshot(path=str(shots / "03-used-offer.png"), full_page=True)

        # Offline: the service worker serves the shell, IndexedDB the certificate.
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()  # now controlled by the service worker
        deadline = time.monotonic() + 10  # polled here: a polled JS string needs eval
        while not page.evaluate("navigator.serviceWorker.controller !== null"):
            assert time.monotonic() < deadline, "the service worker never took the page"
            time.sleep(0.1)
        context.set_offline(True)
        page.reload()
        page.wait_for_selector(".cert-item")
        page.wait_for_selector("#offline-note:not([hidden])")  # the server did not answer
        assert page.inner_text(".cert-item .cert-title") == "住民票の写し"
        page.screenshot(path=str(shots / "04-offline.png"), full_page=True)
        context.set_offline(False)
        context.close()
    finally:
        browser.close()


def test_refuses_a_credential_the_issuers_published_keys_do_not_verify(
    browser: Any, demo: Demo, shots: Path
) -> None:
    """The issuer's key document (/.well-known/jwt-vc-issuer) is answered, in this
    browser only, with another key under the same kid: the credential the real issuer
    signs no longer verifies, and the wallet refuses to keep it."""
    from credentials.keys import SigningKey

    s = clerk_session(demo)
    _, link, tx_code = issue_and_offer(s, demo)
    meta = requests.get(f"{demo.issuer_url}/.well-known/jwt-vc-issuer", timeout=10).json()
    impostor = SigningKey.generate().jwk
    meta["jwks"]["keys"] = [
        {**k, "x": impostor["x"], "y": impostor["y"]} for k in meta["jwks"]["keys"]
    ]
    context = browser.new_context(locale="ja-JP", viewport=MOBILE)
    context.route(
        f"{demo.issuer_url}/.well-known/jwt-vc-issuer",
        lambda route: route.fulfill(json=meta, headers={"Access-Control-Allow-Origin": "*"}),
    )
    page = context.new_page()
    page.goto(f"{demo.wallet_url}/{link[len(SCHEME) :]}")
    page.wait_for_selector("#code-step:not([hidden])")
    page.fill("#tx-code", tx_code)
    page.click("#receive-submit")
    page.wait_for_selector("#receive-error:not([hidden])", timeout=30_000)
    error = page.inner_text("#receive-error")
    assert "発行元が公開している鍵で確かめられません" in error, error
    page.screenshot(path=str(shots / "01-refused.png"), full_page=True)
    assert page.evaluate(STORED) == []  # the credential is not kept
    context.close()
