"""The clerk's day in a real browser, against ``shomei demo``: sign in, issue a 住民票,
see it anchored on the local chain, open the print view, revoke it as a supervisor.
Every step leaves a screenshot in ``build/screenshots/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Demo, sign_in

from credentials import doctypes

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_clerk_issues_sees_anchored_prints_and_supervisor_revokes(
    browser: Any, demo: Demo, shots: Path
) -> None:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 1300})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # (1) the clerk signs in
    page.goto(f"{demo.issuer_url}/auth/login")
    page.screenshot(path=str(shots / "01-login.png"), full_page=True)
    sign_in(page, demo, "madoguchi")
    assert "窓口 花子" in page.content()
    page.screenshot(path=str(shots / "02-home.png"), full_page=True)

    # (2) fills in the 住民票 form, previews and issues
    page.click("text=住民票の写し")
    sample = doctypes.sample("juminhyo")
    for name, value in sample.items():
        if not isinstance(value, str) or name == "head_of_household":
            continue
        if name == "sex":
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", value)
    page.screenshot(path=str(shots / "03-form.png"), full_page=True)
    page.click("text=確認画面へ")
    assert sample["address"] in page.content()
    page.screenshot(path=str(shots / "04-preview.png"), full_page=True)
    page.click("text=この内容で発行する")
    page.wait_for_url(re.compile(r"/certificates/[A-Za-z0-9_-]{22}$"))
    cert_url = page.url
    assert "証明書を発行しました" in page.content()
    page.screenshot(path=str(shots / "05-issued.png"), full_page=True)

    # (3) the page follows the anchoring on its own: block, time and transaction
    page.wait_for_selector('#anchor[data-state="anchored"]', timeout=30_000)
    anchored = page.inner_text("#anchor")
    assert "記録済み" in anchored and re.search(r"0x[0-9a-f]{64}", anchored)
    page.screenshot(path=str(shots / "06-anchored.png"), full_page=True)

    # (4) the print view: an A4 PDF the browser can open
    link = page.locator("a[href$='/print.pdf']")
    if link.count():
        href = link.first.get_attribute("href")
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        pdf = requests.get(f"{demo.issuer_url}{href}", cookies=cookies, timeout=30)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        (shots / "06-print.pdf").write_bytes(pdf.content)
    else:
        pytest.fail("the certificate page has no print view link")

    # (5) the credential offer for the resident's wallet: QR code and one-time code
    page.click("text=ウォレットに送る（QRコードを表示）")
    page.wait_for_selector("#tx-code")
    assert re.fullmatch(r"\d{3} \d{3}", page.inner_text("#tx-code").strip())
    qr = page.locator("img.offer-qr")
    assert qr.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.querySelector('img.offer-qr').naturalWidth") > 100
    page.screenshot(path=str(shots / "07-offer.png"), full_page=True)

    # (6) a supervisor revokes it, with a reason
    context.clear_cookies()
    sign_in(page, demo, "kanri")
    page.goto(cert_url)
    page.fill("#reason", "転出のため")
    page.screenshot(path=str(shots / "08-revoke.png"), full_page=True)
    page.click("text=この証明書を取り消す")
    page.wait_for_selector("#state .revoked")
    assert "取り消し済み" in page.inner_text("#state")
    page.screenshot(path=str(shots / "09-revoked.png"), full_page=True)

    # (7) the English toggle works on the same page
    page.click("text=English")
    assert "Revoked" in page.inner_text("#state")
    page.screenshot(path=str(shots / "10-english.png"), full_page=True)
    assert errors == []
    context.close()
