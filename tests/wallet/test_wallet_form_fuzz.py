"""Random form bodies to every state-changing route of the wallet server (found in its
``url_map``): it shows no HTML form, but its frame upload, encoder and relay take
whatever a page or a script sends. Never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from form_fuzzing import (
    QUERIES,
    RAW_BODIES,
    Fields,
    form_bodies,
    path_args,
    rules_taking,
    send,
    state_changing_rules,
    url,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credentials import qr
from wallet_demo.app import create_app

APP = create_app()
RULES = {rule.endpoint: rule for rule in state_changing_rules(APP)}
PAGES = {rule.endpoint: rule for rule in rules_taking(APP, "GET")}
FIELDS = Fields(types={"frame": "file", "presentation": "text", "evidence": "text"})
GOOD = {"frame": [qr.render_png("SH1:TEST", scale=2)], "blob_id": ["A" * 26]}


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(RULES))
def test_random_form_posts_never_give_a_server_error(endpoint: str) -> None:
    rule = RULES[endpoint]
    methods = sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        args=path_args(rule, GOOD),
        body=form_bodies(FIELDS, GOOD),
        multipart=st.booleans(),
        raw=RAW_BODIES,
        method=st.sampled_from(methods),
    )
    def fuzz(args: dict[str, Any], body: Any, multipart: bool, raw: Any, method: str) -> None:
        path = url(rule, args)
        response = send(APP.test_client(), method, path, body, multipart=multipart, raw=raw)
        assert response.status_code < 500, (method, path, response.status_code)

    fuzz()


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(PAGES))
def test_random_page_requests_never_give_a_server_error(endpoint: str) -> None:
    """Every page and document (GET) with random URL arguments and query strings."""
    rule = PAGES[endpoint]

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(args=path_args(rule, GOOD), query=QUERIES)
    def fuzz(args: dict[str, Any], query: list[tuple[str, str]]) -> None:
        path = url(rule, args)
        response = APP.test_client().get(path, query_string=query)
        assert response.status_code < 500, (path, query, response.status_code)

    fuzz()
