"""The OpenAPI description of the OpenID4VP endpoints (:mod:`verifier.oid4vp_web`),
merged into the verifier's document by :mod:`verifier.openapi`."""

from __future__ import annotations

from typing import Any

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_STATE = _param("state", "the request's `state` (in its request and response URIs)")
_GONE = {
    "404": _error("No such request (or, for the request object, one passed by value)."),
    "410": _error("The request has expired."),
    "429": _error("Too many requests from this address; see Retry-After."),
}
_VERDICT = {
    "description": "Processed (OpenID4VP §8.2): verified and kept for the company's page.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["verdict"],
                "properties": {"verdict": {"enum": ["valid", "invalid", "refused"]}},
            }
        }
    },
}
_REQUEST_OBJECT = {
    "200": {
        "description": "The signed request object (JAR, `typ` oauth-authz-req+jwt, x5c).",
        "content": {"application/oauth-authz-req+jwt": {"schema": {"type": "string"}}},
    },
    "400": _error("Already answered, or a malformed `wallet_nonce`/`wallet_metadata`."),
    **_GONE,
}
_FORM = {
    "type": "object",
    "properties": {
        "vp_token": {"type": "string", "description": "JSON: {credential query id: [SD-JWT+KB]}"},
        "response": {"type": "string", "description": "direct_post.jwt: the JWE"},
        "state": {"type": "string"},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
    },
}


def paths() -> dict[str, Any]:
    """The request URI, the response URI and the page's Digital Credentials API post."""
    return {
        "/oid4vp/request/{state}": {
            "get": {
                "summary": "OpenID4VP request object by reference (request_uri)",
                "operationId": "oid4vp_request_object",
                "parameters": [_STATE],
                "responses": _REQUEST_OBJECT,
            },
            "post": {
                "summary": "The same, request_uri_method=post (wallet_nonce is echoed)",
                "operationId": "oid4vp_request_object_post",
                "parameters": [_STATE],
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "wallet_nonce": {"type": "string"},
                                    "wallet_metadata": {"type": "string"},
                                },
                            }
                        }
                    }
                },
                "responses": _REQUEST_OBJECT,
            },
        },
        "/oid4vp/response/{state}": {
            "post": {
                "summary": "OpenID4VP response URI (direct_post, direct_post.jwt)",
                "operationId": "oid4vp_response",
                "parameters": [_STATE],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": _FORM}},
                },
                "responses": {
                    "200": _VERDICT,
                    "400": _error("Malformed, wrong state, unencrypted where asked, answered."),
                    "413": _error("Too large."),
                    **_GONE,
                },
            }
        },
        "/oid4vp/dc-api/{rid}": {
            "post": {
                "summary": "What the browser's Digital Credentials API returned to the page",
                "operationId": "oid4vp_dc_api",
                "parameters": [_param("rid", "the request page's id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["data"],
                                "properties": {
                                    "protocol": {"type": "string"},
                                    "data": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _VERDICT,
                    "400": _error("Malformed, or already answered."),
                    "413": _error("Too large."),
                    **_GONE,
                },
            }
        },
    }
