"""The wallet's OpenID4VP modules in the browser, on requests made here: what
oid4vp.js accepts and refuses by value (client identifier prefixes, signatures,
certificates, response modes, parameters it does not support), what x509.js reads
from a certificate ``cryptography`` made, and how dcql.js selects credentials and
claims (claim_sets, credential_sets, values, vct, formats)."""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from credentials import doctypes, sdjwt
from credentials.keys import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RESPONSE_URI = "https://verifier.example/response"
VCT = "https://city.example/vct/juminhyo/1"
QUERY = {
    "credentials": [
        {
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [VCT]},
            "claims": [{"path": ["address"]}],
        }
    ]
}


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    from werkzeug.serving import make_server

    from wallet_demo.app import create_app

    server = make_server("127.0.0.1", free_port(), create_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{server.server_port}/")
    page.wait_for_selector("#list-view:not([hidden])")
    yield page
    context.close()
    server.shutdown()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def certificate(dns: str, *, days: int = 1, key: Any = None) -> tuple[Any, bytes]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test verifier")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


def signed(payload: dict[str, Any], key: Any, der: bytes, **header: Any) -> str:
    head = {"alg": "ES256", "typ": "oauth-authz-req+jwt", "x5c": [base64.b64encode(der).decode()]}
    head.update(header)
    data = f"{b64u(json.dumps(head).encode())}.{b64u(json.dumps(payload).encode())}"
    r, s = decode_dss_signature(key.sign(data.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{data}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def request(client_id: str, **overrides: Any) -> dict[str, Any]:
    doc = {
        "client_id": client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": RESPONSE_URI,
        "nonce": "n-0S6_WzA2Mj",
        "state": "s-1",
        "dcql_query": QUERY,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def by_value(doc: dict[str, Any]) -> str:
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}
    return "openid4vp://?" + urlencode(flat)


def read(page: Any, link: str) -> dict[str, Any]:
    """readRequest's result, or {"error": its English message}."""
    out: dict[str, Any] = page.evaluate(
        """async (link) => {
            const m = await import('/static/js/oid4vp.js');
            try { return await m.readRequest(link); }
            catch (e) { return {error: e.en || e.message}; }
        }""",
        link,
    )
    return out


def x509_link(payload: dict[str, Any], key: Any, der: bytes, **header: Any) -> str:
    return "openid4vp://?" + urlencode(
        {"client_id": payload["client_id"], "request": signed(payload, key, der, **header)}
    )


# ------------------------------------------------------------------ requests
def test_a_signed_x509_san_dns_request_is_read(page: Any) -> None:
    key, der = certificate("verifier.example")
    got = read(page, x509_link(request("x509_san_dns:verifier.example"), key, der))
    assert "error" not in got, got
    assert got["certificate"]["dnsName"] == "verifier.example"
    assert got["certificate"]["selfIssued"] is True and got["certificate"]["trusted"] is False
    assert got["clientId"] == "x509_san_dns:verifier.example"
    assert got["nonce"] == "n-0S6_WzA2Mj" and got["state"] == "s-1"
    assert got["query"]["credentials"][0]["vctValues"] == [VCT]


def test_an_unsigned_redirect_uri_request_is_read(page: Any) -> None:
    got = read(page, by_value(request(f"redirect_uri:{RESPONSE_URI}")))
    assert "error" not in got, got
    assert got["certificate"] is None and got["responseMode"] == "direct_post"


def _refusals() -> list[Any]:
    key, der = certificate("verifier.example")
    other, _ = certificate("verifier.example")
    _, expired = certificate("verifier.example", days=-1, key=key)
    x509_id = "x509_san_dns:verifier.example"
    redirect_id = f"redirect_uri:{RESPONSE_URI}"
    none_alg = b64u(json.dumps({"alg": "none", "typ": "oauth-authz-req+jwt"}).encode())
    payload = b64u(json.dumps(request(x509_id)).encode())
    return [
        ("no prefix", by_value(request("https://verifier.example")), "not supported"),
        (
            "did prefix",
            by_value(request("decentralized_identifier:did:example:1")),
            "not supported",
        ),
        ("x509 unsigned", by_value(request(x509_id)), "must be a signed request object"),
        (
            "alg none",
            "openid4vp://?"
            + urlencode({"client_id": x509_id, "request": f"{none_alg}.{payload}."}),
            "ES256 only",
        ),
        (
            "wrong typ",
            x509_link(request(x509_id), key, der, typ="JWT"),
            "typ must be oauth-authz-req+jwt",
        ),
        ("other signer", x509_link(request(x509_id), other, der), "does not verify"),
        ("expired certificate", x509_link(request(x509_id), key, expired), "validity period"),
        (
            "SAN mismatch",
            x509_link(request("x509_san_dns:bank.example"), key, der),
            "not for bank.example",
        ),
        (
            "response_uri elsewhere",
            x509_link(request(x509_id, response_uri="https://evil.example/r"), key, der),
            "is not on the verifier's name",
        ),
        (
            "client_id differs",
            "openid4vp://?"
            + urlencode(
                {
                    "client_id": x509_id,
                    "request": signed(request("x509_san_dns:x.example"), key, der),
                }
            ),
            "differs",
        ),
        (
            "signed redirect_uri",
            "openid4vp://?"
            + urlencode(
                {"client_id": redirect_id, "request": signed(request(redirect_id), key, der)}
            ),
            "cannot send a request object",
        ),
        ("fragment", by_value(request(redirect_id, response_mode="fragment")), "not supported"),
        (
            "redirect_uri elsewhere",
            by_value(request("redirect_uri:https://a.example/cb")),
            "is not the response_uri",
        ),
        (
            "http response_uri",
            by_value(request("redirect_uri:http://a.example/r", response_uri="http://a.example/r")),
            "https",
        ),
        (
            "scope",
            by_value(request(redirect_id, dcql_query=None, scope="pid")),
            "scope is not supported",
        ),
        (
            "presentation_definition",
            by_value(request(redirect_id, presentation_definition={})),
            "draft",
        ),
        (
            "transaction_data",
            by_value(request(redirect_id, transaction_data=["e30"])),
            "transaction_data",
        ),
        ("no nonce", by_value(request(redirect_id, nonce=None)), "nonce is missing"),
        ("response_type", by_value(request(redirect_id, response_type="code")), "not vp_token"),
        (
            "jwt without key",
            by_value(request(redirect_id, response_mode="direct_post.jwt", client_metadata={})),
            "P-256 ECDH-ES key",
        ),
        (
            "unsupported enc",
            by_value(
                request(
                    redirect_id,
                    response_mode="direct_post.jwt",
                    client_metadata={
                        "jwks": {"keys": [{**SigningKey.generate().jwk, "kid": "k", "use": "enc"}]},
                        "encrypted_response_enc_values_supported": ["A128CBC-HS256"],
                    },
                )
            ),
            "none of the content encryptions",
        ),
        (
            "bad dcql id",
            by_value(
                request(
                    redirect_id,
                    dcql_query={"credentials": [{"id": "a b", "format": "dc+sd-jwt", "meta": {}}]},
                )
            ),
            "DCQL",
        ),
        (
            "request_uri_method",
            "openid4vp://?"
            + urlencode(
                {"client_id": x509_id, "request_uri": RESPONSE_URI, "request_uri_method": "put"}
            ),
            "neither get nor post",
        ),
    ]


@pytest.mark.parametrize(
    ("link", "message"), [c[1:] for c in _refusals()], ids=[c[0] for c in _refusals()]
)
def test_requests_the_wallet_refuses(page: Any, link: str, message: str) -> None:
    got = read(page, link)
    assert message in got.get("error", ""), got


def test_certificate_fields(page: Any) -> None:
    _, der = certificate("verifier.example")
    got = page.evaluate(
        """async (bytes) => {
            const m = await import('/static/js/x509.js');
            const c = m.parseCertificate(new Uint8Array(bytes));
            const days = (c.notAfter - c.notBefore) / 864e5;
            return {dns: c.dnsNames, p256: c.p256, self: c.selfIssued, days};
        }""",
        list(der),
    )
    assert got == {"dns": ["verifier.example"], "p256": True, "self": True, "days": 3}


# ------------------------------------------------------------------ DCQL
@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    city = SigningKey.generate()
    now = int(time.time())
    out = []
    for vct, claims in [
        (VCT, doctypes.sample("juminhyo")),
        ("https://city.example/vct/partnership/1", doctypes.sample("partnership")),
    ]:
        cred = sdjwt.issue(
            claims, key=city, issuer="https://city.example", vct=vct, iat=now, exp=now + 3600
        ).sd_jwt
        out.append({"id": vct, "sdJwt": cred, "vct": vct})
    return out


def select(page: Any, query: dict[str, Any], records: list[dict[str, Any]]) -> Any:
    return page.evaluate(
        """async ([query, records]) => {
            const m = await import('/static/js/dcql.js');
            let found;
            try { found = m.match(m.readQuery(query), records); }
            catch (e) { return {error: e.en}; }
            return {
              answers: found.answers.map((a) => ({id: a.queryId, required: a.required,
                records: a.choices.map((c) => c.record.id),
                claims: a.choices.map((c) => c.claims.map((x) => [x.path, x.values]))})),
              missing: found.missing,
            };
        }""",
        [query, records],
    )


def cq(qid: str, vct: str, *paths: list[Any], **extra: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"id": qid, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]}, **extra}
    if paths:
        q["claims"] = [{"path": p} for p in paths]
    return q


def test_dcql_claims_and_vct(page: Any, records: list[dict[str, Any]]) -> None:
    got = select(page, {"credentials": [cq("pid", VCT, ["family_name"], ["address"])]}, records)
    assert got["missing"] == []
    [answer] = got["answers"]
    assert answer["records"] == [VCT]
    assert answer["claims"] == [
        [[["family_name"], ["山田"]], [["address"], ["福岡県飯塚市立岩1234番地5"]]]
    ]


def test_dcql_claim_sets_take_the_first_option_the_credential_satisfies(
    page: Any, records: list[dict[str, Any]]
) -> None:
    query = {
        "credentials": [
            {
                **cq("pid", VCT),
                "claims": [
                    {"id": "age", "path": ["age_equal_or_over", "20"]},
                    {"id": "birth", "path": ["birthdate"]},
                ],
                "claim_sets": [["age"], ["birth"]],
            }
        ]
    }
    [answer] = select(page, query, records)["answers"]
    assert answer["claims"] == [[[["birthdate"], ["1980-04-01"]]]]


def test_dcql_values_and_missing(page: Any, records: list[dict[str, Any]]) -> None:
    ok = {
        "credentials": [
            {**cq("pid", VCT), "claims": [{"path": ["family_name"], "values": ["山田"]}]}
        ]
    }
    assert select(page, ok, records)["missing"] == []
    other = {
        "credentials": [
            {**cq("pid", VCT), "claims": [{"path": ["family_name"], "values": ["佐藤"]}]}
        ]
    }
    assert select(page, other, records)["missing"] == ["pid"]
    wrong_vct = {"credentials": [cq("pid", "https://other.example/pid", ["family_name"])]}
    assert select(page, wrong_vct, records)["missing"] == ["pid"]
    mdoc = {"credentials": [{"id": "m", "format": "mso_mdoc", "meta": {"doctype_value": "x"}}]}
    assert select(page, mdoc, records)["missing"] == ["m"]


def test_dcql_credential_sets(page: Any, records: list[dict[str, Any]]) -> None:
    query = {
        "credentials": [
            cq("mdl", "https://other.example/mdl", ["family_name"]),
            cq("pid", VCT, ["family_name"]),
            cq("pship", "https://city.example/vct/partnership/1"),
        ],
        "credential_sets": [
            {"options": [["mdl"], ["pid"]]},
            {"options": [["pship"]], "required": False},
        ],
    }
    got = select(page, query, records)
    assert got["missing"] == []
    assert [(a["id"], a["required"]) for a in got["answers"]] == [("pid", True), ("pship", False)]
    assert got["answers"][1]["claims"] == [[]]  # no claims asked: only that it is held
    unmet = {**query, "credential_sets": [{"options": [["mdl"]]}]}
    assert select(page, unmet, records)["missing"] == ["mdl"]
    assert "error" in select(page, {**query, "credential_sets": [{"options": [["nope"]]}]}, records)
