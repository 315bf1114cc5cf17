"""Fuzzing the wallet server's API (every operation of ``/api/openapi.json``):
whatever arrives, no 5xx, and every response matches the description. A share of the
encode requests carries a real presentation with the issuer's evidence document, and
a share of the relay fetches asks for a blob that was put."""

from __future__ import annotations

import time
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anchor import merkle
from credentials import doctypes, sdjwt
from credentials.keys import SigningKey
from wallet_demo.app import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
APP = create_app()
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", APP)
RELAY_ID = "A" * 25 + "B"


def _presentation() -> str:
    key = SigningKey.generate()
    issuer = "https://city.example"
    now = int(time.time())
    credential = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=key,
        issuer=issuer,
        vct=doctypes.get("juminhyo").vct_for(issuer),
        iat=now,
        exp=now + 86400,
    ).sd_jwt
    return sdjwt.present(credential, disclose=["family_name"])


PRESENTATION = _presentation()
LEAVES = [bytes([i]) * 32 for i in range(3)]
EVIDENCE = {"receipt": merkle.build(LEAVES).receipt(7, 1).to_json()}


def _seed(case: schemathesis.Case) -> None:
    variant = zlib.crc32(repr((case.body, case.path_parameters)).encode()) % 3
    if case.operation.label == "POST /api/encode" and isinstance(case.body, dict) and variant:
        case.body["presentation"] = PRESENTATION
        if variant == 2:
            case.body["evidence"] = EVIDENCE
    elif case.operation.label.endswith("/relay/{blob_id}") and variant:
        case.path_parameters = {"blob_id": RELAY_ID}


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_and_conforms_to_its_schema(case: schemathesis.Case) -> None:
    _seed(case)
    case.call_and_validate(checks=CHECKS)
