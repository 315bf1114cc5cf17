"""Revert data of the AnchorRegistry, decoded into messages for people (ja / en).

The contract reverts with custom errors (4-byte selector + ABI-encoded arguments). Both
backends hand us those bytes, each in its own way (see ``_web3chain.Node.translate``);
this module turns them into a :class:`ChainRejected` whose ``reason`` is the error name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from .chain import ChainRejected

Args = Sequence[Any]


def _time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(value: int) -> tuple[str, str]:
    return ("有効", "active") if value == 1 else ("停止中", "inactive")


# error name -> (ja, en) built from the decoded arguments.
_MESSAGES: dict[str, Callable[[Args], tuple[str, str]]] = {
    "NotGovernance": lambda a: (
        "ガバナンス権限のないアカウントです",
        f"only the governance account may do this (caller {a[0]})",
    ),
    "NotRegistered": lambda a: (
        "登録された発行者ではありません",
        f"{a[0]} is not a registered issuer",
    ),
    "NotActiveIssuer": lambda a: (
        "有効な発行者ではありません（未登録または停止中）",
        f"{a[0]} is not an active registered issuer",
    ),
    "AlreadyRegistered": lambda a: (
        "この発行者は登録済みです",
        f"{a[0]} is already a registered issuer",
    ),
    "IssuerIdTaken": lambda a: (
        "この発行者IDは既に別のアカウントに登録されています",
        f"the issuer id is already taken by {a[0]}",
    ),
    "StatusUnchanged": lambda a: (
        f"発行者は既に{_status(a[1])[0]}です",
        f"issuer {a[0]} is already {_status(a[1])[1]}",
    ),
    "EmptyValue": lambda a: (
        "空の値（アドレス、発行者ID、鍵、ルート）は使えません",
        "an address, issuer id, key or root is zero or empty",
    ),
    "KeyExists": lambda a: (
        "この鍵は既に登録されています",
        f"key {a[1].hex()} is already registered for {a[0]}",
    ),
    "UnknownKey": lambda a: (
        "この発行者にその鍵は登録されていません",
        f"{a[0]} has no key {a[1].hex()}",
    ),
    "KeyAlreadyRevoked": lambda a: (
        f"この鍵は既に失効しています（{_time(a[2])}）",
        f"key {a[1].hex()} is already revoked at {_time(a[2])}",
    ),
    "ValidFromInPast": lambda a: (
        "鍵の有効開始日時を過去にすることはできません",
        f"validFrom {_time(a[0])} is before the block time {_time(a[1])}",
    ),
    "AlreadyAnchored": lambda a: (
        f"このルートは既に記録されています（{_time(a[2])}）",
        f"root {a[1].hex()} was already anchored by {a[0]} at {_time(a[2])}",
    ),
}


class RevertDecoder:
    """Decodes revert data with the custom errors of one ABI."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item.get("inputs", [])]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            self._errors[selector] = (item["name"], types)
        self._errors[function_signature_to_4byte_selector("Error(string)")] = ("Error", ["string"])
        self._errors[function_signature_to_4byte_selector("Panic(uint256)")] = (
            "Panic",
            ["uint256"],
        )

    def rejection(self, data: bytes | None, fallback: str = "") -> ChainRejected:
        """The ChainRejected for revert ``data`` (None or undecodable: a generic one)."""
        name, args = self._decode(data) if data else (None, [])
        if name in _MESSAGES:
            ja, en = _MESSAGES[name](args)
            return ChainRejected(ja, en, reason=name)
        if name == "Error":
            return ChainRejected("取引が拒否されました", f"reverted: {args[0]}", reason=name)
        detail = f"data 0x{data.hex()}" if data else (fallback or "no reason given")
        return ChainRejected("取引が拒否されました", f"the transaction reverted ({detail})")

    def _decode(self, data: bytes) -> tuple[str | None, list[Any]]:
        entry = self._errors.get(data[:4])
        if entry is None:
            return None, []
        name, types = entry
        try:
            args = list(decode(types, data[4:]))
        except Exception:  # eth_abi raises several unrelated decoding errors
            return None, []
        return name, [
            to_checksum_address(a) if t == "address" else a
            for a, t in zip(args, types, strict=True)
        ]


def _abi_type(item: dict[str, Any]) -> str:
    # The registry's errors take only elementary types (no tuples): enums are uint8.
    return str(item["type"])


_BYTES_REPR = re.compile(r"""(b'.*'|b".*")\s*$""", re.DOTALL)


def revert_data_from_message(message: str) -> bytes | None:
    """The revert bytes inside an eth-tester message such as
    ``execution reverted: b'<\\x12…'`` (the tester gives only their ``repr``)."""
    match = _BYTES_REPR.search(message)
    if match is None:
        return None
    try:
        value = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None
