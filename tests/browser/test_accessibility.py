"""axe-core (npm, ``node_modules/axe-core``) over every page of the three apps, in
Japanese and in English, against one ``shomei demo``: nothing ``serious`` or ``critical``.

The pages: the issuer's sign-in (and refused); as clerk and as supervisor the home page,
both issue forms (empty, with errors, and the preview), a certificate and its offer, the
contracts list, new contractor, new contract, a contract and its amendment form, the
contractor's signing page (before and after signing), the key replacement and key
registration pages, users, a password page, audit, keys, and the error pages (403, 404);
the verifier's scan page, a request page and its refusal, a result valid and invalid and
its error page; the wallet's list (empty and with a certificate), receive (and its
error), a certificate's details (delete confirmation, large text), the present screen
and the OpenID4VP answer screen. Each problem names the page, the rule id and the
elements it found."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import ROOT, Demo, sign_in
from test_contract_browser import contract_pdf
from test_wallet_present import demo_record

from credentials import doctypes
from issuer.certificates import forms

pytestmark = [pytest.mark.browser, pytest.mark.slow]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
LANGS = ("ja", "en")


def axe(page: Any, where: str) -> list[str]:
    """The serious and critical violations axe finds on ``page``, one line each."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))"""
    )
    return [
        f"{where}: {v['id']} ({v['impact']}) at {', '.join(v['targets'])}"
        for v in found
        if v["impact"] in BLOCKING
    ]


def new_context(browser: Any, width: int, height: int) -> Any:
    """A browser context that lets axe's script in past the apps' Content-Security-Policy."""
    size = {"width": width, "height": height}
    context = browser.new_context(locale="ja-JP", viewport=size, bypass_csp=True)
    context.set_default_timeout(10_000)
    return context


def report(problems: list[str]) -> str:
    return "axe found serious or critical violations:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the issuer
def preview_form(page: Any, doc_type: str, where: str, problems: list[str]) -> None:
    """The empty form, the form sent empty (with errors), then the preview."""
    page.goto(page.url.split("/certificates/")[0] + f"/certificates/new/{doc_type}")
    problems += axe(page, f"{where} form {doc_type}")
    page.click("main form button.primary[type=submit]")
    page.wait_for_load_state()
    problems += axe(page, f"{where} form {doc_type} with errors")
    values = forms.form_values(doc_type, doctypes.sample(doc_type))
    page.evaluate(
        """(values) => {
            for (const [name, value] of Object.entries(values)) {
                const el = document.querySelector(`[name="${name}"]`);
                if (!el) continue;
                if (el.type === "checkbox") el.checked = Boolean(value);
                else el.value = value;
            }
        }""",
        values,
    )
    page.click("main form button.primary[type=submit]")
    page.wait_for_load_state()
    problems += axe(page, f"{where} preview {doc_type}")


def make_contract(page: Any, demo: Demo, lang: str) -> str:
    """A contract made by the clerk through the pages (a new contractor for each
    language, for the other browser tests share the demo); its page's URL."""
    base = "00001205" + ("1234" if lang == "ja" else "5678")
    page.goto(f"{demo.issuer_url}/contracts/contractors/new")
    page.fill("#name", f"株式会社アクセス建設（{lang}）")
    number = doctypes.corporate_number_check_digit(base) + base
    page.fill("#corporate_number", number)
    page.fill("#representative", "代表取締役 試験 花子")
    page.fill("#email", "sign@access-kensetsu.example.jp")
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/new$"))
    page.select_option("#contractor", label=f"株式会社アクセス建設（{lang}）（{number}）")
    page.fill("#title", "市道補修工事（アクセシビリティ試験）")
    page.fill("#contract_number", f"契第A-{lang}号")
    page.fill("#amount_jpy", "1100000")
    page.fill("#period_start", "2027-01-10")
    page.fill("#period_end", "2027-03-31")
    page.set_input_files(
        "#document",
        files=[{"name": "contract.pdf", "mimeType": "application/pdf", "buffer": contract_pdf()}],
    )
    page.click("form.card button.primary")
    page.wait_for_url(re.compile(r"/contracts/[A-Za-z0-9_-]{22}$"))
    return str(page.url)


def test_issuer_pages(browser: Any, demo: Demo) -> None:
    problems: list[str] = []
    base = demo.issuer_url
    for lang in LANGS:
        context = new_context(browser, 1024, 900)
        page = context.new_page()
        page.goto(f"{base}/auth/login?lang={lang}")
        problems += axe(page, f"[{lang}] sign-in")
        page.fill("#username", "madoguchi")
        page.fill("#password", "wrong password")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        problems += axe(page, f"[{lang}] sign-in refused")
        sign_in(page, demo, "madoguchi")
        problems += axe(page, f"[{lang}] clerk home")
        for doc_type in ("juminhyo", "partnership"):
            preview_form(page, doc_type, f"[{lang}] clerk", problems)
        page.click("form button.primary[type=submit]")  # issue the partnership preview
        page.wait_for_url(re.compile(r"/certificates/[A-Za-z0-9_-]+$"))
        problems += axe(page, f"[{lang}] certificate")
        page.click("form[action$='/offer'] button[type=submit]")
        page.wait_for_url(re.compile(r"/offer/"))
        problems += axe(page, f"[{lang}] certificate offer")
        contract_url = make_contract(page, demo, lang)
        problems += axe(page, f"[{lang}] contract")
        page.click("#link button[type=submit]")
        page.wait_for_selector("#sign-link")
        problems += axe(page, f"[{lang}] contract with signing link")
        sign_link = page.input_value("#sign-link")
        for path, name in [
            ("/contracts/", "contracts list"),
            ("/contracts/new", "new contract"),
            ("/contracts/contractors/new", "new contractor"),
            ("/users/", "403 users (clerk)"),
            ("/certificates/nonexistent", "404"),
        ]:
            page.goto(f"{base}{path}")
            problems += axe(page, f"[{lang}] clerk {name}")
        # the contractor's phone: the signing page
        phone = new_context(browser, 390, 844)
        signer = phone.new_page()
        signer.goto(sign_link + ("&" if "?" in sign_link else "?") + f"lang={lang}")
        problems += axe(signer, f"[{lang}] contractor's signing page")
        signer.check("#agree")
        signer.click("#sign-button")
        signer.wait_for_selector("#sign[data-signed='1']")
        problems += axe(signer, f"[{lang}] contractor's signing page, signed")
        phone.close()
        # the supervisor
        context.close()
        context = new_context(browser, 1024, 900)
        page = context.new_page()
        page.goto(f"{base}/auth/login?lang={lang}")
        sign_in(page, demo, "kanri")
        problems += axe(page, f"[{lang}] supervisor home")
        page.goto(contract_url)
        problems += axe(page, f"[{lang}] supervisor contract")
        page.goto(f"{contract_url}/amend")
        problems += axe(page, f"[{lang}] amend contract form")
        for path, name in [
            ("/users/", "users"),
            ("/audit/", "audit"),
            ("/keys/", "keys"),
            ("/contracts/", "contracts list"),
        ]:
            page.goto(f"{base}{path}")
            problems += axe(page, f"[{lang}] supervisor {name}")
        page.goto(f"{base}/users/")
        page.click("a[href$='/password']")
        page.wait_for_load_state()
        problems += axe(page, f"[{lang}] password")
        key_page(browser, page, contract_url, lang, problems)
        context.close()
    assert not problems, report(problems)


def key_page(browser: Any, page: Any, contract_url: str, lang: str, problems: list[str]) -> None:
    """The supervisor replaces the contractor's key; the contractor registers a new one."""
    page.goto(contract_url)
    page.click("#replace-key")
    problems += axe(page, f"[{lang}] contractor key replacement")
    page.fill("#reason", "端末の紛失")
    page.check("#confirm")
    page.click("#replace button[type=submit]")
    key_link = page.input_value("#key-link-url")
    problems += axe(page, f"[{lang}] contractor key replacement with link")
    phone = new_context(browser, 390, 844)
    contractor = phone.new_page()
    contractor.goto(key_link + ("&" if "?" in key_link else "?") + f"lang={lang}")
    problems += axe(contractor, f"[{lang}] contractor's key registration")
    contractor.click("#register-button")
    contractor.wait_for_selector("#register-key[data-done='1']")
    problems += axe(contractor, f"[{lang}] contractor's key registration, done")
    phone.close()


# ------------------------------------------------------------------ the verifier
def refuse(page: Any, demo: Demo) -> None:
    """The resident declines the request on the page: the page moves to the refusal."""
    link = page.get_attribute("#oid4vp-link", "href") or ""
    request_uri = parse_qs(urlsplit(link).query)["request_uri"][0]
    state = request_uri.rstrip("/").rsplit("/", 1)[-1]
    r = requests.post(
        f"{demo.verifier_url}/oid4vp/response/{state}",
        data={"error": "access_denied", "state": state},
        timeout=10,
    )
    assert r.ok, r.text
    page.wait_for_url(re.compile(r"/result"))
    page.wait_for_load_state()


def test_verifier_pages(browser: Any, demo: Demo) -> None:
    problems: list[str] = []
    credential = (demo.data_dir / "demo" / "juminhyo.sd-jwt").read_text().strip()
    tampered = credential[:40] + ("A" if credential[40] != "A" else "B") + credential[41:]
    for lang in LANGS:
        context = new_context(browser, 1024, 900)
        page = context.new_page()
        query = "?lang=en" if lang == "en" else ""
        for text, name in [(credential, "valid"), (tampered, "invalid")]:
            page.goto(f"{demo.verifier_url}/{query}")
            if name == "valid":
                problems += axe(page, f"[{lang}] scan page")
            page.fill("#presentation", text)
            page.click("#paste-form button[type=submit]")
            page.wait_for_selector("#verdict")
            problems += axe(page, f"[{lang}] result {name}")
        page.goto(f"{demo.verifier_url}/{query}")
        page.check('#request-form input[value="family_name"]')
        page.click("#request-start")
        page.wait_for_selector("#oid4vp-qr")
        problems += axe(page, f"[{lang}] request page")
        refuse(page, demo)
        problems += axe(page, f"[{lang}] request refused")
        page.goto(f"{demo.verifier_url}/request/nonexistent/result{query}")
        problems += axe(page, f"[{lang}] error page")
        context.close()
    assert not problems, report(problems)


# ------------------------------------------------------------------ the wallet
def test_wallet_screens(browser: Any, demo: Demo) -> None:
    problems: list[str] = []
    record = demo_record(demo)
    for lang in LANGS:
        context = new_context(browser, 480, 1000)
        page = context.new_page()
        page.goto(f"{demo.wallet_url}/?lang={lang}")
        page.wait_for_load_state("networkidle")
        problems += axe(page, f"[{lang}] list, empty")
        page.click("#tab-receive")
        problems += axe(page, f"[{lang}] receive")
        page.click("#offer-paste-summary")
        page.fill("#offer-text", "not an offer")
        page.click("#offer-paste")
        page.wait_for_selector("#receive-error:not([hidden])")
        problems += axe(page, f"[{lang}] receive, error")
        page.evaluate(
            """async (rec) => {
                const store = await import("/static/js/store.js");
                await store.putCredential(rec);
            }""",
            record,
        )
        page.reload()
        page.wait_for_selector("#cert-list li")
        problems += axe(page, f"[{lang}] list")
        page.click("#cert-list li button, #cert-list li a")
        page.wait_for_selector("#detail-view:not([hidden])")
        problems += axe(page, f"[{lang}] details")
        page.click("#detail-delete")
        page.wait_for_selector("#delete-confirm:not([hidden])")
        problems += axe(page, f"[{lang}] details, delete?")
        page.click("#delete-no")
        page.click("#toggle-large")
        problems += axe(page, f"[{lang}] details, large text")
        page.click("#detail-present")
        page.wait_for_selector("#present:not([hidden]) #present-show")
        problems += axe(page, f"[{lang}] present, choose")
        page.click("button[data-preset]")
        page.click("#present-show")
        page.wait_for_selector("#present-qr svg")
        problems += axe(page, f"[{lang}] present, QR")
        page.click("#present-close")
        page.click("#tab-list")
        page.click("#request-open")
        page.wait_for_selector("#answer:not([hidden])")
        problems += axe(page, f"[{lang}] OpenID4VP answer")
        context.close()
    assert not problems, report(problems)
