"""The OpenAPI 3.1 description of the verifier API (``GET /api/openapi.json``)."""

from __future__ import annotations

from typing import Any, get_args

import edges.openapi as edges_openapi
import verifier.oid4vp_openapi as oid4vp_openapi

from .results import CHECK_IDS, Status

_REF = "#/components/schemas/"

_CHECK = {
    "type": "object",
    "required": ["id", "status", "message", "message_ja", "message_en"],
    "properties": {
        "id": {"enum": list(CHECK_IDS)},
        "status": {"enum": list(get_args(Status))},
        "message": {"type": "string", "description": "Japanese / English"},
        "message_ja": {"type": "string"},
        "message_en": {"type": "string"},
    },
}

_RESULT = {
    "type": "object",
    "description": "The verification result (the same document as `shomei verify --json`).",
    "required": ["verdict", "document_type", "issuer", "disclosed", "anchor", "checks"],
    "properties": {
        "verdict": {"enum": ["valid", "invalid"]},
        "document_type": {"enum": ["juminhyo", "partnership", "contract", None]},
        "issuer": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "name", "municipality_code"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "municipality_code": {"type": "string"},
                    },
                },
            ]
        },
        "disclosed": {"type": "object", "description": "claim name → disclosed value"},
        "anchor": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["chain_id", "block", "timestamp", "tx"],
                    "properties": {
                        "chain_id": {"type": "integer"},
                        "block": {"type": "integer"},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "tx": {"type": ["string", "null"]},
                    },
                },
            ]
        },
        "checks": {"type": "array", "items": {"$ref": _REF + "Check"}, "minItems": 9},
        "agreements": {
            "type": "array",
            "description": "A contract's agreements, one per party: whether each party's "
            "signature over the document digest verifies (only with its agreement JWS, "
            "attached to the contract PDF; otherwise `warn`).",
            "items": {"$ref": _REF + "Agreement"},
        },
        "document": {
            "type": "object",
            "description": "The contract PDF sent as `document`: its SHA-256 and whether "
            "it equals the credential's `document_sha256` (null: not disclosed).",
            "required": ["sha256", "matches", "original_bytes"],
            "properties": {
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "matches": {"type": ["boolean", "null"]},
                "original_bytes": {
                    "type": ["integer", "null"],
                    "description": "The length of the matching part: the whole file, or "
                    "an earlier revision when only attachments were added after it.",
                },
            },
        },
    },
}

_AGREEMENT = {
    "type": "object",
    "required": [
        "party",
        "signed_at",
        "key_thumbprint",
        "status",
        "message",
        "message_ja",
        "message_en",
    ],
    "properties": {
        "party": {"type": "string", "description": "orderer or contractor"},
        "signed_at": {"type": "string"},
        "key_thumbprint": {"type": "string"},
        "status": {"enum": ["pass", "fail", "warn"]},
        "message": {"type": "string"},
        "message_ja": {"type": "string"},
        "message_en": {"type": "string"},
    },
}

_ERROR = {
    **edges_openapi.ERROR,
    "description": (
        "Shomei's one JSON error document: the verifier's, the wallet's and the issuer's "
        "own APIs answer every error with it (the HTTP status says the kind)."
    ),
}

_EVIDENCE = {
    "description": "Anchor evidence: the document `shomei receipt` prints, "
    "or the evidence bytes in base64url.",
    "oneOf": [{"type": "object"}, {"type": "string"}],
}

_VERIFY_JSON = {
    "type": "object",
    "required": ["presentation"],
    "properties": {
        "presentation": {
            "type": "string",
            "description": "An SD-JWT VC or presentation, an `SH1:` QR payload or a link.",
        },
        "evidence": _EVIDENCE,
        "at": {
            "type": "string",
            "description": "Verify as of this ISO 8601 time (without an offset: JST).",
        },
        "nonce": {
            "type": "string",
            "description": "expected key-binding nonce; with it (or aud) a key-binding "
            "JWT is required",
        },
        "aud": {
            "type": "string",
            "description": "expected key-binding audience; with it (or nonce) a "
            "key-binding JWT is required",
        },
    },
}

_FILE_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"}},
}

_VERIFY_FORM = {
    "type": "object",
    "description": "`file`: the credential (QR image, PDF with a QR code, SD-JWT or "
    "`SH1:` text); `document`: the contract PDF to compare with `document_sha256`. "
    "Either may be alone: a `document` alone must carry the credential as an embedded "
    "file. The PDF: at most 10 MiB and 200 pages, not encrypted.",
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "document": {"type": "string", "format": "binary"},
    },
}

_EXAMPLES = {
    "damaged_qr_payload": {
        "summary": "A damaged QR payload: verdict invalid, the format check fails",
        "value": {"presentation": "SH1:6BFOXN*TS0BI$ZDFRH"},
    },
    "not_a_credential": {
        "summary": "Text that is no credential at all: 400",
        "value": {"presentation": "hello"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}},
    }


_ERRORS = {
    "400": _error(
        "Unusable input: not a credential, unreadable image, no QR code found; a "
        "`document` that is not a PDF, malformed, encrypted, has too many pages, or (alone) "
        "carries no credential."
    ),
    "413": _error(
        "The request, the presentation, the PDF or its attachment is too large; a PDF "
        "page too large to render (`page_too_large`), or one that needs more memory or "
        "time to render than allowed (`pdf_too_complex`)."
    ),
    "415": _error("Unsupported content type."),
    "429": _error("Too many requests from this address; see Retry-After."),
    "503": _error("Every slot for reading images and PDFs stayed taken (`busy`); see Retry-After."),
}


_RID = {
    "name": "rid",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the request's id (in the company's page address)",
}
_REQUEST_GONE = {
    "404": _error("No such request."),
    "410": _error("The request has expired."),
}


def _request_paths() -> dict[str, Any]:
    """The cross-device flow: the company's page polls the state (the wallet answers at
    the OpenID4VP endpoints, :mod:`verifier.oid4vp_openapi`)."""
    return {
        "/request/{rid}/status": {
            "get": {
                "summary": "The state of a request to a wallet (the request page polls it)",
                "operationId": "request_status",
                "parameters": [_RID],
                "responses": {
                    "200": {
                        "description": "pending, answered or expired",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["state"],
                                    "properties": {
                                        "state": {"enum": ["pending", "answered", "expired"]}
                                    },
                                }
                            }
                        },
                    },
                    **_REQUEST_GONE,
                    "429": _ERRORS["429"],
                },
            }
        },
    }


def document(*, max_upload: int) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document; ``max_upload`` is the request size limit."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shomei verifier",
            "version": "1",
            "description": "Verify Shomei certificates (SD-JWT VC). Nothing is stored. "
            f"Requests are limited to {max_upload} bytes.",
        },
        "paths": {
            "/api/verify": {
                "post": {
                    "summary": "Verify a presentation, QR payload, QR image, PDF or file",
                    "operationId": "verify",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF + "VerifyRequest"},
                                "examples": _EXAMPLES,
                            },
                            "multipart/form-data": {"schema": _VERIFY_FORM},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Verified: the verdict may be valid or invalid.",
                            "content": {"application/json": {"schema": {"$ref": _REF + "Result"}}},
                        },
                        **_ERRORS,
                    },
                }
            },
            "/api/scan": {
                "post": {
                    "summary": "Look for a QR code in one camera frame and verify it",
                    "operationId": "scan",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                            "multipart/form-data": {"schema": _FILE_FORM},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "No QR code in the frame (`found: false`), or "
                            "the result for the QR code found, with its text as `payload`.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": _REF + "ScanNotFound"},
                                            {"$ref": _REF + "ScanFound"},
                                        ]
                                    }
                                }
                            },
                        },
                        **_ERRORS,
                    },
                }
            },
            **_request_paths(),
            **oid4vp_openapi.paths(),
        },
        "components": {
            "schemas": {
                "Check": _CHECK,
                "Agreement": _AGREEMENT,
                "Result": _RESULT,
                "Error": _ERROR,
                "VerifyRequest": _VERIFY_JSON,
                "ScanNotFound": {
                    "type": "object",
                    "required": ["found"],
                    "properties": {"found": {"const": False}},
                },
                "ScanFound": {
                    "allOf": [
                        {"$ref": _REF + "Result"},
                        {
                            "type": "object",
                            "required": ["found", "payload"],
                            "properties": {
                                "found": {"const": True},
                                "payload": {"type": "string"},
                            },
                        },
                    ]
                },
            }
        },
    }
