"""The result page's content from a result document (DESIGN §5), for people.

Claims get the labels of their document type's metadata; dates read in 西暦 and 和暦,
booleans (``age_equal_or_over``'s members: 20歳以上) はい / いいえ.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from credentials import doctypes
from credentials.encoding import JST
from edges.i18n import pick

_PARTY = {"orderer": ("発注者", "Orderer"), "contractor": ("受注者", "Contractor")}

_ICONS = {"pass": "✔", "fail": "✘", "warn": "!", "skip": "–"}


def _label(dt: doctypes.DocumentType | None, path: str, lang: str) -> str:
    if dt is None:
        return path
    try:
        return dt.label(path, lang)
    except ValueError:
        return path


def _value(value: Any, lang: str) -> str:
    if isinstance(value, str):
        try:
            return doctypes.format_date(value, lang)
        except ValueError:
            return value
    if isinstance(value, bool):  # 20歳以上: はい
        return pick(lang, "はい", "Yes") if value else pick(lang, "いいえ", "No")
    if value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"{value:,}"
    return json.dumps(value, ensure_ascii=False)


def claim_rows(doc_type: str | None, disclosed: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """Return ``(label, text)`` rows for the disclosed claims; an object's members and a
    list's items each get a row of their own (``期間 開始``, ``子 1 生年月日``)."""
    dt = doctypes.get(doc_type) if doc_type in doctypes.DOCUMENT_TYPES else None
    rows: list[tuple[str, str]] = []

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                walk(f"{path}.{key}", sub)
        elif isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(f"{path}[{i}]", item)
        elif isinstance(value, list):
            rows.append((_label(dt, path, lang), "、".join(_value(v, lang) for v in value)))
        else:
            rows.append((_label(dt, path, lang), _value(value, lang)))

    for name, value in disclosed.items():
        walk(name, value)
    return rows


def _date(value: Any, lang: str) -> str:
    try:
        return doctypes.format_date(str(value), lang)
    except ValueError:
        return str(value)


def _time(value: str, lang: str) -> str:
    """``2025年10月10日（令和7年10月10日） 10:00 JST`` from an RFC 3339 time."""
    try:
        when = datetime.fromisoformat(value).astimezone(JST)
    except ValueError:
        return value
    return f"{doctypes.format_date(when.date().isoformat(), lang)} {when:%H:%M} JST"


def yen(amount: Any, lang: str) -> str:
    """``¥12,650,000（税込）`` / ``¥12,650,000 (tax included)``."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        return str(amount)
    return pick(lang, f"¥{amount:,}（税込）", f"¥{amount:,} (tax included)")


def contract_view(doc: dict[str, Any], lang: str) -> dict[str, Any] | None:
    """Return the contract section (parties, amount, period, signatures) of a contract
    result, or None for another document type."""
    if doc.get("document_type") != "contract":
        return None
    claims = doc.get("disclosed") or {}
    period = claims.get("period") if isinstance(claims.get("period"), dict) else None
    key = "message_en" if lang == "en" else "message_ja"
    signatures = [
        {
            "party": pick(lang, *_PARTY[a["party"]])
            if a["party"] in ("orderer", "contractor")
            else a["party"],
            "time": _time(a["signed_at"], lang) if a["signed_at"] else "",
            "thumbprint": a["key_thumbprint"],
            "status": a["status"],
            "icon": _ICONS[a["status"]],
            "message": a[key],
        }
        for a in doc.get("agreements") or []
    ]
    return {
        "title": claims.get("title"),
        "number": claims.get("contract_number"),
        "orderer": claims.get("orderer") if isinstance(claims.get("orderer"), dict) else None,
        "contractor": claims.get("contractor")
        if isinstance(claims.get("contractor"), dict)
        else None,
        "amount": yen(claims["amount_jpy"], lang) if "amount_jpy" in claims else None,
        "period": f"{_date(period.get('start'), lang)} 〜 {_date(period.get('end'), lang)}"
        if period
        else None,
        "site": claims.get("site"),
        "concluded_on": _date(claims["concluded_on"], lang) if "concluded_on" in claims else None,
        "signatures": signatures,
    }


def view(doc: dict[str, Any], lang: str, *, explorer_tx_url: str | None) -> dict[str, Any]:
    """Return what the result template shows: verdict, revoked flag, type title, issuer,
    claim rows, anchor (with the explorer link when configured) and check rows."""
    doc_type = doc.get("document_type")
    doc_type = doc_type if isinstance(doc_type, str) else None
    checks = doc.get("checks", [])
    status = next((c for c in checks if c["id"] == "status"), None)
    revoked = bool(status and status["status"] == "fail" and "取り消し済み" in status["message"])
    anchor = doc.get("anchor")
    anchor_view = None
    if anchor:
        when = datetime.fromisoformat(anchor["timestamp"]).astimezone(JST)
        tx = anchor.get("tx") or ""
        anchor_view = {
            "block": anchor["block"],
            "chain_id": anchor["chain_id"],
            "time": when.strftime("%Y-%m-%d %H:%M:%S JST"),
            "tx": tx,
            "tx_url": explorer_tx_url.replace("{tx}", tx) if explorer_tx_url and tx else None,
        }
    key = "message_en" if lang == "en" else "message_ja"
    known = doc_type is not None and doc_type in doctypes.DOCUMENT_TYPES
    return {
        "valid": doc["verdict"] == "valid",
        "revoked": revoked,
        "title": doctypes.get(doc_type).title(lang) if known and doc_type else None,
        "issuer": doc.get("issuer"),
        # A contract's agreements are shown in its own table, not as raw claim rows.
        "claims": claim_rows(
            doc_type,
            {k: v for k, v in (doc.get("disclosed") or {}).items() if k != "agreements"},
            lang,
        ),
        "anchor": anchor_view,
        "contract": contract_view(doc, lang),
        # True / False when a document was dropped (None: its digest is not disclosed).
        "document": doc["document"] if doc.get("document") else None,
        "checks": [
            {
                "id": c["id"],
                "status": c["status"],
                "icon": _ICONS[c["status"]],
                "message": c.get(key, c["message"]),
            }
            for c in checks
        ],
    }
