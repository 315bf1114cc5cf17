"""Compact JWS, ES256 only: the public face of the core's JWS helpers for the other
packages (the issuer's OpenID4VCI proofs and contract agreements, the verifier).

:class:`CompactJws` parses without trusting (``unverified_header``, ``unverified_payload``),
``check_header`` refuses any algorithm but ES256, a wrong ``typ`` and ``crit``, and
``verify`` raises unless the signature holds; ``sign`` and ``encode_header`` write one.
"""

from __future__ import annotations

from ._jws import ALG, CompactJws, encode_header, sign

__all__ = ["ALG", "CompactJws", "encode_header", "sign"]
