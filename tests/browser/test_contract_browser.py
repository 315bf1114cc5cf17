"""The contractor's signing page in a real browser, against ``shomei demo``: the clerk
uploads a contract and makes the link; the contractor opens it on a phone-sized screen,
agrees and signs with a WebCrypto key kept in IndexedDB; the supervisor approves and
both credentials are issued. Screenshots go to ``build/screenshots/``."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Demo, sign_in
from fpdf import FPDF

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def contract_pdf() -> bytes:
    doc = FPDF()
    doc.set_font("helvetica", size=14)
    doc.add_page()
    doc.cell(text="Public works contract (browser test)")
    return bytes(doc.output())


def test_contractor_signs_with_webcrypto_and_supervisor_approves(
    browser: Any, demo: Demo, shots: Path
) -> None:
    city = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 1300})
    page = city.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, demo, "madoguchi")
    page.click("text=契約")
    page.click("text=受注者を登録する")
    page.fill("#name", "株式会社ブラウザ建設")
    page.fill("#corporate_number", "7000012050002")
    page.fill("#representative", "代表取締役 試験 太郎")
    page.fill("#email", "sign@browser-kensetsu.example.jp")
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/new$"))
    page.select_option("#contractor", label="株式会社ブラウザ建設（7000012050002）")
    page.fill("#title", "市道補修工事（ブラウザ試験）")
    page.fill("#contract_number", "契第B-0001号")
    page.fill("#amount_jpy", "1100000")
    page.fill("#period_start", "2027-01-10")
    page.fill("#period_end", "2027-03-31")
    page.set_input_files(
        "#document",
        files=[{"name": "contract.pdf", "mimeType": "application/pdf", "buffer": contract_pdf()}],
    )
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/[A-Za-z0-9_-]{22}$"))
    contract_url = page.url
    page.click("#link button[type=submit]")
    link = page.input_value("#sign-link")
    page.screenshot(path=str(shots / "01-link.png"), full_page=True)

    phone = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    contractor = phone.new_page()
    contractor.on("pageerror", lambda e: errors.append(str(e)))
    contractor.goto(link)
    assert "市道補修工事（ブラウザ試験）" in contractor.content()
    contractor.check("#agree")
    contractor.click("#sign-button")
    contractor.wait_for_selector("#sign[data-signed='1']")
    assert "署名しました" in contractor.inner_text("#sign-status")
    contractor.screenshot(path=str(shots / "02-signed.png"), full_page=True)
    # The private key stays in the browser: IndexedDB holds a non-extractable key.
    extractable = contractor.evaluate(
        """() => new Promise((resolve, reject) => {
            const req = indexedDB.open("shomei-contract-keys", 1);
            req.onsuccess = () => {
                const tx = req.result.transaction("keys", "readonly");
                const all = tx.objectStore("keys").getAll();
                all.onsuccess = () => resolve(all.result.map((p) => p.privateKey.extractable));
            };
            req.onerror = () => reject(req.error);
        })"""
    )
    assert extractable == [False]
    contractor.goto(link)  # the link works once
    assert "すでに使われました" in contractor.content()

    boss = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 1300})
    supervisor = boss.new_page()
    sign_in(supervisor, demo, "kanri")
    supervisor.goto(contract_url)
    supervisor.click("#approve button[type=submit]")
    supervisor.wait_for_url(contract_url)
    assert "締結済み" in supervisor.inner_text("#state")
    assert supervisor.locator("#credentials tr.copy").count() == 2
    supervisor.screenshot(path=str(shots / "03-issued.png"), full_page=True)

    # Once anchored, the contractor's PDF with its proof, dropped alone on the verifier:
    # 原本と一致, both signatures and the anchor checked; one byte changed: 原本と不一致.
    cell = "tr.copy[data-party=contractor] td.anchor"
    deadline = time.monotonic() + 30
    while supervisor.get_attribute(cell, "data-state") != "anchored":
        assert time.monotonic() < deadline, "the contract was not anchored in time"
        time.sleep(0.5)
        supervisor.reload()
    href = supervisor.get_attribute("tr.copy[data-party=contractor] a.signed-pdf", "href")
    carrier = supervisor.request.get(f"{demo.issuer_url}{href}")
    assert carrier.ok and carrier.body().startswith(b"%PDF")
    proof = shots / "contract-with-proof.pdf"
    proof.write_bytes(carrier.body())
    company = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 1400})
    page = company.new_page()
    page.goto(f"{demo.verifier_url}/")
    page.set_input_files("#document", str(proof))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict .word").strip() == "有効"
    assert page.inner_text("#original .word").strip() == "原本と一致"
    for check in ("anchor", "document", "signature"):
        assert "pass" in (page.get_attribute(f'tr[data-check="{check}"]', "class") or "")
    assert "¥1,100,000" in page.content() and "株式会社ブラウザ建設" in page.content()
    page.screenshot(path=str(shots / "04-verifier-original.png"), full_page=True)
    tampered = bytearray(proof.read_bytes())
    tampered[len(contract_pdf()) // 2] ^= 0x01
    bad = shots / "contract-tampered.pdf"
    bad.write_bytes(bytes(tampered))
    page.goto(f"{demo.verifier_url}/")
    page.set_input_files("#document", str(bad))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict .word").strip() == "無効"
    assert page.inner_text("#original .word").strip() == "原本と不一致"
    page.screenshot(path=str(shots / "05-verifier-tampered.png"), full_page=True)
    company.close()
    assert not errors, errors
    for context in (city, phone, boss):
        context.close()


def _upload(page: Any, demo: Demo, contractor: str, title: str, number: str) -> str:
    """Upload a contract for ``contractor`` (its option label); the contract page's URL."""
    page.goto(f"{demo.issuer_url}/contracts/new")
    page.select_option("#contractor", label=contractor)
    page.fill("#title", title)
    page.fill("#contract_number", number)
    page.fill("#amount_jpy", "550000")
    page.fill("#period_start", "2027-01-10")
    page.fill("#period_end", "2027-03-31")
    page.set_input_files(
        "#document",
        files=[{"name": "contract.pdf", "mimeType": "application/pdf", "buffer": contract_pdf()}],
    )
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/[A-Za-z0-9_-]{22}$"))
    url: str = page.url
    return url


def test_a_lost_key_is_replaced_and_the_new_browser_signs(
    browser: Any, demo: Demo, shots: Path
) -> None:
    errors: list[str] = []
    city = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 1300})
    page = city.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, demo, "kanri")
    page.goto(f"{demo.issuer_url}/contracts/contractors/new")
    page.fill("#name", "株式会社鍵交換建設")
    page.fill("#corporate_number", "6000012050003")
    page.fill("#representative", "代表取締役 鍵 次郎")
    page.fill("#email", "keys@kagi-kensetsu.example.jp")
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/new$"))
    label = "株式会社鍵交換建設（6000012050003）"
    first = _upload(page, demo, label, "鍵交換試験 第1号", "契第K-0001号")
    page.click("#link button[type=submit]")
    link = page.input_value("#sign-link")

    old_phone = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    old = old_phone.new_page()
    old.on("pageerror", lambda e: errors.append(str(e)))
    old.goto(link)
    old.check("#agree")
    old.click("#sign-button")
    old.wait_for_selector("#sign[data-signed='1']")

    # The phone is lost: the supervisor revokes its key and gets a key link.
    page.goto(first)
    page.click("#replace-key")
    page.fill("#reason", "端末の紛失")
    page.check("#confirm")
    page.click("#replace button[type=submit]")
    key_link = page.input_value("#key-link-url")
    assert "端末の紛失" in page.inner_text("#revoked-keys")
    page.screenshot(path=str(shots / "01-key-replaced.png"), full_page=True)

    new_phone = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    new = new_phone.new_page()
    new.on("pageerror", lambda e: errors.append(str(e)))
    new.goto(key_link)
    new.click("#register-button")
    new.wait_for_selector("#register-key[data-done='1']")
    assert "登録しました" in new.inner_text("#register-status")
    new.screenshot(path=str(shots / "02-new-key.png"), full_page=True)

    # The next contract: the old browser's key no longer signs, the new one does.
    second = _upload(page, demo, label, "鍵交換試験 第2号", "契第K-0002号")
    page.click("#link button[type=submit]")
    link = page.input_value("#sign-link")
    old.goto(link)
    old.check("#agree")
    old.click("#sign-button")
    old.wait_for_selector("#sign-status.field-error")
    assert "登録済みの署名鍵がありません" in old.inner_text("#sign-status")
    new.goto(link)
    new.check("#agree")
    new.click("#sign-button")
    new.wait_for_selector("#sign[data-signed='1']")
    page.goto(second)
    assert "承認待ち" in page.inner_text("#state")
    assert not errors, errors
    for context in (city, old_phone, new_phone):
        context.close()
