"""The holder's part: choose the disclosures to show and bind the presentation to the
holder's key (KB-JWT) for an audience and a nonce."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .. import _jws
from ..keys import SigningKey
from ._common import (
    KB_TYP,
    Disclosure,
    ParsedSdJwt,
    _digest,
    _parse_disclosures,
)

# --------------------------------------------------------------------------- holder

_CONTAINERS = (dict, list)
#: Every key-binding JWT's header, encoded once.
_KB_HEADER = _jws.encode_header({"alg": _jws.ALG, "typ": KB_TYP})


class _Owners:
    """Walks a payload, mapping each reachable disclosure digest to the top-level claim
    it belongs to. Scalars hold no digests: only containers are walked into."""

    def __init__(self, disclosures: Mapping[str, Disclosure]) -> None:
        self.disclosures = disclosures
        self.owners: dict[str, str] = {}

    def _disclosed(self, sd: list[Any], top: str | None) -> None:
        for digest in sd:
            d = self.disclosures.get(digest) if isinstance(digest, str) else None
            if d is not None and d.name is not None:
                owner = top or d.name
                self.owners[digest] = owner
                if isinstance(d.value, _CONTAINERS):
                    self.walk(d.value, owner)

    def walk(self, node: Any, top: str | None) -> None:
        if isinstance(node, dict):
            sd = node.get("_sd")
            if isinstance(sd, list):
                self._disclosed(sd, top)
            for k, v in node.items():
                if isinstance(v, _CONTAINERS) and k not in ("_sd", "_sd_alg"):
                    self.walk(v, top or k)
        elif isinstance(node, list):
            for item in node:
                ref = item.get("...") if isinstance(item, dict) and len(item) == 1 else None
                d = self.disclosures.get(ref) if isinstance(ref, str) else None
                if d is not None and top is not None:
                    self.owners[d.digest] = top
                    self.walk(d.value, top)
                else:
                    self.walk(item, top)


def _claim_owner_map(
    payload: Mapping[str, Any], disclosures: Mapping[str, Disclosure]
) -> dict[str, str]:
    """Map each reachable disclosure digest to the top-level claim it belongs to."""
    owners = _Owners(disclosures)
    owners.walk(payload, None)
    return owners.owners


def claim_names(sd_jwt: str) -> list[str]:
    """The top-level claim names a holder can choose to disclose, in issuance order."""
    parsed = ParsedSdJwt.parse(sd_jwt)
    discs = {d.digest: d for d in _parse_disclosures(parsed.disclosures)}
    owners = _claim_owner_map(parsed.unverified_payload, discs)
    return list(dict.fromkeys(owners[d.digest] for d in discs.values() if d.digest in owners))


def _member_digests(
    payload: Mapping[str, Any], disclosures: Mapping[str, Disclosure], path: str
) -> set[str]:
    """The digests of the disclosures revealing member ``b`` of top-level object ``a``
    (``path`` ``"a.b"``): the parent's, when it is itself disclosable, and the member's.
    Empty when the credential has no such selectively disclosable member."""
    parent, dot, member = path.partition(".")
    if not dot or not member:
        return set()
    found: set[str] = set()
    value = payload.get(parent)
    if value is None:  # the parent is disclosable: find its disclosure at the top
        top = payload.get("_sd")
        for digest in top if isinstance(top, list) else ():
            d = disclosures.get(digest) if isinstance(digest, str) else None
            if d is not None and d.name == parent:
                found.add(d.digest)
                value = d.value
    sd = value.get("_sd") if isinstance(value, dict) else None
    for digest in sd if isinstance(sd, list) else ():
        d = disclosures.get(digest) if isinstance(digest, str) else None
        if d is not None and d.name == member:
            return found | {d.digest}
    return set()


def present(
    sd_jwt: str,
    *,
    disclose: Collection[str],
    holder_key: SigningKey | None = None,
    nonce: str | None = None,
    aud: str | None = None,
    iat: int | None = None,
) -> str:
    """The holder's presentation revealing only the claims in ``disclose``: top-level
    names (with everything inside them), or ``name.member`` for one selectively
    disclosable member of an object (its parent's disclosure comes along, not the
    other members').

    With ``holder_key``, appends a key-binding JWT over ``nonce``, ``aud``, ``iat`` and
    the presentation's ``sd_hash``. Raises ``ValueError`` for a claim the credential
    does not have, or a key binding without nonce/aud/iat.
    """
    parsed = ParsedSdJwt.parse(sd_jwt)
    discs = _parse_disclosures(parsed.disclosures)
    by_digest = {d.digest: d for d in discs}
    owners = _claim_owner_map(parsed.unverified_payload, by_digest)
    available = set(owners.values())
    wanted = {n for n in disclose if n in available}
    members = {
        n: _member_digests(parsed.unverified_payload, by_digest, n)
        for n in disclose
        if n not in available
    }
    missing = [n for n, found in members.items() if not found]
    if missing:
        raise ValueError(
            f"この証明書にない項目です: {', '.join(missing)} / not in this credential: "
            f"{', '.join(missing)} (available: {', '.join(sorted(available))})"
        )
    extra = {digest for found in members.values() for digest in found}
    chosen = [d.encoded for d in discs if owners.get(d.digest) in wanted or d.digest in extra]
    text = "~".join([parsed.jwt, *chosen]) + "~"
    if holder_key is None:
        return text
    if nonce is None or aud is None or iat is None:
        raise ValueError("a key-binding JWT needs nonce, aud and iat")
    kb_payload = {"aud": aud, "iat": iat, "nonce": nonce, "sd_hash": _digest(text)}
    return text + _jws.sign(_KB_HEADER, kb_payload, holder_key.private_key)
