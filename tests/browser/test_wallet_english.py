"""The wallet in English, in a real browser against ``shomei demo``: Japanese by
default; after the language toggle, every screen (the list, receiving with its
messages, a certificate's details, choosing and previewing what to show, the QR
code, answering a request, deleting) shows no Japanese but what the certificates say
(names, addresses: marked ``data-value``), for every document type (住民票,
partnership, contract). Titles and labels come from the type metadata: fetched from
the ``vct`` at receive time and kept with the certificate, else the wallet server's
``/types.json``, which the service worker keeps for offline use."""

from __future__ import annotations

import contextlib
import html
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Demo, clerk_session
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from test_wallet_receive import issue_and_offer

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MOBILE = {"width": 390, "height": 844}
JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
# Text a resident sees or hears: visible text nodes, accessible names, the page title.
# What a certificate says (data-value) and the switch back to 日本語 (lang="ja") stay.
VISIBLE_TEXT = """() => {
  const out = [];
  const kept = (node) => node.closest("[data-value], [lang=ja]");
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const parent = n.parentElement;
    const text = n.textContent.trim();
    if (!text || !parent || kept(parent) || !parent.checkVisibility()) continue;
    out.push(text);
  }
  for (const e of document.querySelectorAll("[aria-label]")) {
    if (!kept(e) && e.checkVisibility()) out.push(e.getAttribute("aria-label"));
  }
  out.push(document.title);
  return out;
}"""
STORE = """async (arg) => {
  const receive = await import("/static/js/receive.js");
  const store = await import("/static/js/store.js");
  const record = receive.makeRecord(arg.sdJwt, {keyId: null, issuerName: arg.issuerName,
                                                docType: arg.docType});
  await store.putCredential(record);
  return record.id;
}"""
STORED = """async () => (await import("/static/js/store.js")).listCredentials()"""


def japanese_left(page: Any) -> list[str]:
    return [text for text in page.evaluate(VISIBLE_TEXT) if JAPANESE.search(text)]


def assert_english(page: Any, where: str) -> None:
    assert page.get_attribute("html", "lang") == "en", where
    left = japanese_left(page)
    assert not left, f"Japanese on the {where} screen: {left}"


def issued(doc_type: str, issuer: str) -> str:
    """A credential of ``doc_type`` from ``issuer`` (the sample claims)."""
    dt = doctypes.get(doc_type)
    now = int(time.time())
    return sdjwt.issue(
        doctypes.validate_claims(doc_type, doctypes.sample(doc_type)),
        key=SigningKey.generate(),
        issuer=issuer,
        vct=dt.vct_for(issuer),
        iat=now,
        exp=now + 86400,
        always_plain=dt.never_disclosable,
    ).sd_jwt


def verifier_request(demo: Demo) -> str:
    """A company's OpenID4VP request (住所確認) from the demo verifier: its link."""
    made = requests.post(f"{demo.verifier_url}/request", data={"preset": "address"}, timeout=30)
    assert made.status_code == 200, made.text
    link = re.search(r'id="oid4vp-link" class="button" href="([^"]+)"', made.text)
    assert link is not None, made.text
    return html.unescape(link.group(1))


def walk_certificate(page: Any, item: Any, doc_type: str, shots: Path, demo: Demo) -> None:
    """Details, choosing, the preview, the QR code and answering a request, in English."""
    item.locator(".cert-open").click()
    page.wait_for_selector("#detail-view:not([hidden])")
    dt = doctypes.get(doc_type)
    assert page.inner_text("#detail-title") == dt.title("en")
    rows = page.eval_on_selector_all(
        "#detail-claims > dt", "els => els.map((e) => [e.dataset.claim, e.textContent])"
    )
    assert len(rows) >= 3
    for claim, text in rows:
        assert text == dt.label(claim, "en"), claim
    assert_english(page, f"{doc_type} details")
    page.screenshot(path=str(shots / f"{doc_type}-1-details.png"), full_page=True)

    page.click("#detail-present")
    page.wait_for_selector("#present:not([hidden]) #present-show")
    assert_english(page, f"{doc_type} choose")
    presets = page.locator("button[data-preset]")
    if presets.count():
        presets.first.click()
    else:
        page.locator("#present .present-claims input").first.check()
    assert page.locator("#present-preview dt").count() > 0
    assert_english(page, f"{doc_type} preview")
    page.screenshot(path=str(shots / f"{doc_type}-2-preview.png"), full_page=True)
    page.click("#present-show")
    page.wait_for_selector("#present-qr svg")
    assert_english(page, f"{doc_type} QR code")
    page.screenshot(path=str(shots / f"{doc_type}-3-qr.png"), full_page=True)
    page.click("#present-close")

    page.click("#detail-present")
    page.click("#present-answer")
    page.wait_for_selector("#vp-request-read")
    page.fill("#vp-request-text", "not a request")
    page.click("#vp-request-read")
    page.wait_for_selector("#vp-error:not([hidden])")
    assert_english(page, f"{doc_type} request")
    # a company's 住所確認 over OpenID4VP: the wallet offers its 住民票 (received from
    # the demo city, bound to a key), whichever certificate the screen was opened from
    page.fill("#vp-request-text", verifier_request(demo))
    page.click("#vp-request-read")
    page.wait_for_selector("#vp-consent, #vp-missing, #vp-error:not([hidden])")
    assert page.query_selector("#vp-consent") is not None, page.inner_text("#answer")
    assert page.inner_text("#vp-client") == "localhost"
    assert_english(page, f"{doc_type} answer")
    page.screenshot(path=str(shots / f"{doc_type}-4-answer.png"), full_page=True)
    page.click("#vp-close")
    page.wait_for_selector("#answer", state="hidden")
    page.click("#tab-list")


def wait_for_titles(page: Any, titles: list[str]) -> None:
    """Wait until the list shows these titles (the list is drawn again asynchronously
    after a language switch or a new certificate), then check them."""
    script = """(want) => {
      const got = [...document.querySelectorAll('.cert-item .cert-title')]
        .map((e) => e.textContent.trim()).sort();
      return JSON.stringify(got) === JSON.stringify(want);
    }"""
    want = sorted(titles)
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(script, arg=want, timeout=10_000)
    assert sorted(page.locator(".cert-item .cert-title").all_inner_texts()) == want


def test_every_screen_in_english(browser: Any, demo: Demo, shots: Path) -> None:
    _, link, tx_code = issue_and_offer(clerk_session(demo), demo)
    context = browser.new_context(locale="ja-JP", viewport=MOBILE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{demo.wallet_url}/")
    page.wait_for_selector("#list-empty:not([hidden])")

    # Japanese first; the toggle switches every screen and is remembered.
    assert page.get_attribute("html", "lang") == "ja"
    assert page.inner_text("#list-title") == "お持ちの証明書"
    page.click("#toggle-lang")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("#toggle-lang") == "日本語"
    assert page.title() == "Certificate wallet"
    assert_english(page, "empty list")

    # Receiving: the paste step, the code step, a wrong code's message, the result.
    page.click("#tab-receive")
    page.click("#offer-paste-summary")
    assert_english(page, "receive")
    page.fill("#offer-text", "not an offer")
    page.click("#offer-paste")
    page.wait_for_selector("#receive-error:not([hidden])")
    assert_english(page, "receive (not an offer)")
    page.fill("#offer-text", link)
    page.click("#offer-paste")
    page.wait_for_selector("#code-step:not([hidden])")
    assert page.inner_text("#offer-type") == "Certificate of residence"
    assert_english(page, "receive (code)")
    page.fill("#tx-code", f"{(int(tx_code) + 1) % 1_000_000:06d}")
    page.click("#receive-submit")
    page.wait_for_selector("#receive-error:not([hidden])")
    assert "wrong code" in page.inner_text("#receive-error")
    assert_english(page, "receive (wrong code)")
    page.screenshot(path=str(shots / "receive-wrong-code.png"), full_page=True)
    page.fill("#tx-code", tx_code)
    page.click("#receive-submit")
    page.wait_for_selector("#list-view:not([hidden]) .cert-item", timeout=30_000)

    # The received certificate keeps the type metadata its vct resolves to.
    (received,) = page.evaluate(STORED)
    published = requests.get(received["vct"], timeout=10).json()
    assert received["typeMetadata"] == published

    # A partnership from the demo issuer, and a contract from an issuer that cannot be
    # reached (its labels come from the wallet's built-in types).
    page.evaluate(
        STORE,
        {"sdJwt": issued("partnership", demo.issuer_url), "issuerName": "飯塚市", "docType": None},
    )
    page.evaluate(
        STORE,
        {
            "sdJwt": issued("contract", "http://127.0.0.1:9"),
            "issuerName": "長崎市",
            "docType": None,
        },
    )
    page.click("#tab-list")
    page.wait_for_selector(".cert-item >> nth=2")
    expected = {dt: doctypes.get(dt).title("en") for dt in ("juminhyo", "partnership", "contract")}
    wait_for_titles(page, list(expected.values()))
    assert_english(page, "list")
    page.screenshot(path=str(shots / "list.png"), full_page=True)

    for doc_type, name in expected.items():
        walk_certificate(page, page.locator(".cert-item", has_text=name), doc_type, shots, demo)

    page.locator(".cert-item .cert-open").first.click()
    page.click("#detail-delete")
    page.wait_for_selector("#delete-confirm:not([hidden])")
    assert_english(page, "delete")
    page.click("#delete-no")

    # Still English after a reload; offline too (the service worker keeps the types).
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    deadline = time.monotonic() + 10
    while not page.evaluate("navigator.serviceWorker.controller !== null"):
        assert time.monotonic() < deadline, "the service worker never took the page"
        time.sleep(0.1)
    context.set_offline(True)
    page.reload()
    page.wait_for_selector(".cert-item >> nth=2")
    page.wait_for_selector("#offline-note:not([hidden])")
    wait_for_titles(page, list(expected.values()))
    assert_english(page, "offline list")
    page.locator(".cert-item", has_text=expected["contract"]).locator(".cert-open").click()
    page.wait_for_selector(
        '#detail-view:not([hidden]) #detail-claims > dt[data-claim="contract_number"]'
    )
    labels = page.locator("#detail-claims > dt").all_inner_texts()
    assert doctypes.get("contract").label("contract_number", "en") in labels
    context.set_offline(False)

    # Back to Japanese; a screen open when the language changes is drawn again, with
    # what was ticked still ticked.
    page.click("#tab-list")
    page.click("#toggle-lang")
    page.wait_for_selector("html[lang=ja]")
    wait_for_titles(page, [doctypes.get(dt).title("ja") for dt in expected])
    page.locator(".cert-item", has_text="住民票の写し").locator(".present-button").click()
    page.wait_for_selector("#present:not([hidden]) #present-show")
    assert page.inner_text("#present-title") == "住民票の写しを提示する"
    page.check("#present-claim-address")
    page.click("#toggle-lang")
    page.wait_for_selector("html[lang=en]")
    assert page.inner_text("#present-title") == "Show your Certificate of residence"
    assert page.is_checked("#present-claim-address")
    assert "Address" in page.inner_text("#present-preview")
    assert_english(page, "choose (after switching)")
    page.click("#toggle-lang")
    assert page.inner_text("#present-title") == "住民票の写しを提示する"
    assert errors == []
    context.close()
