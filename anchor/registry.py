"""Writing to the AnchorRegistry: deployment, governance actions, an issuer's own keys.

Each helper signs with the chain's account, waits until the transaction is mined and
returns its :class:`TxReceipt`; a revert raises :class:`ChainRejected` with the
registry's reason (``e.reason`` is the custom error name). Who may do what is decided
by the contract, not here: the helpers only shape the arguments.

- governance (``chain.account`` is the governance): :func:`register_issuer`,
  :func:`deactivate_issuer`, :func:`reactivate_issuer`, :func:`transfer_governance`,
  and :func:`add_key` / :func:`revoke_key` with ``issuer=`` (any issuer's keys);
- an issuer (``chain.account`` is the issuer): :func:`add_key` / :func:`revoke_key`
  without ``issuer=`` (its own keys only).
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from credentials.encoding import b64d
from credentials.keys import jwk_thumbprint, public_key_from_jwk

from ._web3chain import Node, Web3Chain, registry_artifact
from .accounts import ChainAccount
from .chain import ChainRejected, TxReceipt


def deploy_registry(node: Node, deployer: ChainAccount, *, governance: str | None = None) -> str:
    """Deploy a new AnchorRegistry signed by ``deployer``; governance is ``governance``
    (default: the deployer). Returns the contract's checksummed address."""
    artifact = registry_artifact()
    gov = to_checksum_address(governance or deployer.address)
    data = (
        node.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        .constructor(gov)
        .data_in_transaction
    )
    receipt = node.transact(deployer, to=None, data=HexBytes(data))
    address = receipt.get("contractAddress")
    if not address:
        raise ChainRejected("登録簿を配置できませんでした", "the registry was not deployed")
    return to_checksum_address(address)


def register_issuer(
    chain: Web3Chain, address: str, *, issuer_id: str, name: str, municipality_code: str
) -> TxReceipt:
    """Register ``address`` as an active issuer (governance only)."""
    return _send(
        chain, "registerIssuer", to_checksum_address(address), issuer_id, name, municipality_code
    )


def deactivate_issuer(chain: Web3Chain, address: str) -> TxReceipt:
    """Stop an issuer from anchoring and adding keys (governance only)."""
    return _send(chain, "deactivateIssuer", to_checksum_address(address))


def reactivate_issuer(chain: Web3Chain, address: str) -> TxReceipt:
    """Let a deactivated issuer anchor again (governance only)."""
    return _send(chain, "reactivateIssuer", to_checksum_address(address))


def transfer_governance(chain: Web3Chain, new_governance: str) -> TxReceipt:
    """Hand governance to ``new_governance`` (governance only)."""
    return _send(chain, "transferGovernance", to_checksum_address(new_governance))


def key_fields(jwk: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(thumbprint, x, y) of a public P-256 JWK, as the registry stores them.

    Raises :class:`credentials.errors.InvalidCredential` for anything but a valid EC
    P-256 public key."""
    public_key_from_jwk(jwk)  # strict: on the curve, no private part, 32-byte coordinates
    return b64d(jwk_thumbprint(jwk)), b64d(jwk["x"]), b64d(jwk["y"])


def add_key(
    chain: Web3Chain,
    jwk: dict[str, Any],
    *,
    issuer: str | None = None,
    valid_from: int | None = None,
) -> TxReceipt:
    """Publish a signing key. Without ``issuer`` the account adds its own key
    (``valid_from`` may not be in the past); with it, governance adds a key for that
    issuer (any ``valid_from``). ``valid_from`` None means "from the mining block"."""
    thumbprint, x, y = key_fields(jwk)
    when = valid_from or 0
    if issuer is None:
        return _send(chain, "addKey", thumbprint, x, y, when)
    return _send(chain, "addKeyFor", to_checksum_address(issuer), thumbprint, x, y, when)


def revoke_key(
    chain: Web3Chain,
    thumbprint: bytes,
    *,
    issuer: str | None = None,
    revoked_at: int | None = None,
) -> TxReceipt:
    """Revoke a key from ``revoked_at`` (None: from the mining block; an earlier time
    is allowed). Without ``issuer`` the account revokes its own key; with it,
    governance revokes that issuer's key."""
    if len(thumbprint) != 32:
        raise ValueError("a key thumbprint is 32 bytes")
    when = revoked_at or 0
    if issuer is None:
        return _send(chain, "revokeKey", thumbprint, when)
    return _send(chain, "revokeKeyFor", to_checksum_address(issuer), thumbprint, when)


def _send(chain: Web3Chain, function: str, *args: Any) -> TxReceipt:
    if chain.account is None:
        raise ValueError("this chain is read-only: it was built without an account")
    data = HexBytes(chain.contract.encode_abi(function, list(args)))
    r = chain.node.transact(chain.account, to=chain.registry_address, data=data)
    return TxReceipt(tx_hash=r["transactionHash"].to_0x_hex(), block=r["blockNumber"], success=True)
