"""Random bodies to every state-changing route of the issuer (found in its ``url_map``,
so a new form is fuzzed without a change here), signed out, as a clerk and as a
supervisor, with the session's CSRF token, a wrong one or none: never a 5xx.

The issuer is real: an initialised city key, a SQLite file database, a certificate,
an offer, a contract with its signing link (``issuer_world``). The fuzzers' own
accounts are never the target of a route's user id."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from form_fuzzing import (
    QUERIES,
    RAW_BODIES,
    Fields,
    discover,
    form_bodies,
    path_args,
    send,
    state_changing_rules,
    url,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from issuer_testing import FAST_ARGON2, csrf_token, sign_in
from issuer_world import World, build

from issuer import create_app, db

IDENTITIES = ("signed_out", "clerk1", "boss")
_STAFF = "192.0.2.10"


def _endpoints(method: str | None = None) -> list[str]:
    """The state-changing endpoints of the issuer (or those taking ``method``), read
    from a throwaway app."""
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(
            {
                "TESTING": True,
                "DATA_DIR": Path(directory) / "data",
                "DATABASE_URL": f"sqlite:///{directory}/issuer.db",
                **FAST_ARGON2,
            }
        )
        if method is None:
            endpoints = [rule.endpoint for rule in state_changing_rules(app)]
        else:
            rules = app.url_map.iter_rules()
            endpoints = sorted({r.endpoint for r in rules if method in (r.methods or set())})
        db.engine_of(app).dispose()
    return endpoints


class Browsers:
    """One client per identity with its CSRF token, signed in again after a route that
    may have ended its session (sign-in, sign-out)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._clients: dict[str, tuple[FlaskClient, str]] = {}

    def get(self, identity: str) -> tuple[FlaskClient, str]:
        if identity not in self._clients:
            client = self.world.app.test_client()
            if identity != "signed_out":
                # From an address of its own: the fuzzed sign-ins are throttled by address.
                response = sign_in(client, identity, environ_base={"REMOTE_ADDR": _STAFF})
                assert response.status_code == 302
            page = "/auth/login" if identity == "signed_out" else "/"
            self._clients[identity] = (client, csrf_token(client, page))
        return self._clients[identity]

    def forget(self, identity: str) -> None:
        self._clients.pop(identity, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build(Path(tmp_path_factory.mktemp("issuer-form-fuzz")))


@pytest.fixture(scope="module")
def browsers(world: World) -> Browsers:
    return Browsers(world)


@pytest.fixture(scope="module")
def forms(world: World, browsers: Browsers) -> dict[str, Fields]:
    contractor = world.app.test_client()
    clients = [browsers.get(i)[0] for i in IDENTITIES] + [contractor]
    found = discover(world.app, clients, world.seeds, world.extra_pages)
    # The discovery read the pages of every role: the forms of the main features.
    for endpoint in (
        "auth.login",
        "users.add",
        "certificates.preview",
        "certificates.issue",
        "contracts.create",
        "contracts.amend",
    ):
        assert endpoint in found, endpoint
    return found


@pytest.mark.slow
@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("endpoint", _endpoints())
def test_random_form_posts_never_give_a_server_error(
    endpoint: str, identity: str, world: World, browsers: Browsers, forms: dict[str, Fields]
) -> None:
    (rule,) = [r for r in state_changing_rules(world.app) if r.endpoint == endpoint]
    fields = forms.get(endpoint, Fields())
    methods = sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})

    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        args=path_args(rule, world.seeds),
        body=form_bodies(fields, world.good),
        csrf=st.sampled_from(["valid", "valid", "wrong", "none"]),
        multipart=st.booleans(),
        method=st.sampled_from(methods),
        raw=RAW_BODIES,
        address=st.ip_addresses().map(str),
    )
    def fuzz(
        args: dict[str, Any],
        body: Any,
        csrf: str,
        multipart: bool,
        method: str,
        raw: Any,
        address: str,
    ) -> None:
        client, token = browsers.get(identity)
        sent = {"valid": token, "wrong": token[::-1], "none": None}[csrf]
        if sent is not None:
            body.add("csrf_token", sent)
        path = url(rule, args)
        headers = {"X-CSRF-Token": sent} if raw and sent else {}
        environ = {"REMOTE_ADDR": address}  # from anywhere: the sign-in limit is by address
        response = send(
            client, method, path, body, multipart=multipart, raw=raw, headers=headers, **environ
        )
        assert response.status_code < 500, (method, path, response.status_code)
        if endpoint.startswith("auth."):
            browsers.forget(identity)

    fuzz()


def _pages() -> list[str]:
    """The endpoints of the issuer's pages and documents (GET), from a throwaway app."""
    return _endpoints("GET")


@pytest.mark.slow
@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("endpoint", _pages())
def test_random_page_requests_never_give_a_server_error(
    endpoint: str, identity: str, world: World, browsers: Browsers
) -> None:
    """Every page and document (GET) with random URL arguments and query strings."""
    (rule,) = [r for r in world.app.url_map.iter_rules() if r.endpoint == endpoint]

    @settings(max_examples=6, deadline=None, derandomize=True)
    @given(args=path_args(rule, world.seeds), query=QUERIES)
    def fuzz(args: dict[str, Any], query: list[tuple[str, str]]) -> None:
        path = url(rule, args)
        client, _ = browsers.get(identity)
        response = client.get(path, query_string=query)
        assert response.status_code < 500, (path, query, response.status_code)

    fuzz()
