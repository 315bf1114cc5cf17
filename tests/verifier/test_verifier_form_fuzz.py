"""Random bodies to every state-changing route of the verifier (found in its
``url_map``, so a new form is fuzzed without a change here): the upload and paste
form, the cross-device request form and the wallet's answer to a request. No account
and no CSRF token here (nothing is stored for a visitor): never a 5xx."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from form_fuzzing import (
    QUERIES,
    RAW_BODIES,
    Fields,
    discover,
    form_bodies,
    path_args,
    rules_taking,
    send,
    state_changing_rules,
    url,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
RULES = {rule.endpoint: rule for rule in state_changing_rules(APP)}
PAGES = {rule.endpoint: rule for rule in rules_taking(APP, "GET")}


def _presentation() -> str:
    now = int(time.time())
    credential = sdjwt.issue(
        doctypes.sample("juminhyo"),
        key=KEY,
        issuer=ISS,
        vct=doctypes.get("juminhyo").vct_for(ISS),
        iat=now - 10,
        exp=now + 86400,
    ).sd_jwt
    return sdjwt.present(credential, disclose=["family_name", "address"])


PRESENTATION = _presentation()
GOOD = {
    "presentation": [PRESENTATION, qr.encode_embedded(PRESENTATION)],
    "file": [qr.render_png(qr.encode_embedded(PRESENTATION), scale=2), PRESENTATION.encode()],
}

#: The fields of a route no page shows a form for (the APIs, the wallet's answer).
API_FIELDS = Fields(types={"presentation": "text", "file": "file", "document": "file"})


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[Any]]:
    response = APP.test_client().post("/request", data={"claims": ["family_name"]})
    assert response.status_code == 303
    return {"rid": [response.headers["Location"].split("?")[0].rsplit("/", 1)[1]]}


@pytest.fixture(scope="module")
def forms(seeds: dict[str, list[Any]]) -> Any:
    found = discover(APP, [APP.test_client()], seeds)
    assert {"web.verify", "web.new_request"} <= set(found)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(RULES))
def test_random_form_posts_never_give_a_server_error(
    endpoint: str, seeds: dict[str, list[Any]], forms: Any
) -> None:
    rule = RULES[endpoint]
    fields = forms.get(endpoint, API_FIELDS)

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        args=path_args(rule, seeds),
        body=form_bodies(fields, GOOD),
        multipart=st.booleans(),
        raw=RAW_BODIES,
    )
    def fuzz(args: dict[str, Any], body: Any, multipart: bool, raw: Any) -> None:
        client = APP.test_client()
        response = send(client, "POST", url(rule, args), body, multipart=multipart, raw=raw)
        assert response.status_code < 500, (url(rule, args), response.status_code)

    fuzz()


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(PAGES))
def test_random_page_requests_never_give_a_server_error(
    endpoint: str, seeds: dict[str, list[Any]]
) -> None:
    """Every page and document (GET) with random URL arguments and query strings."""
    rule = PAGES[endpoint]

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(args=path_args(rule, seeds), query=QUERIES)
    def fuzz(args: dict[str, Any], query: list[tuple[str, str]]) -> None:
        path = url(rule, args)
        response = APP.test_client().get(path, query_string=query)
        assert response.status_code < 500, (path, query, response.status_code)

    fuzz()
