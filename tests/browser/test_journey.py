"""The whole journey in a real browser, three people in three browser contexts, against
``shomei demo``: a clerk issues a certificate at the counter; the resident receives it
into the phone wallet through the credential offer; the resident shows 氏名 and 住所
only, as a QR code; a company verifies a photo of that QR code: 有効, exactly those
claims, the anchor block; for the 住民票, the company also asks over OpenID4VP 1.0
(住所確認) and the resident answers by scanning the request QR code with the wallet's
camera (Chromium's fake capture device playing a photo of the company's screen): 有効,
exactly the requested claims, the holder check passed; the clerk's supervisor revokes
it; the same QR code now shows 取り消し済み. Once for a 住民票 (issued through the
clerk's form), once for a partnership certificate. Every step leaves a screenshot in
``build/screenshots/``."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, Demo, sign_in
from fake_camera import write_y4m

from credentials import doctypes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCHEME = "openid-credential-offer://"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1024, "height": 1300}


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder, self.n = folder, 0

    def __call__(self, page: Any, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def issue_juminhyo_by_form(page: Any, demo: Demo) -> None:
    page.click("text=住民票の写し")
    for name, value in doctypes.sample("juminhyo").items():
        if not isinstance(value, str) or name == "head_of_household":
            continue
        if name == "sex":
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", value)
    page.click("text=確認画面へ")
    page.click("text=この内容で発行する")
    page.wait_for_url(re.compile(r"/certificates/[A-Za-z0-9_-]{22}$"))


def issue_partnership(page: Any, demo: Demo) -> None:
    """Through the clerk's own session (the form has a row per child)."""
    page.goto(f"{demo.issuer_url}/certificates/new/partnership")
    token = page.get_attribute("input[name=csrf_token]", "value")
    claims = json.dumps(doctypes.sample("partnership"), ensure_ascii=False)
    r = page.request.post(
        f"{demo.issuer_url}/certificates/issue/partnership",
        form={"csrf_token": token, "claims": claims},
        max_redirects=0,
    )
    assert r.status == 302, r.text()
    page.goto(f"{demo.issuer_url}{r.headers['location']}")


def offer(clerk: Any) -> tuple[str, str]:
    """Open the certificate's credential offer: (deep link, tx_code)."""
    clerk.wait_for_selector('#anchor[data-state="anchored"]', timeout=30_000)
    clerk.click("text=ウォレットに送る（QRコードを表示）")
    clerk.wait_for_selector("#tx-code")
    link = clerk.get_attribute("#offer a[href^='openid-credential-offer://']", "href")
    demo_link = clerk.get_attribute("#demo-wallet-link", "href")
    assert demo_link and demo_link.endswith(html.unescape(link).split("//", 1)[1])
    code = re.sub(r"\D", "", clerk.inner_text("#tx-code"))
    return html.unescape(link), code


def receive(resident: Any, demo: Demo, link: str, code: str, shot: Shots) -> None:
    resident.goto(f"{demo.wallet_url}/{link[len(SCHEME) :]}")
    resident.wait_for_selector("#code-step:not([hidden])")
    resident.fill("#tx-code", code)
    shot(resident, "resident-enters-code")
    resident.click("#receive-submit")
    resident.wait_for_selector("#list-view:not([hidden]) .cert-item", timeout=30_000)
    resident.wait_for_selector(".cert-item .anchor-state[data-anchor=anchored]", timeout=30_000)
    shot(resident, "resident-has-it")


def present(resident: Any, preset: str, shot: Shots) -> Path:
    resident.click(".cert-item .cert-open")
    resident.wait_for_selector("#detail-view:not([hidden])")
    resident.click("#detail-present")
    resident.wait_for_selector("#present:not([hidden]) #present-show")
    resident.click(f'button[data-preset="{preset}"]')
    shot(resident, "resident-chooses")
    resident.click("#present-show")
    resident.wait_for_selector("#present-qr svg")
    assert resident.get_attribute("#present-qr", "data-mode") == "embedded"
    assert (resident.get_attribute("#present-copy", "data-text") or "").startswith("SH1:")
    path = shot(resident, "resident-shows-qr")
    qr = path.with_name(path.stem + "-code.png")
    resident.locator("#present-qr svg").screenshot(path=str(qr))
    return qr


def company_checks(company: Any, demo: Demo, qr: Path) -> None:
    company.goto(f"{demo.verifier_url}/")
    company.set_input_files("#upload-form input[type=file]", str(qr))
    company.click("#upload-form button[type=submit]")
    company.wait_for_selector("#verdict")


def claim_labels(company: Any) -> list[str]:
    return [t.strip() for t in company.locator(".claims th").all_inner_texts()]


def ask_over_openid4vp(company: Any, resident: Any, demo: Demo, camera: Path, shot: Shots) -> None:
    """The company asks for 住所確認 over OpenID4VP; the resident's wallet reads the
    request QR code with its camera, the resident agrees; the company's page turns to
    the verdict by itself."""
    company.goto(f"{demo.verifier_url}/")
    company.click("#preset-address")
    company.wait_for_selector("#oid4vp-qr")
    version = int(company.get_attribute("#oid4vp-qr", "data-version") or 99)
    assert version <= 10, version
    shot(company, f"company-asks-qr-version-{version}")
    # the phone's camera sees the company's screen: a photo of the QR code, as a video
    write_y4m(company.locator("#oid4vp-qr").screenshot(), camera)
    resident.context.grant_permissions(["camera"], origin=demo.wallet_url)
    resident.goto(f"{demo.wallet_url}/")
    resident.click("#request-open")
    resident.click("#vp-camera")
    resident.wait_for_selector("#vp-consent, #vp-error:not([hidden])", timeout=30_000)
    assert resident.query_selector("#vp-consent"), resident.inner_text("#answer")
    assert resident.inner_text("#vp-client") == "localhost"
    asked = resident.inner_text("#vp-asked")
    assert "住所" in asked and "生年月日" not in asked, asked
    screen = resident.inner_text("#answer")
    assert "null" not in screen.split(), screen  # nothing drawn from a missing part
    shot(resident, "resident-is-asked")
    resident.click("#vp-consent")
    resident.wait_for_selector('#vp-status[data-state="sent"], #vp-status[data-state="failed"]')
    status = resident.get_attribute("#vp-status", "data-state")
    assert status == "sent", resident.inner_text("#vp-status")
    shot(resident, "resident-answered")
    company.wait_for_selector("#verdict", timeout=15_000)
    assert company.inner_text("#verdict .word").strip() == "有効"
    assert claim_labels(company) == ["氏", "名", "住所"]
    holder = company.get_attribute('tr[data-check="holder"]', "class") or ""
    assert "pass" in holder.split()
    shot(company, "company-sees-the-answer")


def revoke(supervisor: Any, demo: Demo, cert_url: str) -> None:
    supervisor.goto(cert_url)
    supervisor.fill("#reason", "パートナーシップの解消" if "partner" in cert_url else "転出")
    supervisor.click("text=この証明書を取り消す")
    supervisor.wait_for_selector("#state .revoked")


def journey(
    browser: Any, demo: Demo, folder: Path, doc_type: str, camera: Path | None = None
) -> None:
    shot = Shots(folder)
    clerk_ctx = browser.new_context(locale="ja-JP", viewport=DESK)
    resident_ctx = browser.new_context(locale="ja-JP", viewport=PHONE, is_mobile=True)
    company_ctx = browser.new_context(locale="ja-JP", viewport=DESK)
    clerk, resident, company = (c.new_page() for c in (clerk_ctx, resident_ctx, company_ctx))
    errors: list[str] = []
    for page in (clerk, resident, company):
        page.on("pageerror", lambda e: errors.append(str(e)))

    # (1) the clerk issues at the counter
    sign_in(clerk, demo, "madoguchi")
    if doc_type == "juminhyo":
        issue_juminhyo_by_form(clerk, demo)
    else:
        issue_partnership(clerk, demo)
    cert_url = clerk.url
    shot(clerk, "clerk-issued")
    link, code = offer(clerk)
    shot(clerk, "clerk-shows-offer")

    # (2) the resident receives it into the phone wallet
    receive(resident, demo, link, code, shot)

    # (3) the resident shows only what the company needs
    preset = "住所確認" if doc_type == "juminhyo" else "関係の確認"
    qr = present(resident, preset, shot)

    # (4) the company verifies a photo of the QR code
    company_checks(company, demo, qr)
    assert company.inner_text("#verdict .word").strip() == "有効"
    labels = claim_labels(company)
    if doc_type == "juminhyo":
        assert labels == ["氏", "名", "住所"]
    else:
        assert "宣誓日" in " ".join(labels) and len(labels) >= 3
        assert not any("住所" in label for label in labels)
    assert re.search(r"\d+", company.inner_text(".anchor"))
    shot(company, "company-sees-valid")

    # (5) the company asks over OpenID4VP; the resident scans its request and agrees
    if camera is not None:
        ask_over_openid4vp(company, resident, demo, camera, shot)

    # (6) the supervisor revokes; (7) the same QR code is now revoked
    clerk_ctx.clear_cookies()
    sign_in(clerk, demo, "kanri")
    revoke(clerk, demo, cert_url)
    shot(clerk, "supervisor-revoked")
    deadline = time.monotonic() + 30  # the demo's status lists are cached for 5 s
    while True:
        company_checks(company, demo, qr)
        if "取り消し済み" in company.inner_text("#verdict"):
            break
        assert time.monotonic() < deadline, "the revocation did not reach the verifier"
        time.sleep(1)
    assert company.inner_text("#verdict .word").strip() == "無効"
    shot(company, "company-sees-revoked")
    assert errors == []
    for context in (clerk_ctx, resident_ctx, company_ctx):
        context.close()


@pytest.fixture
def camera_browser(playwright: Any, shots: Path) -> Iterator[tuple[Any, Path]]:
    """Chromium whose fake camera plays ``camera.y4m`` (written when there is
    something to show it: the video is opened when the camera starts)."""
    camera = shots / "camera.y4m"
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    yield launched, camera
    launched.close()


def test_juminhyo_journey(camera_browser: tuple[Any, Path], demo: Demo, shots: Path) -> None:
    browser, camera = camera_browser
    journey(browser, demo, shots, "juminhyo", camera)


def test_partnership_journey(browser: Any, demo: Demo, shots: Path) -> None:
    journey(browser, demo, shots, "partnership")
