"""The issuer's part: sign an SD-JWT VC with every personal claim selectively
disclosable, salts from a parameter."""

from __future__ import annotations

import binascii
import hashlib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _jws
from .._b64 import b64e
from ..keys import SigningKey
from ._common import (
    _RESERVED_AT_TOP,
    _RESERVED_NAMES,
    _STD_TO_URL,
    SALT_BYTES,
    SD_ALG,
    TYP,
    Disclosure,
    SaltSource,
)

# --------------------------------------------------------------------------- issuer


def _make_disclosures(
    claims: Mapping[str, Any], names: list[str], salts: bytes
) -> list[Disclosure]:
    """One disclosure per name. The issuing hot path: base64url is inlined (16-byte
    salts are 22 characters plus "==")."""
    b2a, to_url, sha256, dumps = binascii.b2a_base64, _STD_TO_URL, hashlib.sha256, _jws.compact_json
    out = []
    for i, name in enumerate(names):
        salt = b2a(salts[i * SALT_BYTES : (i + 1) * SALT_BYTES], newline=False)
        salt_s = salt[:22].translate(to_url).decode("ascii")
        value = claims[name]
        raw = b2a(dumps([salt_s, name, value]), newline=False).translate(to_url).rstrip(b"=")
        digest = b2a(sha256(raw).digest(), newline=False)[:43].translate(to_url).decode("ascii")
        out.append(Disclosure(raw.decode("ascii"), salt_s, name, value, digest))
    return out


@dataclass(frozen=True)
class IssuedCredential:
    """An issued SD-JWT VC: the issuer-signed JWT and every disclosure."""

    jwt: str
    disclosures: tuple[Disclosure, ...]
    payload: dict[str, Any] = field(repr=False)

    @property
    def sd_jwt(self) -> str:
        """The SD-JWT with all disclosures, as handed to the holder."""
        return "~".join([self.jwt, *(d.encoded for d in self.disclosures)]) + "~"


_header_cache: dict[tuple[str, str], str] = {}


def _issuer_header(kid: str) -> str:
    cached = _header_cache.get((kid, TYP))
    if cached is None:
        cached = _jws.encode_header({"alg": _jws.ALG, "kid": kid, "typ": TYP})
        _header_cache[(kid, TYP)] = cached
    return cached


def _check_nested_names(path: str, node: Any) -> None:
    """Reject ``_sd`` and ``...`` anywhere inside a claim value: a verifier would read
    them as digests and silently drop or empty the value."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _RESERVED_NAMES:
                raise ValueError(f"claim name {k!r} (in {path}) is reserved by SD-JWT")
            _check_nested_names(f"{path}.{k}", v)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_nested_names(f"{path}[{i}]", v)


def _conceal_members(
    claims: Mapping[str, Any], names: Collection[str], salt_source: SaltSource
) -> tuple[Mapping[str, Any], list[Disclosure]]:
    """``claims`` with each object named in ``names`` replaced by ``{"_sd": digests}``
    of its members, and the members' disclosures."""
    if not any(n in claims for n in names):
        return claims, []
    out, disclosures = dict(claims), []
    for name in (n for n in claims if n in names):
        value = claims[name]
        if not isinstance(value, Mapping) or not value:
            raise ValueError(f"{name!r} must be an object to disclose its members one by one")
        keys = list(value)
        made = _make_disclosures(value, keys, salt_source(SALT_BYTES * len(keys)))
        out[name] = {"_sd": sorted(d.digest for d in made)}
        disclosures.extend(made)
    return out, disclosures


def issue(
    claims: Mapping[str, Any],
    *,
    key: SigningKey,
    issuer: str,
    vct: str,
    iat: int,
    exp: int | None,
    nbf: int | None = None,
    always_plain: Collection[str] = (),
    disclosable_members: Collection[str] = (),
    holder_jwk: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
    decoys: int = 0,
    salt_source: SaltSource = os.urandom,
) -> IssuedCredential:
    """Sign an SD-JWT VC in which every top-level claim except ``always_plain`` is
    selectively disclosable.

    The members of an object claim named in ``disclosable_members`` are each
    selectively disclosable too (RFC 9901 §6.3, recursive disclosures): the object
    holds only their digests, so a holder can disclose one member and not the others.
    ``decoys`` adds that many random digests so the number of hidden claims leaks less.
    Raises ``ValueError`` for a claim name the format reserves, at the top level or
    (``_sd``, ``...``) nested inside a value, and for a ``disclosable_members`` claim
    that is not an object.
    """
    if not _RESERVED_AT_TOP.isdisjoint(claims):
        name = next(n for n in claims if n in _RESERVED_AT_TOP)
        raise ValueError(f"claim name {name!r} is reserved by SD-JWT VC")
    for name, value in claims.items():
        if isinstance(value, dict | list):
            _check_nested_names(name, value)
    claims, members = _conceal_members(claims, disclosable_members, salt_source)
    sd_names = [n for n in claims if n not in always_plain]
    salts = salt_source(SALT_BYTES * (len(sd_names) + decoys))
    top = _make_disclosures(claims, sd_names, salts)
    disclosures = (*members, *top)
    digests = [d.digest for d in top]
    base = SALT_BYTES * len(sd_names)
    digests += [
        b64e(hashlib.sha256(salts[base + i * SALT_BYTES : base + (i + 1) * SALT_BYTES]).digest())
        for i in range(decoys)
    ]
    # Sorted digests hide the claims' order (RFC 9901 §4.2.4.1).
    digests.sort()
    payload: dict[str, Any] = {n: claims[n] for n in claims if n in always_plain}
    payload.update({"iss": issuer, "iat": iat, "vct": vct, "_sd": digests, "_sd_alg": SD_ALG})
    if exp is not None:
        payload["exp"] = exp
    if nbf is not None:
        payload["nbf"] = nbf
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    if status is not None:
        payload["status"] = dict(status)
    jwt = _jws.sign(_issuer_header(key.kid), payload, key.private_key)
    return IssuedCredential(jwt=jwt, disclosures=disclosures, payload=payload)
