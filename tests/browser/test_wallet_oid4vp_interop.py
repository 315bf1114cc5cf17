"""Our wallet, in Chromium, answers an OpenID4VP 1.0 verifier nobody here wrote: a
small Node server (tests/interop/oid4vp_verifier.mjs) on the OpenWallet Foundation's
``@openid4vc/openid4vp`` 0.4.6 makes the requests — signed with a self-signed
certificate (``x509_san_dns``, made here with ``cryptography``) or unsigned
(``redirect_uri``), answered by ``direct_post`` or ``direct_post.jwt`` — and verifies
what comes back with ``@sd-jwt/sd-jwt-vc`` 0.19, key-binding JWT included. The
resident pastes the request link (or opens the wallet from it), sees who asks and
what, and agrees or refuses; requests the wallet must not answer are refused.
Screenshots in ``build/screenshots/``."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fake_camera import write_y4m

from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "interop" / "oid4vp_verifier.mjs"
ISSUER = "https://city.iizuka.example"
ASKED = [["family_name"], ["given_name"], ["address"]]
SAMPLE = doctypes.sample("juminhyo")


# ------------------------------------------------------------------ fixtures
def _certificate(dns_name: str) -> dict[str, Any]:
    """A self-signed P-256 certificate for ``dns_name`` (SAN dNSName), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{dns_name} test verifier")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"x5c": [base64.b64encode(der).decode()], "key_pem": pem.decode()}


@pytest.fixture(scope="module")
def city() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory, city: SigningKey) -> Iterator[str]:
    """The Node verifier running; its base URL (http://localhost:<port>)."""
    node = shutil.which("node")
    if not node or not (ROOT / "node_modules" / "@openid4vc" / "openid4vp").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("node or node_modules missing: run `npm ci`", pytrace=False)
        pytest.skip("node or node_modules missing: run `npm ci`")
    config = tmp_path_factory.mktemp("oid4vp-verifier") / "config.json"
    config.write_text(
        json.dumps(
            {
                "host": "localhost",
                "issuer_jwks": [city.jwk],
                "certificates": {
                    "good": _certificate("localhost"),
                    "wrong": _certificate("verifier.example"),
                },
            }
        )
    )
    proc = subprocess.Popen(
        [node, str(SCRIPT), str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"listening (\d+)", line)
    if not match:
        proc.kill()
        pytest.fail(f"the Node verifier did not start: {line}{proc.stdout.read()}")
    try:
        yield f"http://localhost:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def wallet_url() -> Iterator[str]:
    from werkzeug.serving import make_server

    from wallet_demo.app import create_app

    server = make_server("127.0.0.1", free_port(), create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


# ------------------------------------------------------------------ helpers
def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def record_for(cred: str, key_id: str) -> dict[str, Any]:
    """The wallet's record of a credential (store.js's shape), as receive.js keeps it."""
    jwt, *disclosures = cred.rstrip("~").split("~")
    payload = b64u_json(jwt.split(".")[1])
    top = set(payload["_sd"])
    claims = []
    for d in disclosures:
        decoded = b64u_json(d)
        if b64u(hashlib.sha256(d.encode()).digest()) in top:
            claims.append({"name": decoded[1], "value": decoded[2], "disclosure": d})
    return {
        "id": "test-" + secrets.token_hex(8),
        "sdJwt": cred,
        "docType": "juminhyo",
        "vct": payload["vct"],
        "issuer": payload["iss"],
        "issuerName": "飯塚市",
        "issuedAt": payload["iat"] * 1000,
        "expiresAt": payload["exp"] * 1000,
        "claims": claims,
        "plain": {},
        "status": None,
        "statusValue": None,
        "keyId": key_id,
        "leafHex": "00",
        "evidenceUrl": None,
        "evidence": None,
        "receivedAt": int(time.time() * 1000),
    }


def nested_age_credential(city: SigningKey, holder_jwk: dict[str, str]) -> str:
    """A 住民票 whose ``age_equal_or_over`` is a disclosure holding its own nested
    disclosures ``"18"`` and ``"20"`` (RFC 9901 §4.2.6), signed here."""

    def disclosure(*items: Any) -> tuple[str, str]:
        raw = b64u(json.dumps([b64u(secrets.token_bytes(16)), *items]).encode())
        return raw, b64u(hashlib.sha256(raw.encode()).digest())

    inner = [disclosure(age, True) for age in ("18", "20")]
    age = disclosure("age_equal_or_over", {"_sd": sorted(d for _, d in inner)})
    family = disclosure("family_name", SAMPLE["family_name"])
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 86400,
        "vct": doctypes.get("juminhyo").vct_for(ISSUER),
        "_sd": sorted([age[1], family[1]]),
        "_sd_alg": "sha-256",
        "cnf": {"jwk": holder_jwk},
    }
    header = {"alg": "ES256", "typ": "dc+sd-jwt", "kid": city.kid}
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(payload).encode())}"
    r, s = decode_dss_signature(
        city.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    )
    signature = b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    parts = [f"{signing_input}.{signature}", family[0], age[0], *(raw for raw, _ in inner)]
    return "~".join(parts) + "~"


def wallet_with_credential(
    browser: Any, wallet_url: str, city: SigningKey, *, nested: bool = False
) -> tuple[Any, Any]:
    """A browser context whose wallet holds a 住民票 bound to a non-extractable key made there."""
    context = browser.new_context(locale="ja-JP", viewport={"width": 480, "height": 1100})
    page = context.new_page()
    page.goto(f"{wallet_url}/")
    page.wait_for_load_state("networkidle")
    holder = page.evaluate("""async () => (await import("/static/js/keys.js")).createHolderKey()""")
    if nested:
        cred = nested_age_credential(city, holder["publicJwk"])
    else:
        now = int(time.time())
        cred = sdjwt.issue(
            SAMPLE,
            key=city,
            issuer=ISSUER,
            vct=doctypes.get("juminhyo").vct_for(ISSUER),
            iat=now,
            exp=now + 86400,
            holder_jwk=holder["publicJwk"],
        ).sd_jwt
    page.evaluate(
        """async (rec) => (await import("/static/js/store.js")).putCredential(rec)""",
        record_for(cred, holder["id"]),
    )
    return context, page


def new_request(verifier: str, **options: Any) -> dict[str, Any]:
    body = {
        "prefix": "x509_san_dns",
        "mode": "direct_post",
        "certificate": "good",
        "claims": ASKED,
        "vct": doctypes.get("juminhyo").vct_for(ISSUER),
        **options,
    }
    r = requests.post(f"{verifier}/requests", json=body, timeout=30)
    assert r.status_code == 200, r.text
    made: dict[str, Any] = r.json()
    return made


def result(verifier: str, request_id: str) -> dict[str, Any]:
    r = requests.get(f"{verifier}/result/{request_id}", timeout=10)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def paste(page: Any, link: str) -> None:
    page.click("#request-open")
    page.fill("#vp-request-text", link)
    page.click("#vp-request-read")
    page.wait_for_selector("#vp-consent, #vp-refuse, #vp-error:not([hidden])")


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize(
    ("prefix", "mode"),
    [
        ("x509_san_dns", "direct_post"),
        ("x509_san_dns", "direct_post.jwt"),
        ("redirect_uri", "direct_post"),
        ("redirect_uri", "direct_post.jwt"),
    ],
)
def test_wallet_answers_a_library_verifier(
    browser: Any,
    wallet_url: str,
    verifier: str,
    city: SigningKey,
    prefix: str,
    mode: str,
    shots: Path,
) -> None:
    made = new_request(verifier, prefix=prefix, mode=mode, client_name="株式会社テスト不動産")
    assert made["link"].startswith("openid4vp://?")
    context, page = wallet_with_credential(browser, wallet_url, city)
    paste(page, made["link"])
    who = page.inner_text("#vp-client")
    trust = page.inner_text("#vp-trust")
    if prefix == "x509_san_dns":
        assert who == "localhost"
        assert "自己署名" in trust and "信頼できる認証局のものではありません" in trust
    else:
        assert who == verifier  # the origin the answer goes to
        assert "署名がありません" in trust
    asked = page.inner_text("#vp-asked")
    assert "氏: 山田" in asked and "住所: 福岡県飯塚市立岩" in asked
    assert "1980" not in asked and "生年月日" not in asked
    # a name the request declares about itself is not shown beside the proven one
    assert "株式会社テスト不動産" not in page.inner_text("#answer")
    page.screenshot(path=str(shots / "01-request.png"), full_page=True)
    page.click("#vp-consent")
    page.wait_for_selector('#vp-status[data-state="sent"], #vp-status[data-state="failed"]')
    assert page.get_attribute("#vp-status", "data-state") == "sent", page.inner_text("#vp-status")
    page.screenshot(path=str(shots / "02-sent.png"), full_page=True)

    got = result(verifier, made["id"])
    assert got["status"] == "verified", got
    [presentation] = got["presentations"]["juminhyo"]
    assert presentation["claims"] == {
        k: SAMPLE[k] for k in ("family_name", "given_name", "address")
    }
    assert presentation["kb_aud"] == made["client_id"]
    assert got["encrypted"] == (mode == "direct_post.jwt")
    if mode == "direct_post.jwt":
        assert got["jwe"]["alg"] == "ECDH-ES" and got["jwe"]["enc"] == "A128GCM"
    page.click("#vp-close")
    context.close()


def test_deep_link_post_request_uri_a256gcm_and_redirect(
    browser: Any, wallet_url: str, verifier: str, city: SigningKey
) -> None:
    made = new_request(
        verifier, mode="direct_post.jwt", enc="A256GCM", request_uri_method="post", redirect=True
    )
    context, page = wallet_with_credential(browser, wallet_url, city)
    page.goto(f"{wallet_url}/?request={quote(made['link'], safe='')}")
    page.wait_for_selector("#vp-consent, #vp-error:not([hidden])")
    assert page.query_selector("#vp-consent"), page.inner_text("#answer")
    assert "request=" not in page.url  # the request does not stay in the address bar
    page.click("#vp-consent")
    page.wait_for_url(re.compile(r"/done/"))
    assert page.inner_text("#done") == "verified"
    got = result(verifier, made["id"])
    assert got["status"] == "verified", got
    assert got["jwe"]["enc"] == "A256GCM"
    assert got["wallet_nonce"], "the wallet sent a wallet_nonce with request_uri_method=post"
    context.close()


def test_nested_age_claim_reveals_only_the_age_asked(
    browser: Any, wallet_url: str, verifier: str, city: SigningKey
) -> None:
    made = new_request(verifier, claims=[["age_equal_or_over", "20"]], mode="direct_post.jwt")
    context, page = wallet_with_credential(browser, wallet_url, city, nested=True)
    paste(page, made["link"])
    assert "20歳以上: はい" in page.inner_text("#vp-asked")  # the type metadata's label
    page.click("#vp-consent")
    page.wait_for_selector('#vp-status[data-state="sent"], #vp-status[data-state="failed"]')
    assert page.get_attribute("#vp-status", "data-state") == "sent", page.inner_text("#vp-status")
    got = result(verifier, made["id"])
    assert got["status"] == "verified", got
    [presentation] = got["presentations"]["juminhyo"]
    assert presentation["claims"] == {"age_equal_or_over": {"20": True}}  # not "18", not the name
    context.close()


@pytest.mark.parametrize("mode", ["direct_post", "direct_post.jwt"])
def test_refusing_posts_access_denied(
    browser: Any, wallet_url: str, verifier: str, city: SigningKey, mode: str
) -> None:
    made = new_request(verifier, mode=mode)
    context, page = wallet_with_credential(browser, wallet_url, city)
    paste(page, made["link"])
    page.click("#vp-refuse")
    page.wait_for_selector('#vp-status[data-state="refused"], #vp-status[data-state="failed"]')
    assert page.get_attribute("#vp-status", "data-state") == "refused", page.inner_text(
        "#vp-status"
    )
    got = result(verifier, made["id"])
    assert got["status"] == "refused" and got["error"] == "access_denied", got
    assert got["encrypted"] == (mode == "direct_post.jwt")
    context.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"by_value": True}, "署名がありません"),
        ({"certificate": "wrong"}, "「localhost」のものではありません"),
    ],
    ids=["unsigned-x509_san_dns", "certificate-san-mismatch"],
)
def test_wallet_refuses_requests_it_cannot_trust(
    browser: Any,
    wallet_url: str,
    verifier: str,
    city: SigningKey,
    options: dict[str, Any],
    message: str,
    shots: Path,
) -> None:
    made = new_request(verifier, **options)
    context, page = wallet_with_credential(browser, wallet_url, city)
    paste(page, made["link"])
    error = page.inner_text("#vp-error")
    assert message in error, error
    assert page.query_selector("#vp-consent") is None
    page.screenshot(path=str(shots / "refused.png"), full_page=True)
    assert result(verifier, made["id"])["status"] == "waiting"  # nothing was sent
    context.close()


def test_request_qr_read_by_the_camera(
    playwright: Any, wallet_url: str, verifier: str, city: SigningKey, shots: Path
) -> None:
    """The signed request by reference as a QR code (its version measured: small), read
    by the wallet's camera (Chromium's fake capture device playing a video of it)."""
    made = new_request(verifier, mode="direct_post.jwt")
    version = qr.qr_version(made["link"])
    print(f"request QR: {len(made['link'])} characters, version {version}: {made['link']}")
    assert version <= 10
    video = write_y4m(qr.render_png(made["link"], scale=6), shots / "camera.y4m")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        context, page = wallet_with_credential(browser, wallet_url, city)
        context.grant_permissions(["camera"], origin=wallet_url)
        page.click("#request-open")
        page.click("#vp-camera")
        page.wait_for_selector("#vp-consent", timeout=30_000)
        assert page.inner_text("#vp-client") == "localhost"
        page.click("#vp-consent")
        page.wait_for_selector('#vp-status[data-state="sent"], #vp-status[data-state="failed"]')
        assert page.get_attribute("#vp-status", "data-state") == "sent"
        assert result(verifier, made["id"])["status"] == "verified"
        context.close()
    finally:
        browser.close()
