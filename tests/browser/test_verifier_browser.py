"""A company employee at the standalone verifier, in a real browser, against
``shomei demo`` (the verifier trusts only the local chain's registry): a valid 住民票
by QR image and by camera, one not anchored yet, a tampered one, an unknown issuer,
and a revoked one printed on paper. Screenshots in ``build/screenshots/``."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, CSRF, Demo, clerk_session, issue_juminhyo
from fake_camera import write_y4m

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_scan_page(browser: Any, demo: Demo) -> tuple[Any, Any]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 900, "height": 1400})
    page = context.new_page()
    page.goto(f"{demo.verifier_url}/")
    return context, page


def paste(page: Any, text: str) -> None:
    page.fill("#presentation", text)
    page.click("#paste-form button[type=submit]")
    page.wait_for_selector("#verdict")


def check_status(page: Any, check: str) -> str:
    classes = page.get_attribute(f'tr[data-check="{check}"]', "class") or ""
    return next(c for c in ("pass", "fail", "warn", "skip") if c in classes.split())


def test_verdicts_for_valid_unanchored_tampered_and_unknown(
    browser: Any, demo: Demo, shots: Path
) -> None:
    context, page = open_scan_page(browser, demo)
    page.screenshot(path=str(shots / "01-scan-page.png"), full_page=True)

    # a photo of the QR code from `make demo`: anchored, valid
    page.set_input_files(
        "#upload-form input[type=file]", str(demo.data_dir / "demo" / "juminhyo-qr.png")
    )
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict .word").strip() == "有効"
    assert "山田" in page.inner_text(".claims") and "昭和55年" in page.inner_text(".claims")
    assert re.search(r"\d+", page.inner_text(".anchor"))
    assert check_status(page, "anchor") == "pass"
    page.screenshot(path=str(shots / "02-valid-qr-image.png"), full_page=True)

    # the same presentation without its anchor evidence: valid, the anchor a warning
    text = (demo.data_dir / "demo" / "juminhyo-presentation.txt").read_text().strip()
    page.goto(f"{demo.verifier_url}/")
    paste(page, text)
    assert page.inner_text("#verdict .word").strip() == "有効"
    assert check_status(page, "anchor") == "warn"
    page.screenshot(path=str(shots / "03-not-anchored.png"), full_page=True)

    # tampered: one character of the signature changed
    jwt, rest = text.split("~", 1)
    head, body, sig = jwt.split(".")
    forged = f"{head}.{body}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}~{rest}"
    page.goto(f"{demo.verifier_url}/")
    paste(page, forged)
    assert page.inner_text("#verdict .word").strip() == "無効"
    assert check_status(page, "signature") == "fail"
    page.screenshot(path=str(shots / "04-tampered.png"), full_page=True)

    # an issuer the registry does not know
    stranger = "https://not-a-city.example"
    dt = doctypes.get("juminhyo")
    now = int(time.time())
    issued = sdjwt.issue(
        doctypes.validate_claims("juminhyo", doctypes.sample("juminhyo")),
        key=SigningKey.generate(),
        issuer=stranger,
        vct=dt.vct_for(stranger),
        iat=now,
        exp=now + 86400,
        always_plain=dt.never_disclosable,
    )
    page.goto(f"{demo.verifier_url}/")
    paste(page, sdjwt.present(issued.sd_jwt, disclose=["family_name", "address"]))
    assert page.inner_text("#verdict .word").strip() == "無効"
    assert check_status(page, "issuer") == "fail"
    page.screenshot(path=str(shots / "05-unknown-issuer.png"), full_page=True)
    context.close()


def test_camera_scan_with_a_fake_capture_device(playwright: Any, demo: Demo, shots: Path) -> None:
    video = write_y4m(
        (demo.data_dir / "demo" / "juminhyo-qr.png").read_bytes(), shots / "camera.y4m"
    )
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        context = browser.new_context(locale="ja-JP", viewport={"width": 900, "height": 1400})
        context.grant_permissions(["camera"], origin=demo.verifier_url)
        page = context.new_page()
        page.goto(f"{demo.verifier_url}/")
        page.click("#start-camera")
        page.screenshot(path=str(shots / "01-camera-on.png"), full_page=True)
        page.wait_for_selector("#verdict", timeout=30_000)
        assert page.inner_text("#verdict .word").strip() == "有効"
        assert check_status(page, "anchor") == "pass"
        page.screenshot(path=str(shots / "02-camera-result.png"), full_page=True)
    finally:
        browser.close()


def test_revoked_paper_certificate_says_revoked(browser: Any, demo: Demo, shots: Path) -> None:
    # The city issues a 住民票, it is anchored, printed, then revoked.
    s = clerk_session(demo)
    cert = issue_juminhyo(s, demo)
    deadline = time.monotonic() + 30
    while s.get(f"{demo.issuer_url}/certificates/{cert}/anchor.json").json()["state"] != (
        "anchored"
    ):
        assert time.monotonic() < deadline, "not anchored in time"
        time.sleep(0.3)
    pdf = s.get(f"{demo.issuer_url}/certificates/{cert}/print.pdf")
    assert pdf.status_code == 200
    paper = shots / "certificate.pdf"
    paper.write_bytes(pdf.content)
    page_html = s.get(f"{demo.issuer_url}/certificates/{cert}").text
    token = CSRF.search(page_html)
    assert token
    r = s.post(
        f"{demo.issuer_url}/certificates/{cert}/revoke",
        data={"csrf_token": token.group(1), "reason": "転出のため"},
    )
    assert r.ok

    # The company drops the PDF on the verifier.
    context, page = open_scan_page(browser, demo)
    page.set_input_files("#upload-form input[type=file]", str(paper))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict .word").strip() == "無効"
    assert "取り消し済み" in page.inner_text("#verdict")
    assert check_status(page, "status") == "fail"
    assert check_status(page, "anchor") == "pass"
    page.screenshot(path=str(shots / "01-revoked-paper.png"), full_page=True)
    context.close()
