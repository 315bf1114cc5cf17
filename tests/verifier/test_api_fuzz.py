"""Fuzzing the verifier API: whatever arrives, no 5xx, and every response matches the
OpenAPI document the app publishes."""

from __future__ import annotations

import itertools
import tempfile
import time
import zlib
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credentials import doctypes, qr, sdjwt
from credentials.keys import SigningKey
from credentials.trust import TrustList
from verifier.app import create_app
from verifier.policy import Verifier

ISS = "https://city.example"
KEY = SigningKey.generate()
TRUST = TrustList.from_json(
    TrustList.document(ISS, name="飯塚市", municipality_code="402052", jwks=[KEY.jwk])
)
# No rate limit: the fuzzer sends hundreds of requests from one address.
# Built at import, before the suite's data directory is set: the request pool gets a
# file of its own.
_POOL = tempfile.TemporaryDirectory(prefix="verifier-fuzz-")
APP = create_app(
    {
        "VERIFIER": Verifier(trust=TRUST),
        "TESTING": True,
        "RATE_LIMIT_PER_MINUTE": 0,
        "REQUESTS_DB": str(Path(_POOL.name) / "requests.db"),
    }
)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", APP)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _presentation() -> str:
    dt = doctypes.get("juminhyo")
    now = int(time.time())
    cred = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=KEY,
        issuer=ISS,
        vct=dt.vct_for(ISS),
        iat=now - 10,
        exp=now + 86400,
        always_plain=dt.never_disclosable,
    ).sd_jwt
    return sdjwt.present(cred, disclose=["family_name", "address"])


PRESENTATION = _presentation()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_and_conforms_to_its_schema(case: schemathesis.Case) -> None:
    _seed(case)
    case.call_and_validate(checks=CHECKS)


_ADDRESSES = itertools.count()


def _seed(case: schemathesis.Case) -> None:
    """Two cases in three of the request page's polling go to a real request."""
    if not case.operation.label.endswith("/request/{rid}/status"):
        return
    variant = zlib.crc32(repr((case.body, case.path_parameters)).encode()) % 3
    if variant == 0:
        return
    address = f"198.51.100.{next(_ADDRESSES) % 250 + 1}"  # the pool's quota is per address
    created = APP.test_client().post(
        "/request", data={"claims": ["family_name"]}, environ_base={"REMOTE_ADDR": address}
    )
    case.path_parameters = {"rid": created.headers["Location"].split("?")[0].rsplit("/", 1)[1]}


def post_verify(data: bytes, content_type: str) -> int:
    client = APP.test_client()
    return int(client.post("/api/verify", data=data, content_type=content_type).status_code)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=4096), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/octet-stream", "image/png", ""]
))  # fmt: skip
def test_random_bytes_never_give_a_server_error(data: bytes, content_type: str) -> None:
    assert post_verify(data, content_type) < 500


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=2000))
def test_random_presentations_never_give_a_server_error(text: str) -> None:
    client = APP.test_client()
    r = client.post("/api/verify", json={"presentation": text})
    assert r.status_code in (200, 400, 413)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(PRESENTATION)), junk=st.text(max_size=8))
def test_mangled_presentations_and_payloads_never_give_a_server_error(cut: int, junk: str) -> None:
    client = APP.test_client()
    for text in (PRESENTATION, qr.encode_embedded(PRESENTATION)):
        mangled = text[:cut] + junk + text[cut + len(junk) :]
        r = client.post("/api/verify", json={"presentation": mangled})
        assert r.status_code in (200, 400, 413)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2048), name=st.text(max_size=20))
def test_random_uploads_never_give_a_server_error(data: bytes, name: str) -> None:
    import io

    client = APP.test_client()
    for path in ("/api/verify", "/api/scan"):
        r = client.post(
            path, data={"file": (io.BytesIO(data), name or "f")}, content_type="multipart/form-data"
        )
        assert r.status_code < 500
