"""What a clerk typed on the contract forms, as typed values: the views build these
from the request, the services never see a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


class _Entered:
    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> Self:
        """The fields of ``form`` (a request's form data), stripped; empty if missing."""
        return cls(**{f.name: _text(form, f.name) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ContractorForm(_Entered):
    """The contractor form's fields, stripped (empty when missing)."""

    name: str = ""
    corporate_number: str = ""
    representative: str = ""
    email: str = ""


@dataclass(frozen=True, kw_only=True)
class TermsForm(_Entered):
    """The contract form's terms, stripped (empty when missing); the amount as typed."""

    title: str = ""
    contract_number: str = ""
    amount_jpy: str = ""
    period_start: str = ""
    period_end: str = ""
    site: str = ""
