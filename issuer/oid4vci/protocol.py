"""OpenID4VCI as this issuer speaks it: the constants, the errors with their OAuth codes,
the values the flow passes on, and the metadata and offer documents. No Flask."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from credentials import doctypes
from credentials import jws as _jws
from credentials.errors import CodedError
from issuer.certificates import service as certificates
from issuer.keys.service import City

CONFIGURATIONS = (certificates.JUMINHYO, certificates.PARTNERSHIP, "contract")
PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME = "openid-credential-offer://"
OFFER_PATH = "/oid4vci/offers/"  # + the offer's reference: the credential_offer_uri
PROOF_TYP = "openid4vci-proof+jwt"
FORMAT = "dc+sd-jwt"
DEFAULT_OFFER_TTL = 600
TOKEN_TTL = 300
NONCE_TTL = 300
MAX_TX_ATTEMPTS = 5
TX_CODE_LENGTH = 6
PROOF_MAX_AGE = 300  # a proof's iat may be this old...
PROOF_SKEW = 60  # ...or this far in the future


class OfferError(CodedError):
    """A refused offer, token or credential request. ``code`` is the error code of
    RFC 6749 §5.2 or OpenID4VCI §8.3.1.2, ``status`` the HTTP status; those endpoints
    answer in the standards' shape, not the project's error document."""


class NonceError(OfferError):
    """The proof's ``c_nonce`` is unknown, expired or used: the wallet asks again."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__("invalid_nonce", ja, en)


@dataclass(frozen=True, kw_only=True, repr=False)
class NewOffer:
    """What the clerk's page shows once: the offer's QR content and the tx_code."""

    public_id: str
    pre_authorized_code: str
    tx_code: str
    expires_at: float
    uri: str  # openid-credential-offer://?credential_offer_uri=…

    def __repr__(self) -> str:
        return f"NewOffer(public_id={self.public_id!r})"


@dataclass(frozen=True, kw_only=True, repr=False)
class TokenGrant:
    access_token: str
    expires_in: int

    def __repr__(self) -> str:
        return "TokenGrant(…)"

    def to_json(self) -> dict[str, Any]:
        """The token response (RFC 6749 §5.1). OpenID4VCI 1.0 hands out ``c_nonce``
        values at the Nonce Endpoint only, so none is here."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True, kw_only=True)
class Proof:
    """A verified key proof: the wallet's public JWK, its thumbprint and the nonce."""

    jwk: dict[str, str]
    kid: str
    nonce: str


@dataclass(frozen=True, kw_only=True)
class Delivered:
    credential: str  # the holder-bound SD-JWT VC with every disclosure
    leaf: bytes


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def _display(dt: doctypes.DocumentType) -> list[dict[str, str]]:
    return [
        {"name": dt.title("ja"), "locale": "ja-JP"},
        {"name": dt.title("en"), "locale": "en-US"},
    ]


def _claims(dt: doctypes.DocumentType) -> list[dict[str, Any]]:
    """The claims description (OpenID4VCI 1.0 Appendix B.2) from the type metadata:
    every path with its labels as ``name``, and ``mandatory`` where the type says so."""
    out = []
    for claim in dt.metadata_template["claims"]:
        entry: dict[str, Any] = {
            "path": claim["path"],
            "display": [{"name": d["label"], "locale": d["locale"]} for d in claim["display"]],
        }
        if claim.get("mandatory"):
            entry["mandatory"] = True
        out.append(entry)
    return out


def issuer_metadata(city: City) -> dict[str, Any]:
    """The Credential Issuer Metadata (OpenID4VCI 1.0 §12.2): endpoints and one
    configuration per document type the clerk issues (its id is the type's name)."""
    iss = city.issuer_id
    configurations = {}
    for name in CONFIGURATIONS:
        dt = doctypes.get(name)
        configurations[name] = {
            "format": FORMAT,
            "scope": name,
            "vct": dt.vct_for(iss),  # resolves to the SD-JWT VC type metadata
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": [_jws.ALG],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": [_jws.ALG]}},
            "credential_metadata": {"display": _display(dt), "claims": _claims(dt)},
        }
    return {
        "credential_issuer": iss,
        "credential_endpoint": f"{iss}/oid4vci/credential",
        "nonce_endpoint": f"{iss}/oid4vci/nonce",
        "token_endpoint": f"{iss}/oid4vci/token",
        "display": [{"name": city.settings.name, "locale": "ja-JP"}],
        "credential_configurations_supported": configurations,
    }


def authorization_server_metadata(city: City) -> dict[str, Any]:
    """RFC 8414 metadata of the issuer acting as its own authorization server."""
    return {
        "issuer": city.issuer_id,
        "token_endpoint": f"{city.issuer_id}/oid4vci/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "pre-authorized_grant_anonymous_access_supported": True,
        "token_endpoint_auth_methods_supported": ["none"],
    }


def offer_document(issuer_id: str, configuration: str, code: str) -> dict[str, Any]:
    """The Credential Offer (OpenID4VCI 1.0 §4.1.1) for one pre-authorized code."""
    return {
        "credential_issuer": issuer_id,
        "credential_configuration_ids": [configuration],
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": code,
                "tx_code": {
                    "input_mode": "numeric",
                    "length": TX_CODE_LENGTH,
                    "description": "窓口の画面に表示された6桁の番号 / "
                    "the 6 digits shown at the counter",
                },
            }
        },
    }


def offer_uri(document: dict[str, Any]) -> str:
    """The offer by value (§4.1.2), as a deep link a wallet's QR scanner opens: a
    version 19 QR code for one of ours, too dense for a phone at arm's length."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return f"{OFFER_SCHEME}?credential_offer={quote(text, safe='')}"


def offer_location(issuer_id: str, reference: str) -> str:
    """Where the issuer serves the offer of ``reference`` (an unguessable id)."""
    return f"{issuer_id}{OFFER_PATH}{reference}"


def offer_reference_uri(issuer_id: str, reference: str) -> str:
    """The offer by reference (§4.1.3): ``credential_offer_uri`` names the issuer's
    URL of the offer document, so the QR code stays small (version 7 for a typical
    issuer name). ``:`` and ``/`` may stand unescaped in a query (RFC 3986 §3.4)."""
    location = quote(offer_location(issuer_id, reference), safe=":/")
    return f"{OFFER_SCHEME}?credential_offer_uri={location}"
