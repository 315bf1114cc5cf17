"""The checklist's entries that read the same every time (made once: each verification
reports nine) and the makers of those that vary by type, count or day (cached, bounded).
Pure, like the procedure that reports them (:mod:`verifier.policy`)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from credentials import doctypes, sdjwt
from credentials.encoding import JST

from .results import Check

__all__ = [
    "HOLDER_PASS",
    "NOT_BOUND",
    "NO_ANCHOR",
    "NO_DOCUMENT",
    "NO_HOLDER_PROOF",
    "NO_STATUS",
    "SIGNATURE_PASS",
    "disclosures_pass",
    "display_order",
    "format_pass",
    "issuer_pass",
    "jst",
    "validity_pass",
]

#: Japan has one time zone and no daylight saving time; certificates show its dates.
JST_OFFSET = 9 * 3600

SIGNATURE_PASS = Check(
    "signature", "pass", "発行者の署名を確認しました", "issuer signature verified"
)
NO_ANCHOR = Check(
    "anchor",
    "skip",
    "ブロックチェーンへの記録は確認していません（チェーン未設定またはオフライン）",
    "blockchain anchor not checked (no chain configured, or offline)",
)
NO_STATUS = Check(
    "status", "skip", "失効情報の参照がありません", "the credential has no status reference"
)
_NO_EXPIRY = Check("validity", "pass", "有効期限の定めはありません", "no expiry")
NO_HOLDER_PROOF = Check(
    "holder",
    "warn",
    "所持者の鍵による確認はありません（紙または画面の提示）",
    "no holder key proof (paper or screen presentation)",
)
NOT_BOUND = Check(
    "holder", "skip", "所持者の鍵の指定がない証明書です", "credential not bound to a holder key"
)
HOLDER_PASS = Check(
    "holder",
    "pass",
    "提示者が所持者の鍵を持っていることを確認しました",
    "holder key proof verified",
)
NO_DOCUMENT = Check("document", "skip", "文書（PDF）は指定されていません", "no document given")


def jst(ts: float) -> str:
    return datetime.fromtimestamp(ts, JST).strftime("%Y-%m-%d %H:%M:%S JST")


@lru_cache(maxsize=64)
def display_order(doc_type: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The user claims among ``names`` in schema order, then any the schema does not
    list in their own order (a credential's names repeat: one look-up, not two passes)."""
    present = set(names)
    listed = tuple(k for k in doctypes.get(doc_type).claim_names if k in present)
    rest = set(listed) | sdjwt.REGISTERED_CLAIMS
    return listed + tuple(k for k in names if k not in rest)


@cache
def format_pass(doc_type: str) -> Check:
    dt = doctypes.get(doc_type)
    return Check(
        "format", "pass", f"{dt.title('ja')}（SD-JWT VC）", f"{dt.title('en')} (SD-JWT VC)"
    )


@lru_cache(maxsize=256)
def issuer_pass(name: str, code: str) -> Check:
    return Check(
        "issuer", "pass", f"{name}（団体コード {code}）", f"{name} (municipality code {code})"
    )


@lru_cache(maxsize=64)
def disclosures_pass(n: int) -> Check:
    return Check(
        "disclosures",
        "pass",
        f"開示された {n} 項目はすべて署名済みの内容と一致します",
        f"all {n} disclosed claims match the signed digests",
    )


def validity_pass(payload: dict[str, Any]) -> Check:
    exp = payload.get("exp")
    if not isinstance(exp, int | float):
        return _NO_EXPIRY
    return _until(int(exp + JST_OFFSET) // 86400)


@lru_cache(maxsize=64)
def _until(jst_day: int) -> Check:
    day = datetime.fromtimestamp(jst_day * 86400, UTC).date().isoformat()
    return Check(
        "validity",
        "pass",
        f"有効期限内です（{doctypes.format_date(day, 'ja')}まで）",
        f"within its validity period (until {doctypes.format_date(day, 'en')})",
    )
