"""Chain fixtures: every chain test runs on the in-process EVM and on a real anvil node.

anvil comes from the npm package ``@foundry-rs/anvil`` (``npm ci`` at the repository
root). It listens on 127.0.0.1 only, on a free port, and is stopped by the PID of the
process these fixtures started. Without it the anvil tests skip locally and fail in CI
(``CI=true``), so a CI run can never pass by silently not testing the real node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from anchor_testing import ANVIL_CHAIN_ID, Anvil, free_port, postgres_schema

from anchor._web3chain import Node, Web3Chain
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain, EvmNode, RpcChain, RpcNode
from anchor.registry import deploy_registry


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    node = Anvil(tmp_path_factory.mktemp("anvil") / "anvil.log")
    yield node
    node.stop()


@pytest.fixture
def dead_url() -> str:
    """An RPC URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Net:
    """One backend: a node to deploy with, and chains over it."""

    name: str
    node: Node
    urls: list[str] = field(default_factory=list)

    def chain(self, registry_address: str, account: ChainAccount | None) -> Web3Chain:
        if isinstance(self.node, EvmNode):
            return EvmChain(self.node, registry_address=registry_address, account=account)
        return RpcChain(self.urls, ANVIL_CHAIN_ID, registry_address, account)

    def deploy(self, governance: ChainAccount) -> Web3Chain:
        """A new registry governed by ``governance``, and its chain signing as it."""
        return self.chain(deploy_registry(self.node, governance), governance)


@pytest.fixture(scope="session", params=["evm", "anvil"])
def net(request: pytest.FixtureRequest) -> Iterator[Net]:
    if request.param == "evm":
        yield Net("evm", EvmNode())
        return
    server: Anvil = request.getfixturevalue("anvil")
    node = RpcNode([server.url], ANVIL_CHAIN_ID)
    yield Net("anvil", node, [server.url])
    node.close()


@dataclass(frozen=True)
class People:
    governance: ChainAccount
    city_a: ChainAccount
    city_b: ChainAccount
    outsider: ChainAccount


@pytest.fixture(scope="session")
def people() -> People:
    # Funded on both backends: the dev mnemonic's accounts 0-3.
    return People(*(ChainAccount.dev(i) for i in range(4)))


@pytest.fixture
def gov(net: Net, people: People) -> Iterator[Web3Chain]:
    """A freshly deployed registry, seen through the governance account."""
    chain = net.deploy(people.governance)
    yield chain
    chain.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty anchoring database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'anchor.db'}"
        return
    with postgres_schema() as url:
        yield url
