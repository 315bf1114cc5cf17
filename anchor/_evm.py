"""The in-process backend: py-evm through eth-tester and web3's EthereumTesterProvider.

Fast and hermetic, for unit tests and demos without a node. Its genesis funds the same
development accounts as anvil (:meth:`ChainAccount.dev`), so one test suite runs
unchanged on both backends.
"""

from __future__ import annotations

import re

from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from eth_utils.exceptions import ValidationError
from web3 import EthereumTesterProvider, Web3

from credentials.errors import AnchorError

from ._reverts import revert_data_from_message
from ._web3chain import DEFAULT_PRIORITY_FEE, Node, SendErrorKind, Web3Chain
from .accounts import DEV_HD_PATH, DEV_MNEMONIC, ChainAccount
from .chain import ChainRejected
from .registry import deploy_registry

_NONCE = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")


class EvmNode(Node):
    """A fresh in-process chain whose first ``accounts`` dev accounts hold 1,000,000 ETH.

    Blocks are mined one per transaction unless :meth:`set_automine` turns that off."""

    def __init__(self, *, accounts: int = 10) -> None:
        backend = PyEVMBackend.from_mnemonic(
            DEV_MNEMONIC, num_accounts=accounts, hd_path=DEV_HD_PATH
        )
        self.tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(self.tester))
        super().__init__(w3, int(w3.eth.chain_id))

    def translate(self, e: Exception) -> AnchorError | None:
        if isinstance(e, TransactionFailed):
            # The tester carries the revert bytes only as their repr inside a message.
            message = str(e.args[0]) if e.args else ""
            return self.decoder.rejection(revert_data_from_message(message), message)
        if isinstance(e, ValidationError):
            # py-evm refusing a transaction before running it (nonce, funds, gas).
            return ChainRejected("取引が拒否されました", f"the transaction is invalid: {e}")
        return super().translate(e)

    def send_error_kind(self, e: Exception) -> SendErrorKind | None:
        # py-evm says "Invalid transaction nonce: Expected 1, but got 0" for a nonce too
        # low *and* too high; only the first means "used".
        match = _NONCE.search(str(e))
        if match is not None:
            expected, got = int(match.group(1)), int(match.group(2))
            return "nonce_too_low" if got < expected else None
        return super().send_error_kind(e)

    def priority_fee(self) -> int:
        return DEFAULT_PRIORITY_FEE  # no fee market to ask in-process

    def set_automine(self, enabled: bool) -> None:
        if enabled:
            self.tester.enable_auto_mine_transactions()
        else:
            self.tester.disable_auto_mine_transactions()

    def mine(self, blocks: int = 1) -> None:
        self.tester.mine_blocks(blocks)


class EvmChain(Web3Chain):
    """The Chain of a registry inside an :class:`EvmNode`."""

    node: EvmNode

    def __init__(
        self, node: EvmNode, *, registry_address: str, account: ChainAccount | None = None
    ) -> None:
        super().__init__(node, registry_address=registry_address, account=account)

    @classmethod
    def fresh(cls, governance: ChainAccount | None = None) -> EvmChain:
        """A new in-process chain with a newly deployed registry, signing as its
        governance (dev account 0 unless given; it must be funded on the node)."""
        node = EvmNode()
        governance = governance or ChainAccount.dev(0)
        address = deploy_registry(node, governance)
        return cls(node, registry_address=address, account=governance)
