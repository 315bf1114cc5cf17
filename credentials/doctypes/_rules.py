"""Rules that relate several claims of one document, beyond what its schema says.

Each rule takes claims of any shape (it runs on invalid input too, to report every
problem at once) and returns ``(path, kind)`` issues; see ``_messages`` for the kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._fastcheck import Issue
from .dates import parse_date


def _period_in_order(claims: dict[str, Any]) -> list[Issue]:
    period = claims.get("period")
    if not isinstance(period, dict):
        return []
    start, end = period.get("start"), period.get("end")
    if not (isinstance(start, str) and isinstance(end, str)):
        return []
    try:
        if parse_date(end) < parse_date(start):
            return [(("period", "end"), "period_order")]
    except ValueError:  # a malformed date is reported by the date check itself
        pass
    return []


def _each_party_signs_once(claims: dict[str, Any]) -> list[Issue]:
    agreements = claims.get("agreements")
    if not isinstance(agreements, list):
        return []
    issues: list[Issue] = []
    seen: set[str] = set()
    for index, agreement in enumerate(agreements):
        party = agreement.get("party") if isinstance(agreement, dict) else None
        if not isinstance(party, str):
            continue
        if party in seen:
            issues.append((("agreements", index, "party"), "duplicate_party"))
        seen.add(party)
    return issues


def _contract(claims: dict[str, Any]) -> list[Issue]:
    return _period_in_order(claims) + _each_party_signs_once(claims)


RULES: dict[str, Callable[[dict[str, Any]], list[Issue]]] = {"contract": _contract}
