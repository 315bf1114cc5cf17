"""SD-JWT VC (RFC 9901 SD-JWT, IETF SD-JWT VC draft): issue, present, verify.

Issuer, holder and verifier functions share only parsing; none imports the others'
state. Every time is a parameter (``now`` in seconds since the epoch), randomness is a
parameter (``salt_source``), and the verifier's key comes from a caller-supplied
resolver keyed by ``iss`` and ``kid`` — never from the token's own headers.
"""

from __future__ import annotations

from ._common import (
    DEFAULT_KB_MAX_AGE,
    DEFAULT_MAX_SIZE,
    DEFAULT_SKEW,
    KB_TYP,
    REGISTERED_CLAIMS,
    SALT_BYTES,
    SD_ALG,
    TYP,
    Disclosure,
    KeyResolver,
    ParsedSdJwt,
    SaltSource,
)
from .holder import claim_names, present
from .issuer import IssuedCredential, issue
from .verifier import (
    VerifiedCredential,
    apply_disclosures,
    check_validity,
    check_vct,
    verify,
    verify_issuer_signature,
    verify_key_binding,
)

__all__ = [
    "DEFAULT_KB_MAX_AGE",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_SKEW",
    "KB_TYP",
    "REGISTERED_CLAIMS",
    "SALT_BYTES",
    "SD_ALG",
    "TYP",
    "Disclosure",
    "IssuedCredential",
    "KeyResolver",
    "ParsedSdJwt",
    "SaltSource",
    "VerifiedCredential",
    "apply_disclosures",
    "check_validity",
    "check_vct",
    "claim_names",
    "issue",
    "present",
    "verify",
    "verify_issuer_signature",
    "verify_key_binding",
]
