"""The OpenAPI 3.1 description of the wallet server's JSON endpoints (``GET
/api/openapi.json``): QR encoding, camera frames, the link-mode relay, the type
metadata and the web app manifest.

``tests/wallet/test_wallet_openapi.py`` compares it with the app's routes, so a new JSON route
cannot go undescribed."""

from __future__ import annotations

from typing import Any

from edges.openapi import ERROR, REF, error_response, json_response

from . import encode, relay

_STRING = {"type": "string"}
_BINARY = {"type": "string", "format": "binary"}
_BLOB_ID = {
    "name": "blob_id",
    "in": "path",
    "required": True,
    "schema": _STRING,
    "description": "26 base32 characters, chosen by the wallet",
}

_SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "EncodeRequest": {
        "type": "object",
        "required": ["presentation"],
        "properties": {
            "presentation": {"type": "string", "description": "an SD-JWT presentation"},
            "evidence": {
                "description": "the issuer's evidence document (GET /oid4vci/evidence/…)",
                "type": ["object", "null"],
            },
        },
    },
    "Encoded": {
        "oneOf": [
            {
                "type": "object",
                "required": ["mode", "payload", "version"],
                "properties": {
                    "mode": {"const": "embedded"},
                    "payload": _STRING,
                    "version": {"type": "integer", "minimum": 1, "maximum": 40},
                },
            },
            {
                "type": "object",
                "required": ["mode", "container"],
                "properties": {"mode": {"const": "too_large"}, "container": _STRING},
            },
        ]
    },
    "Scanned": {
        "type": "object",
        "required": ["found"],
        "properties": {"found": {"type": "boolean"}, "text": _STRING},
    },
}


def _encode_path() -> dict[str, Any]:
    return {
        "post": {
            "summary": "A presentation (and its anchor evidence) as a QR payload",
            "operationId": "encode",
            "parameters": [
                {
                    "name": "container",
                    "in": "query",
                    "required": False,
                    "schema": _STRING,
                    "description": "1: always a link-mode container",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF + "EncodeRequest"}}},
            },
            "responses": {
                "200": json_response("The QR payload or container.", {"$ref": REF + "Encoded"}),
                "400": error_response("Not a JSON object, not an SD-JWT, or unusable evidence."),
                "413": error_response(f"The body exceeds {encode.MAX_BODY} bytes."),
            },
        }
    }


def _scan_path(max_frame: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": "The text of the first QR code in one camera frame",
            "operationId": "scan",
            "requestBody": {
                "required": True,
                "content": {
                    "image/jpeg": {"schema": _BINARY},
                    "image/png": {"schema": _BINARY},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["frame"],
                            "properties": {"frame": _BINARY},
                        }
                    },
                },
            },
            "responses": {
                "200": json_response("Found or not.", {"$ref": REF + "Scanned"}),
                "400": error_response("No image, or an unreadable one."),
                "413": error_response(f"The frame exceeds {max_frame} bytes."),
                "503": error_response("Busy decoding other frames; see Retry-After."),
            },
        }
    }


def _relay_path() -> dict[str, Any]:
    return {
        "put": {
            "summary": "Leave a sealed presentation for one verifier to fetch",
            "operationId": "relay_put",
            "parameters": [_BLOB_ID],
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": _BINARY}},
            },
            "responses": {
                "201": json_response(
                    "Stored.",
                    {
                        "type": "object",
                        "required": ["ok", "expires_in"],
                        "properties": {
                            "ok": {"const": True},
                            "expires_in": {"type": "integer"},
                        },
                    },
                ),
                "400": error_response("A malformed id, or not a sealed blob."),
                "409": error_response("This id was used before."),
                "413": error_response(f"The blob exceeds {relay.MAX_BLOB} bytes."),
                "429": error_response(
                    "This address has as many blobs waiting as it may; see Retry-After."
                ),
                "503": error_response("The relay is full (blobs or bytes); see Retry-After."),
            },
        },
        "get": {
            "summary": "Fetch (and delete) a sealed presentation",
            "operationId": "relay_get",
            "parameters": [_BLOB_ID],
            "responses": {
                "200": {
                    "description": "The sealed blob, handed out once.",
                    "content": {"application/octet-stream": {"schema": _BINARY}},
                },
                "404": error_response("Unknown, fetched already, or expired."),
            },
        },
    }


def _document_path(summary: str, media_type: str, operation_id: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": operation_id,
            "responses": {
                "200": {
                    "description": summary,
                    "content": {media_type: {"schema": {"type": "object"}}},
                }
            },
        }
    }


def document(*, max_frame: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``max_frame`` is the request size limit."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shomei wallet server",
            "version": "1",
            "description": "The wallet keeps certificates in the phone's browser; its "
            "server encodes QR payloads, reads camera frames and relays sealed "
            "presentations. Nothing is logged or kept beyond a relay blob's lifetime.",
        },
        "paths": {
            "/api/encode": _encode_path(),
            "/api/scan": _scan_path(max_frame),
            "/relay/{blob_id}": _relay_path(),
            "/types.json": _document_path(
                "The type metadata of every document type, by name",
                "application/json",
                "types",
            ),
            "/manifest.webmanifest": _document_path(
                "The web app manifest", "application/manifest+json", "manifest"
            ),
        },
        "components": {"schemas": _SCHEMAS},
    }
