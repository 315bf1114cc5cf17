"""The OpenAPI 3.1 description of every JSON endpoint of the issuer
(``GET /api/openapi.json``): OpenID4VCI and its metadata, the Token Status Lists, the
SD-JWT VC type metadata, the anchor evidence, and the JSON the issuer's own pages call
(a certificate's anchoring state, the contractor's signing link).

``tests/issuer/test_issuer_openapi.py`` compares it with the app's routes, so a new JSON
route cannot go undescribed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.wrappers import Response

from edges.openapi import ERROR, REF, error_response, errors, json_response
from issuer.oid4vci import views as oid4vci_views

bp = Blueprint("openapi", __name__, url_prefix="/api")

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_DISPLAY = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "locale"],
        "properties": {"name": _STRING, "locale": _STRING},
    },
}
_JWKS = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {"type": "object", "required": ["kty"], "properties": {"kty": _STRING}},
        }
    },
}

_CONFIGURATION = {
    "type": "object",
    "required": ["format", "scope", "vct", "proof_types_supported"],
    "properties": {
        "format": {"const": "dc+sd-jwt"},
        "scope": _STRING,
        "vct": {"type": "string", "format": "uri"},
        "cryptographic_binding_methods_supported": _STRINGS,
        "credential_signing_alg_values_supported": _STRINGS,
        "proof_types_supported": {"type": "object"},
        "credential_metadata": {
            "type": "object",
            "required": ["display", "claims"],
            "properties": {
                "display": _DISPLAY,
                "claims": {
                    "type": "array",
                    "description": "OpenID4VCI 1.0 Appendix B.2: every claim path, "
                    "its labels and whether it is mandatory.",
                    "items": {
                        "type": "object",
                        "required": ["path", "display"],
                        "properties": {
                            "path": {"type": "array", "items": {"type": ["string", "null"]}},
                            "mandatory": {"type": "boolean"},
                            "display": _DISPLAY,
                        },
                    },
                },
            },
        },
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "OAuthError": {
        "type": "object",
        "description": "The error of the OAuth endpoints (RFC 6749 §5.2, OpenID4VCI "
        "§8.3.1.2); after an `invalid_nonce` the wallet asks the nonce endpoint again.",
        "required": ["error", "error_description"],
        "properties": {
            "error": _STRING,
            "error_description": _STRING,
            "attempts_remaining": {"type": "integer"},
        },
    },
    "CredentialOffer": {
        "type": "object",
        "description": "OpenID4VCI 1.0 §4.1.1: one configuration, the pre-authorized "
        "code grant with a 6-digit tx_code.",
        "required": ["credential_issuer", "credential_configuration_ids", "grants"],
        "properties": {
            "credential_issuer": _STRING,
            "credential_configuration_ids": _STRINGS,
            "grants": {"type": "object"},
        },
    },
    "CredentialIssuerMetadata": {
        "type": "object",
        "description": "OpenID4VCI 1.0 §12.2; one configuration per document type.",
        "required": [
            "credential_issuer",
            "credential_endpoint",
            "nonce_endpoint",
            "token_endpoint",
            "credential_configurations_supported",
        ],
        "properties": {
            "credential_issuer": _STRING,
            "credential_endpoint": _STRING,
            "nonce_endpoint": _STRING,
            "token_endpoint": _STRING,
            "display": _DISPLAY,
            "credential_configurations_supported": {
                "type": "object",
                "additionalProperties": {"$ref": REF + "CredentialConfiguration"},
            },
        },
    },
    "CredentialConfiguration": _CONFIGURATION,
    "AuthorizationServerMetadata": {
        "type": "object",
        "description": "RFC 8414: the issuer is its own authorization server.",
        "required": ["issuer", "token_endpoint", "grant_types_supported"],
        "properties": {
            "issuer": _STRING,
            "token_endpoint": _STRING,
            "grant_types_supported": _STRINGS,
            "pre-authorized_grant_anonymous_access_supported": {"type": "boolean"},
            "token_endpoint_auth_methods_supported": _STRINGS,
        },
    },
    "JwtVcIssuerMetadata": {
        "type": "object",
        "description": "SD-JWT VC issuer metadata: the issuer id, the city and its keys "
        "(the current one and the retired ones still valid for verification).",
        "required": ["issuer", "jwks", "name", "municipality_code"],
        "properties": {
            "issuer": _STRING,
            "jwks": _JWKS,
            "name": _STRING,
            "municipality_code": _STRING,
        },
    },
    "TypeMetadata": {
        "type": "object",
        "description": "SD-JWT VC type metadata of one document type (`vct`).",
        "required": ["vct"],
        "properties": {
            "vct": _STRING,
            "name": _STRING,
            "display": {"type": "array"},
            "claims": {"type": "array", "items": {"type": "object"}},
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": _STRING,
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        },
    },
    "CredentialResponse": {
        "type": "object",
        "required": ["credentials"],
        "properties": {
            "credentials": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["credential"],
                    "properties": {"credential": {"type": "string", "description": "SD-JWT VC"}},
                },
            }
        },
    },
    "Evidence": {
        "type": "object",
        "description": "The anchor evidence as `shomei receipt` prints it; `chain_id` and "
        "`registry_address` are null when the issuer has no chain configured.",
        "required": ["receipt", "root", "chain_id", "registry_address", "block", "timestamp"],
        "properties": {
            "receipt": {"type": "object"},
            "root": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
            "chain_id": {"type": ["integer", "null"]},
            "registry_address": {"type": ["string", "null"]},
            "block": {"type": "integer"},
            "timestamp": {"type": "integer"},
            "tx": {"type": ["string", "null"]},
        },
    },
    "AnchorState": {
        "type": "object",
        "required": ["state", "block", "time", "tx", "label", "block_label"],
        "properties": {
            "state": {"enum": ["pending", "batched", "confirming", "anchored"]},
            "block": {"type": ["integer", "null"]},
            "time": {"type": ["string", "null"]},
            "tx": {"type": ["string", "null"]},
            "label": _STRING,
            "block_label": _STRING,
        },
    },
    "PageError": {"type": "string", "description": "The issuer's HTML error page."},
}


def _oauth(description: str) -> dict[str, Any]:
    return json_response(description, {"$ref": REF + "OAuthError"})


def _ok(description: str, name: str) -> dict[str, Any]:
    return {"200": json_response(description, {"$ref": REF + name})}


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": _STRING}}}


def _json_or_page(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": _STRING},
                }
            },
            "text/html": {"schema": _STRING},
        },
    }


def _get(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": responses, **more}}


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_LINK_TOKEN = _path_param("token", _STRING, "the signing link's token")
_LINK_ERRORS = {
    "404": _page("The link is not valid."),
    "410": _page("The link was used or has expired."),
}


def _wallet_paths(max_body: int) -> dict[str, Any]:
    too_large = _oauth(f"The request body exceeds {max_body} bytes.")
    return {
        "/.well-known/openid-credential-issuer": _get(
            "Credential Issuer Metadata",
            _ok("The metadata.", "CredentialIssuerMetadata"),
            operationId="credential_issuer_metadata",
        ),
        "/.well-known/oauth-authorization-server": _get(
            "Authorization Server Metadata",
            _ok("The metadata.", "AuthorizationServerMetadata"),
            operationId="authorization_server_metadata",
        ),
        "/.well-known/jwt-vc-issuer": _get(
            "SD-JWT VC issuer metadata with the city's keys",
            _ok("The metadata.", "JwtVcIssuerMetadata"),
            operationId="jwt_vc_issuer_metadata",
        ),
        "/oid4vci/offers/{reference}": _get(
            "The Credential Offer behind a credential_offer_uri (OpenID4VCI 1.0 §4.1.3)",
            {
                **_ok("The offer, while it waits for its code to be exchanged.", "CredentialOffer"),
                "404": error_response(
                    "No offer waits under this reference: unknown, used, blocked or "
                    "expired (`offer_unavailable`)."
                ),
            },
            operationId="credential_offer",
            parameters=[_path_param("reference", _STRING, "the offer's unguessable id")],
        ),
        "/oid4vci/token": {
            "post": {
                "summary": "Exchange a pre-authorized code and its tx_code for an access token",
                "operationId": "token",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["grant_type", "pre-authorized_code", "tx_code"],
                                "properties": {
                                    "grant_type": {
                                        "const": "urn:ietf:params:oauth:grant-type:"
                                        "pre-authorized_code"
                                    },
                                    "pre-authorized_code": _STRING,
                                    "tx_code": _STRING,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok("The access token.", "TokenResponse"),
                    "400": _oauth("Not form-encoded, or an invalid grant or tx_code."),
                    "413": too_large,
                },
            }
        },
        "/oid4vci/nonce": {
            "post": {
                "summary": "A fresh c_nonce for the key proof",
                "operationId": "nonce",
                "responses": {
                    "200": json_response(
                        "A nonce.",
                        {
                            "type": "object",
                            "required": ["c_nonce"],
                            "properties": {"c_nonce": _STRING},
                        },
                    )
                },
            }
        },
        "/oid4vci/credential": {
            "post": {
                "summary": "The holder-bound credential of the offer the access token is for",
                "operationId": "credential",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["credential_configuration_id", "proof"],
                                "properties": {
                                    "credential_configuration_id": _STRING,
                                    "proof": {
                                        "type": "object",
                                        "required": ["proof_type", "jwt"],
                                        "properties": {
                                            "proof_type": {"const": "jwt"},
                                            "jwt": _STRING,
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok("The credential.", "CredentialResponse"),
                    "400": _oauth("An invalid request, proof or c_nonce (`invalid_nonce`)."),
                    "401": _oauth("The access token is invalid, used or expired."),
                    "413": too_large,
                },
            }
        },
        "/oid4vci/evidence/{leaf_hex}": _get(
            "The anchor evidence of a delivered credential",
            {
                **_ok("The evidence.", "Evidence"),
                "404": error_response(
                    "No credential was delivered with this leaf, or its batch is not "
                    "anchored yet (`not_anchored_yet`, with Retry-After)."
                ),
            },
            operationId="evidence",
            parameters=[
                _path_param("leaf_hex", _STRING, "the credential's leaf hash, 64 hex digits")
            ],
        ),
    }


def _public_paths() -> dict[str, Any]:
    return {
        "/status/{list_id}": _get(
            "A Token Status List (signed JWT)",
            {
                "200": {
                    "description": "The status list token.",
                    "content": {"application/statuslist+jwt": {"schema": _STRING}},
                },
                **errors(404),
            },
            operationId="status_list",
            parameters=[
                _path_param("list_id", {"type": "integer", "minimum": 0}, "the list's number")
            ],
        ),
        "/vct/{name}/1": _get(
            "The SD-JWT VC type metadata of a document type",
            {**_ok("The type metadata.", "TypeMetadata"), **errors(404)},
            operationId="type_metadata",
            parameters=[_path_param("name", _STRING, "juminhyo, partnership or contract")],
        ),
    }


_THUMBPRINT = {
    "type": "object",
    "required": ["key_thumbprint"],
    "properties": {"key_thumbprint": _STRING},
}


def _json_or_confirmation(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}, "text/html": {"schema": _STRING}},
    }


def _link_form(
    summary: str,
    operation_id: str,
    parameter: dict[str, Any],
    field: str,
    answer: dict[str, Any],
    refused: str,
) -> dict[str, Any]:
    """A contractor's form behind a one-time link: ``field`` and the CSRF token posted."""
    form = {
        "type": "object",
        "required": [field, "csrf_token"],
        "properties": {field: _STRING, "csrf_token": _STRING},
    }
    return {
        "post": {
            "summary": summary,
            "operationId": operation_id,
            "parameters": [parameter],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": form}},
            },
            "responses": {"200": answer, "400": _json_or_page(refused), **_LINK_ERRORS},
        }
    }


def _page_paths() -> dict[str, Any]:
    return {
        "/certificates/{public_id}/anchor.json": _get(
            "A certificate's anchoring state (the certificate page polls it)",
            {
                **_ok("The state.", "AnchorState"),
                "302": {"description": "Not signed in: to the sign-in page."},
                "404": _page("No such certificate."),
            },
            operationId="anchor_state",
            security=[{"session": []}],
            parameters=[_path_param("public_id", _STRING, "the certificate's id")],
        ),
        "/contract-sign/{token}/key": _link_form(
            "Register the contractor's public signing key (JWK)",
            "register_contractor_key",
            _LINK_TOKEN,
            "jwk",
            json_response("The key's thumbprint.", _THUMBPRINT),
            "Not a usable key, or no valid CSRF token (page).",
        ),
        "/contractor-key/{token}": _link_form(
            "Register the contractor's new signing key after a replacement",
            "register_replacement_key",
            _path_param("token", _STRING, "the key link's token"),
            "jwk",
            _json_or_confirmation(
                "The key's thumbprint with `Accept: application/json`, else the confirmation page.",
                _THUMBPRINT,
            ),
            "Not a usable key, or no valid CSRF token (page).",
        ),
        "/contract-sign/{token}": _link_form(
            "Submit the contractor's signed agreement",
            "sign_contract",
            _LINK_TOKEN,
            "agreement",
            _json_or_confirmation(
                'Signed: `{"signed": true}` with `Accept: application/json`, else the '
                "confirmation page.",
                {
                    "type": "object",
                    "required": ["signed"],
                    "properties": {"signed": {"const": True}},
                },
            ),
            "The agreement does not verify, or no CSRF token.",
        ),
    }


def document(*, max_body: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``max_body`` is the OpenID4VCI request size limit."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shomei issuer",
            "version": "1",
            "description": "The city's public endpoints for wallets and verifiers "
            "(OpenID4VCI pre-authorized code flow, status lists, metadata) and the JSON "
            "its own pages call. The OAuth endpoints answer errors in the shape of RFC "
            "6749 §5.2; the others in Shomei's error document.",
        },
        "paths": {**_wallet_paths(max_body), **_public_paths(), **_page_paths()},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    response = jsonify(document(max_body=oid4vci_views.MAX_BODY))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
