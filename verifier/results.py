"""What a verification reports: one entry per check of the checklist (DESIGN §5), and
the result document built from them. The procedure itself is :mod:`verifier.policy`."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from credentials.errors import ShomeiError
from credentials.trust import IssuerInfo

from .agreements import AgreementCheck

Status = Literal["pass", "fail", "warn", "skip"]
CHECK_IDS = (
    "format",
    "signature",
    "issuer",
    "disclosures",
    "anchor",
    "status",
    "validity",
    "holder",
    "document",
)


#: The entries of a finished report, in checklist order (one C call).
_IN_ORDER = operator.itemgetter(*CHECK_IDS)


class Check(NamedTuple):
    """One entry of the checklist. A named tuple: a verification builds nine."""

    id: str
    status: Status
    ja: str
    en: str

    @property
    def message(self) -> str:
        return f"{self.ja} / {self.en}"

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "message_ja": self.ja,
            "message_en": self.en,
        }


@dataclass(frozen=True)
class VerificationResult:
    """What a verifier reports; ``to_json()`` is the DESIGN §5 result document."""

    checks: tuple[Check, ...]
    document_type: str | None = None
    issuer: IssuerInfo | None = None
    disclosed: dict[str, Any] = field(default_factory=dict)
    anchor: dict[str, Any] | None = None
    #: One entry per party's agreement, for a contract whose agreements are disclosed.
    agreements: tuple[AgreementCheck, ...] | None = None
    #: The dropped document: ``{"sha256": …, "matches": bool | None}`` (None when the
    #: credential discloses no digest).
    document: dict[str, Any] | None = None

    @classmethod
    def malformed(cls, err: ShomeiError) -> VerificationResult:
        """The result for input that could not even be decoded (a damaged QR payload)."""
        r = Report()
        r.fail("format", err)
        return cls(
            checks=r.finish("形式が不正なため確認していません", "not checked: malformed input")
        )

    @property
    def valid(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def verdict(self) -> str:
        return "valid" if self.valid else "invalid"

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def to_json(self) -> dict[str, Any]:
        doc = {
            "verdict": self.verdict,
            "document_type": self.document_type,
            "issuer": self.issuer.to_json() if self.issuer else None,
            "disclosed": self.disclosed,
            "anchor": self.anchor,
            "checks": [c.to_json() for c in self.checks],
        }
        if self.agreements is not None:
            doc["agreements"] = [a.to_json() for a in self.agreements]
        if self.document is not None:
            doc["document"] = self.document
        return doc


class Report:
    """Collects one entry per check; a step not reached is reported as skipped."""

    def __init__(self) -> None:
        self.entries: dict[str, Check] = {}

    def add(self, check_id: str, status: Status, ja: str, en: str) -> None:
        self.entries[check_id] = Check(check_id, status, ja, en)

    def put(self, check: Check) -> None:
        """Record a prepared entry (one that reads the same every time)."""
        self.entries[check.id] = check

    def fail(self, check_id: str, err: ShomeiError) -> None:
        self.add(check_id, "fail", err.ja, err.en)

    def finish(self, reason_ja: str, reason_en: str) -> tuple[Check, ...]:
        entries = self.entries
        if len(entries) == len(CHECK_IDS):
            return _IN_ORDER(entries)  # type: ignore[no-any-return]
        return tuple(entries.get(c) or Check(c, "skip", reason_ja, reason_en) for c in CHECK_IDS)
