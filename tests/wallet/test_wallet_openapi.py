"""The wallet server's OpenAPI document describes every JSON endpoint of the app, and
only routes that exist: a new JSON route fails here until it is described."""

from __future__ import annotations

from openapi_testing import described, routes

from wallet_demo.app import create_app

#: Routes that answer no JSON: the page, its script, icons, static files, the ping
#: (204) and the description itself.
NOT_JSON = {
    ("GET", "/"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/ping"),
    ("GET", "/icons/icon-{size}.png"),
    ("GET", "/static/{filename}"),
    ("GET", "/sw.js"),
}


def test_every_json_route_is_described_and_nothing_else() -> None:
    app = create_app()
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert described(document) == routes(app) - NOT_JSON
    assert not NOT_JSON - routes(app), "a listed route no longer exists"
