"""The chain backends, public: web3's in-process EVM (``EvmNode``/``EvmChain``, fast
tests and demos), JSON-RPC with fallback (``RpcNode``/``RpcChain``: anvil, Sepolia, any
EVM network) and their common base ``Web3Chain`` (registry writes). They implement
:class:`anchor.chain.Chain` and depend on :mod:`anchor.chain`, never the reverse.
Importing this module loads web3.
"""

from __future__ import annotations

from ._evm import EvmChain, EvmNode
from ._rpc import RpcChain, RpcNode
from ._web3chain import Web3Chain

__all__ = ["EvmChain", "EvmNode", "RpcChain", "RpcNode", "Web3Chain"]
