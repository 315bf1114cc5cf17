"""What a clerk types about a contract, checked against the ``contract/1`` schema, and
the credential's claims built from it. No Flask.

The schema is the one authority: a contractor's name, 法人番号 (check digit) and
representative, and a contract's terms, are validated by putting them into a complete
set of contract claims and validating that, so the form and the credential can never
disagree. Only the fields the clerk entered are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from credentials import doctypes
from credentials.errors import ValidationError
from issuer.contracts.agreements import rfc3339
from issuer.contracts.forms import ContractorForm, TermsForm
from issuer.contracts.models import Contract
from issuer.keys.service import City

CONTRACTOR_FIELDS = ("name", "corporate_number", "representative", "email")
TERM_FIELDS = ("title", "contract_number", "amount_jpy", "period_start", "period_end", "site")
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251})\.[A-Za-z]{2,}$"
)
_PLACEHOLDER_AGREEMENT = {
    "party": "orderer",
    "signed_at": "2025-01-01T00:00:00+09:00",
    "key_thumbprint": "A" * 43,
    "signature": "AAAA",
}


@dataclass(frozen=True, kw_only=True)
class ContractorInput:
    name: str
    corporate_number: str
    representative: str
    email: str


@dataclass(frozen=True, kw_only=True)
class Terms:
    title: str
    contract_number: str
    amount_jpy: int
    period_start: str
    period_end: str
    site: str | None


def contractor_input(form: ContractorForm) -> ContractorInput:
    """The contractor the clerk entered, checked. Raises ``ValidationError`` keyed by
    field name."""
    entered = {name: getattr(form, name) for name in CONTRACTOR_FIELDS}
    claims = doctypes.sample("contract")
    claims["contractor"] = {k: entered[k] for k in ("name", "corporate_number", "representative")}
    errors = _errors_of(claims, prefix="contractor.")
    if not _EMAIL.fullmatch(entered["email"]) or len(entered["email"]) > 254:
        errors.append(("email", "メールアドレスが正しくありません", "enter a valid e-mail address"))
    if errors:
        raise ValidationError(errors)
    return ContractorInput(**entered)


class ContractorNames(Protocol):
    """What the credential says of the contractor (an entered or an opened one)."""

    @property
    def name(self) -> str: ...
    @property
    def corporate_number(self) -> str: ...
    @property
    def representative(self) -> str: ...


def terms_input(form: TermsForm, *, city: City, contractor: ContractorNames) -> Terms:
    """The contract's terms the clerk entered, checked (amount with or without digit
    separators). Raises ``ValidationError`` keyed by field name (``period_start``, …)."""
    entered = {name: getattr(form, name) for name in TERM_FIELDS}
    errors: list[tuple[str, str, str]] = []
    amount_text = entered["amount_jpy"].replace(",", "").replace("，", "")
    amount: int | None = None
    if amount_text.isascii() and amount_text.isdigit():
        amount = int(amount_text)
    else:
        errors.append(
            (
                "amount_jpy",
                "金額は半角数字（円、税込）で入力してください",
                "enter the amount in yen",
            )
        )
    terms = Terms(
        title=entered["title"],
        contract_number=entered["contract_number"],
        amount_jpy=amount if amount is not None else 0,
        period_start=entered["period_start"],
        period_end=entered["period_end"],
        site=entered["site"] or None,
    )
    claims = claims_of(
        terms,
        contractor=contractor,
        city=city,
        document_sha256="0" * 64,
        concluded_on="2025-01-01",
        agreements=[_PLACEHOLDER_AGREEMENT],
    )
    errors.extend(
        e for e in _errors_of(claims, prefix="") if e[0] != "amount_jpy" or amount is not None
    )
    if errors:
        raise ValidationError(errors)
    return terms


def terms_of(contract: Contract) -> Terms:
    return Terms(
        title=contract.title,
        contract_number=contract.contract_number,
        amount_jpy=contract.amount_jpy,
        period_start=contract.period_start,
        period_end=contract.period_end,
        site=contract.site,
    )


def claims_of(
    terms: Terms,
    *,
    contractor: ContractorNames,
    city: City,
    document_sha256: str,
    concluded_on: str,
    agreements: list[dict[str, str]],
) -> dict[str, Any]:
    """The ``contract/1`` claims (not yet validated)."""
    claims: dict[str, Any] = {
        "title": terms.title,
        "contract_number": terms.contract_number,
        "orderer": {
            "name": city.settings.name,
            "municipality_code": city.settings.municipality_code,
        },
        "contractor": {
            "name": contractor.name,
            "corporate_number": contractor.corporate_number,
            "representative": contractor.representative,
        },
        "amount_jpy": terms.amount_jpy,
        "period": {"start": terms.period_start, "end": terms.period_end},
        "concluded_on": concluded_on,
        "document_sha256": document_sha256,
        "agreements": agreements,
    }
    if terms.site:
        claims["site"] = terms.site
    return claims


def concluded_on(timestamp: float) -> str:
    """The Japanese calendar date of ``timestamp`` (締結日: the day the last party signed)."""
    return rfc3339(timestamp)[:10]


def _errors_of(claims: dict[str, Any], *, prefix: str) -> list[tuple[str, str, str]]:
    """The schema's messages for the fields under ``prefix``, keyed by form field."""
    try:
        doctypes.validate_claims("contract", claims)
    except ValidationError as e:
        found = []
        for path, ja, en in e.errors:
            if not path.startswith(prefix):
                continue
            field = path[len(prefix) :].replace("period.", "period_")
            found.append((field, ja, en))
        return found
    return []
