"""Pieces of the apps' OpenAPI 3.1 descriptions that every app shares: the one JSON
error document (``edges.errors``) and the responses that carry it."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/"

#: The one JSON error document of Shomei's own APIs (``edges.errors.json_error``).
ERROR: dict[str, Any] = {
    "type": "object",
    "description": "Shomei's one JSON error document (the HTTP status says the kind).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {
                    "type": "object",
                    "required": ["ja", "en"],
                    "properties": {"ja": {"type": "string"}, "en": {"type": "string"}},
                },
            },
        }
    },
}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A response whose body is JSON of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    """A response carrying the error document (``components.schemas.Error``)."""
    return json_response(description, {"$ref": REF + "Error"})


def errors(*statuses: int) -> dict[str, Any]:
    """Error-document responses for ``statuses`` with the statuses' usual meaning."""
    return {str(s): error_response(_MEANING[s]) for s in statuses}


_MEANING = {
    400: "Unusable request.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Not possible in the present state.",
    413: "The request is too large.",
    415: "Unsupported content type.",
    429: "Too many requests; see Retry-After.",
    503: "Busy or not ready; see Retry-After when given.",
}
