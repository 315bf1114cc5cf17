"""Fuzzing the issuer's JSON API (every operation of ``/api/openapi.json``): whatever
arrives, no 5xx, and every response matches the description. A share of the cases
carries real values (a pre-authorized code with its tx_code, an access token with a
key proof over a real c_nonce, a certificate id with a clerk's session, a contract
signing link with its CSRF token), so the fuzz reaches past the first lookup."""

from __future__ import annotations

import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from issuer_testing import csrf_token, sign_in
from issuer_world import GRANT, ISSUER, World, build
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credentials import _jws
from credentials.keys import SigningKey

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
WALLET = SigningKey.generate()


# Built at import, as schemathesis wants the app to read the operations from (its
# fixture loader does not run under this pytest); the directory goes at exit.
_DIRECTORY = tempfile.TemporaryDirectory(prefix="issuer-api-fuzz-")
WORLD = build(Path(_DIRECTORY.name))
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", WORLD.app)


@pytest.fixture(scope="module")
def world() -> World:
    return WORLD


@pytest.fixture(scope="module")
def clerk_cookie(world: World) -> str:
    client = world.app.test_client()
    assert sign_in(client, "clerk1").status_code == 302
    return _cookie(world, client)


@pytest.fixture(scope="module")
def contractor(world: World) -> tuple[str, str]:
    """The contractor's browser: (its session cookie, its CSRF token)."""
    client = world.app.test_client()
    token = csrf_token(client, f"/contract-sign/{world.seeds['token'][0]}")
    return _cookie(world, client), token


def _cookie(world: World, client: Any) -> str:
    name = world.app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    return f"{name}={cookie.value}"


def _proof(nonce: str) -> str:
    head = {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": WALLET.jwk}
    body = {"aud": ISSUER, "iat": int(time.time()), "nonce": nonce}
    return _jws.sign(_jws.encode_header(head), body, WALLET.private_key)


def _variant(case: schemathesis.Case) -> int:
    """0–3, fixed by the generated case: how much of it is replaced by real values."""
    return zlib.crc32(repr((case.body, case.path_parameters, case.headers)).encode()) % 4


def _seed_token(case: schemathesis.Case, world: World, variant: int) -> None:
    if variant == 0 or not isinstance(case.body, dict):
        return
    code, tx_code = world.new_offer()
    case.body["pre-authorized_code"] = code
    if variant >= 2:
        case.body["tx_code"] = tx_code
    if variant == 3:
        case.body["grant_type"] = GRANT


def _seed_credential(case: schemathesis.Case, world: World, variant: int) -> None:
    if variant == 0:
        return
    access_token, nonce = world.access_token()
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {access_token}"}
    if variant == 2 and isinstance(case.body, dict) and isinstance(case.body.get("proof"), dict):
        case.body["proof"]["jwt"] = _proof(nonce)
    if variant == 3:
        case.body = {
            "credential_configuration_id": "juminhyo",
            "proof": {"proof_type": "jwt", "jwt": _proof(nonce)},
        }


def _seed(
    case: schemathesis.Case, world: World, clerk_cookie: str, contractor: tuple[str, str]
) -> None:
    variant = _variant(case)
    operation = case.operation.label
    if operation == "POST /oid4vci/token":
        _seed_token(case, world, variant)
    elif operation == "POST /oid4vci/credential":
        _seed_credential(case, world, variant)
    elif operation == "GET /oid4vci/offers/{reference}" and variant >= 2:
        case.path_parameters = {"reference": world.offer_reference()}
    elif operation == "GET /certificates/{public_id}/anchor.json" and variant:
        case.headers = {**(case.headers or {}), "Cookie": clerk_cookie}
        if variant >= 2:
            case.path_parameters = {"public_id": world.certificate}
    elif operation.startswith(("POST /contract-sign/", "POST /contractor-key/")) and variant:
        cookie, token = contractor
        case.headers = {**(case.headers or {}), "Cookie": cookie, "X-CSRF-Token": token}
        if variant >= 2:  # the signing link, or the key link
            link = world.seeds["token"][operation.startswith("POST /contractor-key/")]
            case.path_parameters = {"token": link}


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_and_conforms_to_its_schema(
    case: schemathesis.Case, world: World, clerk_cookie: str, contractor: tuple[str, str]
) -> None:
    _seed(case, world, clerk_cookie, contractor)
    case.call_and_validate(checks=CHECKS)
