"""What both backends share: a :class:`Node` (one network, reached through web3) and
:class:`Web3Chain` (the :class:`~anchor.chain.Chain` interface on a node, a registry
address and, for writers, an account).

Transactions are always signed here with the local account and sent raw; the node never
holds a key. Every web3 call runs inside ``Node.translating()``, which turns library
exceptions into :class:`ChainRejected` / :class:`ChainUnavailable`.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import requests
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.types import TxParams

from credentials.errors import AnchorError

from ._reverts import RevertDecoder
from .accounts import ChainAccount
from .chain import (
    AnchorRecord,
    Chain,
    ChainRejected,
    ChainUnavailable,
    IssuerRecord,
    KeyRecord,
    SignedTx,
    TxReceipt,
)

log = logging.getLogger(__name__)

ARTIFACT = Path(__file__).resolve().parent / "contracts" / "AnchorRegistry.json"
GWEI = 10**9
#: Tip when the node cannot suggest one (the in-process EVM; some dev nodes).
DEFAULT_PRIORITY_FEE = 1 * GWEI
#: Headroom over the estimate: the anchor path is fixed, but the base fee is not the
#: only thing that can move between estimate and inclusion on every network.
GAS_MARGIN_PERCENT = 20

SendErrorKind = Literal["known", "nonce_too_low"]
# Lower-case fragments of "this exact transaction is already in the pool" and "that
# nonce is used" as geth, anvil, besu, nethermind and eth-tester word them.
_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "oldnonce", "invalid transaction nonce: expected")


@functools.cache
def registry_artifact() -> dict[str, Any]:
    """The compiled AnchorRegistry (abi, bytecode, ...), from the committed artifact."""
    with ARTIFACT.open(encoding="utf-8") as f:
        artifact: dict[str, Any] = json.load(f)
    return artifact


def event_topic(name: str) -> str:
    """The 0x topic0 of the registry event ``name``."""
    (item,) = [e for e in registry_artifact()["abi"] if e.get("name") == name]
    signature = f"{name}({','.join(i['type'] for i in item['inputs'])})"
    return Web3.keccak(text=signature).to_0x_hex()


def address_topic(address: str) -> str:
    """An address as an indexed-topic hex string (the tester ignores bytes topics)."""
    return "0x" + "00" * 12 + to_checksum_address(address)[2:].lower()


class Node:
    """One Ethereum network reached through ``w3``.

    Subclasses choose the provider and add the exceptions of their library to
    :meth:`translate`."""

    def __init__(self, w3: Web3, chain_id: int) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.decoder = RevertDecoder(registry_artifact()["abi"])

    # ------------------------------------------------------------------ errors
    @contextmanager
    def translating(self) -> Iterator[None]:
        """Run web3 calls; re-raise library errors as ChainRejected/ChainUnavailable."""
        try:
            yield
        except AnchorError:
            raise
        except Exception as e:
            translated = self.translate(e)
            if translated is None:
                raise
            raise translated from e

    def translate(self, e: Exception) -> AnchorError | None:
        """Our error for library exception ``e``, or None to let it through."""
        if isinstance(e, ContractLogicError):
            return self.decoder.rejection(_revert_bytes(e.data), e.message or "")
        if isinstance(e, BadFunctionCallOutput):
            return ChainRejected(
                "指定のアドレスに登録簿のコントラクトがありません",
                "no AnchorRegistry at the configured address (wrong address or network)",
            )
        if isinstance(e, TimeExhausted):
            return ChainUnavailable(
                "取引が時間内にブロックに取り込まれませんでした",
                "the transaction was not mined in time",
            )
        if isinstance(e, requests.RequestException | ConnectionError | TimeoutError):
            return ChainUnavailable(
                "ブロックチェーンに接続できません", f"cannot reach the chain ({type(e).__name__})"
            )
        if isinstance(e, Web3RPCError):
            return ChainRejected("ノードが要求を拒否しました", f"the node refused: {e.message}")
        if isinstance(e, Web3Exception):
            # An answer web3 could not use (malformed, unexpected shape): the endpoint's
            # fault, not ours; try again later like an outage.
            return ChainUnavailable(
                "ブロックチェーンのノードから不正な応答がありました",
                f"the node's answer was unusable ({type(e).__name__})",
            )
        return None

    def send_error_kind(self, e: Exception) -> SendErrorKind | None:
        """Whether a send failed because the transaction is already in the pool, or
        because its nonce is already used."""
        text = (e.message if isinstance(e, Web3RPCError) else str(e)).lower()
        if any(k in text for k in _KNOWN):
            return "known"
        if any(k in text for k in _NONCE_TOO_LOW):
            return "nonce_too_low"
        return None

    # ------------------------------------------------------------------ fees
    def priority_fee(self) -> int:
        """The node's suggested tip (eth_maxPriorityFeePerGas), else the default."""
        try:
            with self.translating():
                return max(int(self.w3.eth.max_priority_fee), 1)
        except ChainRejected:  # method not supported by this node
            return DEFAULT_PRIORITY_FEE

    def suggest_fees(self) -> tuple[int, int]:
        """(max_fee_per_gas, max_priority_fee_per_gas): twice the latest base fee plus
        the tip, which stays includable through six full blocks of base-fee rises."""
        with self.translating():
            base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            raise ChainRejected(
                "このネットワークはEIP-1559に対応していません",
                "the network has no EIP-1559 base fee",
            )
        tip = self.priority_fee()
        return 2 * int(base) + tip, tip

    # ------------------------------------------------------------------ transactions
    def transact(
        self, account: ChainAccount, *, to: str | None, data: bytes, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Sign a call (or a deployment when ``to`` is None) with ``account``, send it and
        wait for it. Returns the web3 receipt. Raises ChainRejected when the node's
        estimate reverts (decoded reason) or the mined transaction failed."""
        with self.translating():
            sender = _checked_address(account.address)
            params: TxParams = {"from": sender, "data": HexBytes(data)}
            if to is not None:
                params["to"] = _checked_address(to)
            gas = self.w3.eth.estimate_gas(params)
            max_fee, tip = self.suggest_fees()
            nonce = self.w3.eth.get_transaction_count(sender, "pending")
            tx: dict[str, Any] = {
                **params,
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "value": 0,
                "gas": gas + gas * GAS_MARGIN_PERCENT // 100,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
            del tx["from"]
            signed = account.local.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = dict(
                self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout, poll_latency=0.05)
            )
        if receipt["status"] != 1:
            raise ChainRejected("取引が失敗しました", f"transaction {tx_hash.to_0x_hex()} reverted")
        return receipt

    def close(self) -> None:
        """Release the connection (HTTP sessions); nothing to do in-process."""

    # ------------------------------------------------------------------ dev chains
    def set_automine(self, enabled: bool) -> None:
        """Mine each transaction at once (True), or only on :meth:`mine` (False)."""
        raise NotImplementedError

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (development chains only)."""
        raise NotImplementedError


class Web3Chain:
    """The :class:`~anchor.chain.Chain` of one AnchorRegistry on ``node``.

    ``account`` signs anchors; without one the chain is read-only (a verifier's).
    """

    def __init__(
        self, node: Node, *, registry_address: str, account: ChainAccount | None = None
    ) -> None:
        if not is_address(registry_address):
            raise ValueError(f"not an Ethereum address: {registry_address!r}")
        self.node = node
        self.chain_id: int = node.chain_id
        self._registry = to_checksum_address(registry_address)  # typed for web3
        self.registry_address: str = self._registry
        self.account = account
        self.contract = node.w3.eth.contract(address=self._registry, abi=registry_artifact()["abi"])

    def using(self, account: ChainAccount | None) -> Self:
        """The same chain and registry, signing with ``account`` (same connection)."""
        other = copy.copy(self)
        other.account = account
        return other

    def close(self) -> None:
        """Release the node's connection, shared with the chains made by :meth:`using`."""
        self.node.close()

    # ------------------------------------------------------------------ reads
    def read_anchor(self, issuer_address: str, root: bytes) -> AnchorRecord | None:
        """The anchor of ``root`` by that issuer (with the tx hash from its Anchored
        event), or None. Raises ValueError for a malformed address or root."""
        issuer = _checked_address(issuer_address)
        _check_root(root)
        with self.node.translating():
            timestamp, block = self.contract.functions.anchorOf(issuer, root).call()
            if timestamp == 0:
                return None
            # The stored block number bounds the search to one block: cheap on any node.
            logs = self.node.w3.eth.get_logs(
                {
                    "address": self._registry,
                    "fromBlock": block,
                    "toBlock": block,
                    "topics": [event_topic("Anchored"), address_topic(issuer), "0x" + root.hex()],
                }
            )
        tx = logs[0]["transactionHash"].to_0x_hex() if logs else None
        return AnchorRecord(
            issuer_address=issuer, root=bytes(root), block=block, timestamp=timestamp, tx=tx
        )

    def issuer_by_id(self, issuer_id: str) -> IssuerRecord | None:
        """The registered issuer with that ``iss`` URL (keys included), or None."""
        with self.node.translating():
            address = self.contract.functions.issuerAddressById(issuer_id).call()
        return None if int(address, 16) == 0 else self.issuer_of(address)

    def issuer_of(self, address: str) -> IssuerRecord | None:
        """The issuer registered at ``address`` (keys included), or None."""
        address = _checked_address(address)
        with self.node.translating():
            issuer_id, name, code, status = self.contract.functions.issuerOf(address).call()
            if status == 0:
                return None
            keys = self.contract.functions.keysOf(address).call()
        return IssuerRecord(
            address=address,
            issuer_id=issuer_id,
            name=name,
            municipality_code=code,
            active=status == 1,
            keys=tuple(
                KeyRecord(
                    thumbprint=bytes(tp),
                    x=bytes(x),
                    y=bytes(y),
                    valid_from=valid_from,
                    revoked_at=revoked_at or None,
                    added_at=added_at,
                )
                for tp, x, y, valid_from, revoked_at, added_at in keys
            ),
        )

    def governance(self) -> str:
        """The registry's governance address."""
        with self.node.translating():
            return str(self.contract.functions.governance().call())

    def block_number(self) -> int:
        with self.node.translating():
            return int(self.node.w3.eth.block_number)

    def finalized_block(self) -> int:
        """The ``finalized`` block's number (anvil: 64 blocks behind the head)."""
        with self.node.translating():
            return int(self.node.w3.eth.get_block("finalized")["number"])

    # ------------------------------------------------------------------ transactions
    def next_nonce(self, address: str, *, pending: bool = True) -> int:
        """The account's next nonce counting pending transactions, or (``pending``
        False) mined ones only. The in-process EVM counts mined ones either way."""
        sender = _checked_address(address)
        with self.node.translating():
            if pending:
                return int(self.node.w3.eth.get_transaction_count(sender, "pending"))
            return int(self.node.w3.eth.get_transaction_count(sender, "latest"))

    def suggest_fees(self) -> tuple[int, int]:
        """EIP-1559 (max_fee_per_gas, max_priority_fee_per_gas): 2 × base fee + tip."""
        return self.node.suggest_fees()

    def sign_anchor(
        self, root: bytes, *, nonce: int, max_fee_per_gas: int, max_priority_fee_per_gas: int
    ) -> SignedTx:
        """A signed ``anchor(root)`` from the account, not sent.

        The gas limit comes from the node's estimate, so a transaction that would revert
        (issuer not active, root already anchored) raises ChainRejected here and costs
        nothing. Raises ValueError without an account or for a malformed root."""
        account = self._signer()
        _check_root(root)
        data = HexBytes(self.contract.encode_abi("anchor", [root]))
        with self.node.translating():
            gas = self.node.w3.eth.estimate_gas(
                {"from": _checked_address(account.address), "to": self._registry, "data": data}
            )
        signed = account.local.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": self._registry,
                "data": data,
                "value": 0,
                "gas": gas + gas * GAS_MARGIN_PERCENT // 100,
                "maxFeePerGas": max_fee_per_gas,
                "maxPriorityFeePerGas": max_priority_fee_per_gas,
            }
        )
        return SignedTx(
            raw=bytes(signed.raw_transaction),
            tx_hash=signed.hash.to_0x_hex(),
            nonce=nonce,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=max_priority_fee_per_gas,
        )

    def broadcast(self, tx: SignedTx) -> None:
        """Send ``tx``. Already in the pool, or already mined: success. Raises
        ChainRejected when its nonce was used by another transaction."""
        try:
            with self.node.translating():
                self.node.w3.eth.send_raw_transaction(tx.raw)
            return
        except ChainRejected as e:
            cause = e.__cause__
            kind = self.node.send_error_kind(cause if isinstance(cause, Exception) else e)
            if kind == "known":
                return
            if kind != "nonce_too_low":
                raise
        if self.receipt(tx.tx_hash) is not None:
            return
        raise ChainRejected(
            "この取引の番号（nonce）は別の取引で使用済みです",
            f"nonce {tx.nonce} was used by another transaction; {tx.tx_hash} can never be mined",
            reason="NonceUsed",
        )

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt once mined, else None (pending, dropped or unknown)."""
        with self.node.translating():
            try:
                r = self.node.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None
        if r.get("blockNumber") is None:
            return None
        return TxReceipt(
            tx_hash=r["transactionHash"].to_0x_hex(),
            block=r["blockNumber"],
            success=r["status"] == 1,
        )

    # ------------------------------------------------------------------ conveniences
    def anchor(self, root: bytes, *, timeout: float = 60.0) -> TxReceipt:
        """Anchor ``root`` now and wait until it is mined (CLI and tests; the batcher
        uses the crash-safe primitives above). Raises ChainRejected or ChainUnavailable."""
        account = self._signer()
        max_fee, tip = self.suggest_fees()
        tx = self.sign_anchor(
            root,
            nonce=self.next_nonce(account.address),
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
        )
        self.broadcast(tx)
        deadline = time.monotonic() + timeout
        while (receipt := self.receipt(tx.tx_hash)) is None:
            if time.monotonic() > deadline:
                raise ChainUnavailable(
                    "取引が時間内にブロックに取り込まれませんでした",
                    f"{tx.tx_hash} not mined in time",
                )
            time.sleep(0.05)
        if not receipt.success:
            raise ChainRejected(
                "記録の取引が失敗しました", f"anchor transaction {tx.tx_hash} reverted"
            )
        return receipt

    def _signer(self) -> ChainAccount:
        if self.account is None:
            raise ValueError("this chain is read-only: it was built without an account")
        return self.account


def _checked_address(address: str) -> ChecksumAddress:
    if not is_address(address):
        raise ValueError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def _check_root(root: bytes) -> None:
    if not isinstance(root, bytes | bytearray) or len(root) != 32:
        raise ValueError("a Merkle root is 32 bytes")


def _revert_bytes(data: object) -> bytes | None:
    """Revert data from ContractLogicError.data: a 0x string, or a dict with "data"."""
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


if TYPE_CHECKING:

    def _implements_chain(chain: Web3Chain) -> Chain:
        return chain  # mypy checks here that Web3Chain satisfies the Chain protocol
