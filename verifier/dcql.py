"""What the company asks for, as a DCQL query (OpenID4VP 1.0 §6), and the check that an
answer discloses exactly that.

A request names claim paths of the 住民票 (``["address"]``, ``["age_equal_or_over",
"20"]``); presets bundle the usual ones. The query asks for one ``dc+sd-jwt``
credential whose ``vct`` is the 住民票 type of any issuer the verifier knows by name
(``{iss}/vct/juminhyo/1``, see :func:`vct_values`). Which issuers are *trusted* is not
decided here: the checklist (:mod:`verifier.policy`) takes the issuer from the
credential, looks it up in the trust source (registry, trust file) and accepts the
type only under that issuer's own URL. The ``vct_values`` only help a wallet pick.

Pure: no Flask, no clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Final

from credentials import doctypes, sdjwt
from credentials.encoding import b64d, b64e, loads_bounded
from credentials.errors import CodedError
from verifier.results import Check, VerificationResult

#: The credential query id: the key of the answer's ``vp_token``.
CREDENTIAL_ID: Final = "juminhyo"
FORMAT: Final = "dc+sd-jwt"
DOC_TYPE: Final = "juminhyo"
Path = tuple[str, ...]

#: The company's presets: 本人確認 (name, birth date, address), 住所確認 (name and
#: address), 年齢確認 (20歳以上, nothing else: not even the name).
PRESETS: Final[dict[str, tuple[Path, ...]]] = {
    "identity": (("family_name",), ("given_name",), ("birthdate",), ("address",)),
    "address": (("family_name",), ("given_name",), ("address",)),
    "age": (("age_equal_or_over", "20"),),
}
PRESET_LABELS: Final = {
    "identity": ("本人確認（氏名・生年月日・住所）", "identity (name, birth date, address)"),
    "address": ("住所確認（氏名・住所）", "address (name and address)"),
    "age": ("年齢確認（20歳以上か）", "age (20 or over)"),
}
_SEGMENT: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
MAX_PATHS: Final = 32


class RequestedClaimsError(CodedError):
    """A preset or claim path the verifier cannot ask for (400)."""


def parse_paths(names: Sequence[str] = (), preset: str | None = None) -> tuple[Path, ...]:
    """The requested claim paths: a preset's, else one path per name (``"address"``
    or ``"age_equal_or_over.20"``), in order, duplicates dropped. Raises
    :class:`RequestedClaimsError` for an unknown preset or a malformed name."""
    if preset:
        if preset not in PRESETS:
            raise RequestedClaimsError(
                "bad_request", "依頼の種類が不正です", f"unknown preset {preset[:40]!r}"
            )
        return PRESETS[preset]
    out: list[Path] = []
    for name in names:
        path = tuple(name.split("."))
        if not 1 <= len(path) <= 2 or not all(_SEGMENT.fullmatch(p) for p in path):
            raise RequestedClaimsError(
                "bad_request", "項目名が不正です", f"bad claim name {name[:40]!r}"
            )
        if path not in out:
            out.append(path)
    return tuple(out[:MAX_PATHS])


def vct_values(issuers: Iterable[str]) -> list[str]:
    """The 住民票 ``vct`` of each issuer, as the query's ``meta.vct_values``."""
    dt = doctypes.get(DOC_TYPE)
    return list(dict.fromkeys(dt.vct_for(iss) for iss in issuers))


def query(paths: Sequence[Path], vct: Sequence[str]) -> dict[str, Any]:
    """The ``dcql_query``: one key-bound ``dc+sd-jwt`` credential with these claims."""
    doc: dict[str, Any] = {"id": CREDENTIAL_ID, "format": FORMAT, "meta": {"vct_values": list(vct)}}
    if paths:
        doc["claims"] = [{"path": list(p)} for p in paths]
    return {"credentials": [doc]}


def label(path: Path, lang: str) -> str:
    """The claim's label in the 住民票 type (``20歳以上`` for the age claim)."""
    if path[0] == "age_equal_or_over" and len(path) == 2:
        return f"{path[1]}歳以上" if lang != "en" else f"{path[1]} or over"
    try:
        return doctypes.get(DOC_TYPE).label(".".join(path), lang)
    except ValueError:
        return ".".join(path)


# ------------------------------------------------------------------ the answer's claims


def disclosed_paths(presentation: str) -> tuple[Path, ...]:
    """The path of every disclosure the presentation carries, found by walking its
    (already verified) payload: ``("address",)``, ``("age_equal_or_over", "20")``, an
    array element as its index. Raises :class:`ValueError` for what cannot be read."""
    parsed = sdjwt.ParsedSdJwt.parse(presentation)
    by_digest: dict[str, list[Any]] = {}
    for encoded in parsed.disclosures:
        digest = b64e(hashlib.sha256(encoded.encode("ascii")).digest())
        value = loads_bounded(b64d(encoded))
        if not isinstance(value, list) or len(value) not in (2, 3):
            raise ValueError("malformed disclosure")
        by_digest[digest] = value
    found: list[Path] = []
    _walk(parsed.unverified_payload, (), by_digest, found)
    return tuple(found)


def _walk(node: Any, at: Path, by_digest: dict[str, list[Any]], found: list[Path]) -> None:
    if isinstance(node, dict):
        digests = node.get("_sd")
        for digest in digests if isinstance(digests, list) else ():
            disc = by_digest.get(digest) if isinstance(digest, str) else None
            if disc is not None and len(disc) == 3:
                found.append((*at, str(disc[1])))
                _walk(disc[2], (*at, str(disc[1])), by_digest, found)
        for key, value in node.items():
            if key not in ("_sd", "_sd_alg"):
                _walk(value, (*at, key), by_digest, found)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            ref = item.get("...") if isinstance(item, dict) and len(item) == 1 else None
            disc = by_digest.get(ref) if isinstance(ref, str) else None
            if disc is not None and len(disc) == 2:
                found.append((*at, str(i)))
                _walk(disc[1], (*at, str(i)), by_digest, found)
            else:
                _walk(item, (*at, str(i)), by_digest, found)


def unrequested(disclosed: Iterable[Path], requested: Sequence[Path]) -> list[str]:
    """The disclosed paths nobody asked for, dotted. A disclosure is requested when its
    path leads to a requested claim (the object around it) or lies inside one."""
    extra = []
    for path in disclosed:
        n = len(path)
        if not any(r[:n] == path or path[: len(r)] == r for r in requested):
            extra.append(".".join(path))
    return extra


def missing(claims: dict[str, Any], requested: Sequence[Path]) -> list[str]:
    """The requested paths the disclosed claims do not reach, dotted."""
    out = []
    for path in requested:
        node: Any = claims
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            out.append(".".join(path))
    return out


def check(
    result: VerificationResult, presentation: str, paths: Sequence[Path]
) -> VerificationResult:
    """``result`` with the request's own checks added: the credential is a 住民票 (its
    ``vct`` under its own, trusted, issuer: the checklist's format check), it discloses
    every requested claim and nothing else (a failed ``disclosures`` check names
    them)."""
    if not result.valid:
        return result
    if result.document_type != DOC_TYPE:
        return _failed(
            result,
            "format",
            "依頼した証明書（住民票の写し）ではありません",
            "not the requested credential (a certificate of residence)",
        )
    try:
        extra = unrequested(disclosed_paths(presentation), paths)
    except ValueError:
        extra = ["?"]
    if extra:
        names = ", ".join(sorted(extra)[:8])
        return _failed(
            result,
            "disclosures",
            f"依頼していない項目が開示されています（{names}）",
            f"claims that were not requested are disclosed ({names})",
        )
    lacking = missing(result.disclosed, paths)
    if lacking:
        names = ", ".join(lacking[:8])
        return _failed(
            result,
            "disclosures",
            f"依頼した項目が開示されていません（{names}）",
            f"requested claims are not disclosed ({names})",
        )
    return result


def _failed(result: VerificationResult, check_id: str, ja: str, en: str) -> VerificationResult:
    checks = tuple(Check(c.id, "fail", ja, en) if c.id == check_id else c for c in result.checks)
    return replace(result, checks=checks, disclosed={})
