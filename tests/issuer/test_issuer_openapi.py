"""The issuer's OpenAPI document describes every JSON endpoint of the app, and only
routes that exist: a new JSON route fails here until it is described."""

from __future__ import annotations

from flask import Flask
from openapi_testing import described, routes

#: Routes that answer no JSON: pages, forms, PDFs, static files, the description itself.
NOT_JSON = {
    ("GET", "/"),
    ("GET", "/api/openapi.json"),
    ("GET", "/static/{filename}"),
    ("GET", "/audit/"),
    ("GET", "/auth/login"),
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/certificates/{public_id}"),
    ("POST", "/certificates/{public_id}/offer"),
    ("GET", "/certificates/{public_id}/offer/{offer_id}"),
    ("GET", "/certificates/{public_id}/print.pdf"),
    ("POST", "/certificates/{public_id}/revoke"),
    ("POST", "/certificates/issue/{doc_type}"),
    ("GET", "/certificates/new/{doc_type}"),
    ("POST", "/certificates/new/{doc_type}"),
    ("GET", "/contract-sign/{token}"),
    ("GET", "/contractor-key/{token}"),
    ("GET", "/contracts/contractors/{public_id}/key"),
    ("POST", "/contracts/contractors/{public_id}/key"),
    ("GET", "/contract-sign/{token}/document.pdf"),
    ("GET", "/contracts/"),
    ("GET", "/contracts/{public_id}"),
    ("GET", "/contracts/{public_id}/amend"),
    ("POST", "/contracts/{public_id}/amend"),
    ("POST", "/contracts/{public_id}/approve"),
    ("GET", "/contracts/{public_id}/contract-{party}.pdf"),
    ("GET", "/contracts/{public_id}/credential-{party}.sd-jwt"),
    ("GET", "/contracts/{public_id}/document.pdf"),
    ("POST", "/contracts/{public_id}/link"),
    ("POST", "/contracts/{public_id}/terminate"),
    ("GET", "/contracts/contractors/new"),
    ("POST", "/contracts/contractors/new"),
    ("GET", "/contracts/new"),
    ("POST", "/contracts/new"),
    ("GET", "/keys/"),
    ("POST", "/keys/retire/{kid}"),
    ("POST", "/keys/rotate"),
    ("GET", "/users/"),
    ("POST", "/users/"),
    ("POST", "/users/{user_id}/activate"),
    ("POST", "/users/{user_id}/deactivate"),
    ("GET", "/users/{user_id}/password"),
    ("POST", "/users/{user_id}/password"),
}


def test_every_json_route_is_described_and_nothing_else(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert described(document) == routes(app) - NOT_JSON
    assert not NOT_JSON - routes(app), "a listed route no longer exists"


def test_the_description_is_public_and_json(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "/oid4vci/credential" in response.get_json()["paths"]


def test_errors_under_api_are_json(app: Flask) -> None:
    response = app.test_client().post("/api/openapi.json")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == (
        "method_not_allowed"
    )
