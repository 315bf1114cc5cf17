"""The verifier's OpenAPI document describes every JSON endpoint of the app, and only
routes that exist: a new JSON route fails here until it is described."""

from __future__ import annotations

from openapi_testing import described, routes

from verifier.app import create_app

#: Routes that answer no JSON: the pages, the forms behind them, static files and the
#: description itself.
NOT_JSON = {
    ("GET", "/"),
    ("GET", "/api/openapi.json"),
    ("GET", "/static/{filename}"),
    ("POST", "/verify"),
    ("POST", "/request"),
    ("GET", "/request/{rid}"),
    ("GET", "/request/{rid}/result"),
}


def test_every_json_route_is_described_and_nothing_else() -> None:
    app = create_app({"TESTING": True})
    document = app.test_client().get("/api/openapi.json").get_json()
    assert described(document) == routes(app) - NOT_JSON
    assert not NOT_JSON - routes(app), "a listed route no longer exists"
