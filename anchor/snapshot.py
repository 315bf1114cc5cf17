"""A signed, exported copy of the registry, so a verifier can work offline.

The snapshot lists every registered issuer with its keys and their validity, as of one
block, and is signed by the governance account (EIP-191 personal message over the
canonical JSON of the body). An offline verifier checks the signature against the
governance address it was configured with; anchors cannot be checked offline.
"""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address

from credentials.encoding import canonical_json
from credentials.errors import AnchorError

from ._web3chain import Web3Chain, event_topic
from .accounts import ChainAccount

FORMAT = "shomei-registry-snapshot/1"


def issuer_addresses(chain: Web3Chain, *, from_block: int = 0) -> list[str]:
    """Every address ever registered as an issuer, in registration order."""
    with chain.node.translating():
        logs = chain.node.w3.eth.get_logs(
            {
                "address": to_checksum_address(chain.registry_address),
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [event_topic("IssuerRegistered")],
            }
        )
    seen: dict[str, None] = {}
    for log in logs:
        topic = log["topics"][1]
        seen["0x" + bytes(topic)[-20:].hex()] = None
    return list(seen)


def export_snapshot(chain: Web3Chain, governance: ChainAccount, *, now: int) -> dict[str, Any]:
    """The signed snapshot document. Raises :class:`AnchorError` when ``governance`` is
    not the registry's governance account."""
    if governance.address.lower() != chain.governance().lower():
        raise AnchorError(
            "スナップショットには登録簿の管理者アカウントの署名が必要です",
            "the snapshot must be signed by the registry's governance account",
        )
    block = chain.block_number()
    issuers = []
    for address in issuer_addresses(chain):
        record = chain.issuer_of(address)
        if record is None:
            continue
        issuers.append(record.to_json())
    body = {
        "format": FORMAT,
        "chain_id": chain.chain_id,
        "registry_address": chain.registry_address,
        "governance": governance.address,
        "block": block,
        "exported_at": now,
        "issuers": issuers,
    }
    signed = governance.local.sign_message(encode_defunct(canonical_json(body)))
    return {"snapshot": body, "signature": "0x" + bytes(signed.signature).hex()}
