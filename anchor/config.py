"""Where Shomei finds its chain and its files: the data directory and ``chain.json``.

The data directory (``SHOMEI_DATA_DIR``, default ``./data``) holds::

    chain.json          the network: RPC URLs, chain id, registry address, ...
    anvil/              the local development node: state.json, anvil.pid, anvil.log
    accounts/NAME.json  encrypted Ethereum keystores (issuers, governance)
    shomei.db           SQLite: the anchoring queue (``SHOMEI_DATABASE_URL`` overrides)

In production the network comes from the environment instead of (or on top of) the
file: ``SHOMEI_RPC_URLS`` (comma-separated, tried in order with fallback),
``SHOMEI_CHAIN_ID`` and ``SHOMEI_REGISTRY_ADDRESS``. Reading this module loads no web3.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credentials.errors import ShomeiError

from . import files

if TYPE_CHECKING:
    from ._rpc import RpcChain, RpcNode
    from .accounts import ChainAccount

DATA_DIR_ENV = "SHOMEI_DATA_DIR"
DATABASE_URL_ENV = "SHOMEI_DATABASE_URL"
RPC_URLS_ENV = "SHOMEI_RPC_URLS"
CHAIN_ID_ENV = "SHOMEI_CHAIN_ID"
REGISTRY_ENV = "SHOMEI_REGISTRY_ADDRESS"
CONFIRMATIONS_ENV = "SHOMEI_CONFIRMATIONS"
#: ``"confirmations": "finalized"``: wait for the network's finalized block instead of K.
FINALIZED = "finalized"
CONFIG_FILE = "chain.json"
#: anvil's (and hardhat's) chain id: the only one where the public dev keys may sign.
DEV_CHAIN_ID = 31337

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ConfigError(ShomeiError):
    """The configuration is missing or malformed (exit status 2 in the CLI)."""


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``path``, else ``SHOMEI_DATA_DIR``, else ``./data``. When it
    exists, it is first made private (:func:`anchor.files.tighten`): every command and
    app resolves its data directory here at start."""
    directory = Path(path if path is not None else os.environ.get(DATA_DIR_ENV) or "data")
    files.tighten(directory)
    return directory


def database_url(directory: Path) -> str:
    """``SHOMEI_DATABASE_URL``, else the SQLite file ``shomei.db`` in ``directory``."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{(directory / 'shomei.db').resolve()}"


def anvil_dir(directory: Path) -> Path:
    """Where the local node keeps its state, pid file and log."""
    return directory / "anvil"


def keystore_path(directory: Path, name: str) -> Path:
    """The keystore file of account ``name``. Raises ConfigError for a name that
    could escape the accounts folder."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ConfigError(
            f"アカウント名が不正です: {name!r}（英数字と _ . - のみ）",
            f"bad account name {name!r} (letters, digits, _ . - only)",
        )
    return directory / "accounts" / f"{name}.json"


@dataclass(frozen=True, kw_only=True)
class ChainConfig:
    """One Ethereum network and the AnchorRegistry on it."""

    rpc_urls: tuple[str, ...]
    chain_id: int
    registry_address: str | None = None
    explorer_tx_url: str | None = None  # "https://…/tx/{tx}"
    confirmations: int = 0
    finalized: bool = False  # chain.json "confirmations": "finalized"

    def __post_init__(self) -> None:
        if not self.rpc_urls or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in self.rpc_urls
        ):
            raise ConfigError(
                "RPC URL は http:// または https:// で始まる必要があります",
                "RPC URLs must start with http:// or https://",
            )
        if not isinstance(self.chain_id, int) or isinstance(self.chain_id, bool):
            raise ConfigError("chain_id は整数です", "chain_id must be an integer")
        if self.chain_id <= 0:
            raise ConfigError("chain_id は正の整数です", "chain_id must be positive")
        if self.registry_address is not None and not _ADDRESS.fullmatch(self.registry_address):
            raise ConfigError(
                f"登録簿のアドレスが不正です: {self.registry_address!r}",
                f"bad registry address {self.registry_address!r}",
            )
        if not isinstance(self.confirmations, int) or self.confirmations < 0:
            raise ConfigError("confirmations は0以上の整数です", "confirmations must be >= 0")

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, directory: Path, *, env: Mapping[str, str] | None = None) -> ChainConfig | None:
        """The configuration of ``directory/chain.json`` with the environment overrides
        applied; None when neither the file nor ``SHOMEI_RPC_URLS`` configures a chain.

        Raises ConfigError for a malformed file or override."""
        env = os.environ if env is None else env
        data = cls._read_file(directory / CONFIG_FILE)
        if data is None and not env.get(RPC_URLS_ENV):
            return None
        data = dict(data or {})
        if urls := env.get(RPC_URLS_ENV):
            data["rpc_urls"] = [u.strip() for u in urls.split(",") if u.strip()]
        if chain_id := env.get(CHAIN_ID_ENV):
            try:
                data["chain_id"] = int(chain_id)
            except ValueError:
                raise ConfigError(
                    f"{CHAIN_ID_ENV} は整数です", f"{CHAIN_ID_ENV} must be an integer"
                ) from None
        if registry := env.get(REGISTRY_ENV):
            data["registry_address"] = registry.strip()
        if confirmations := env.get(CONFIRMATIONS_ENV):
            value = confirmations.strip()
            data["confirmations"] = int(value) if value.isdigit() else value
        return cls.from_json(data)

    @classmethod
    def load_file(cls, directory: Path) -> ChainConfig | None:
        """``directory/chain.json`` as written, without environment overrides."""
        data = cls._read_file(directory / CONFIG_FILE)
        return None if data is None else cls.from_json(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChainConfig:
        """The configuration in a ``chain.json`` object. Raises ConfigError."""
        if "chain_id" not in data:
            raise ConfigError(
                f"chain_id がありません（{CONFIG_FILE} か {CHAIN_ID_ENV}）",
                f"no chain_id ({CONFIG_FILE} or {CHAIN_ID_ENV})",
            )
        urls = data.get("rpc_urls")
        if not isinstance(urls, list):
            raise ConfigError("rpc_urls はURLのリストです", "rpc_urls must be a list of URLs")
        confirmations = data.get("confirmations", 0)
        finalized = confirmations == FINALIZED
        is_int = isinstance(confirmations, int) and not isinstance(confirmations, bool)
        if not finalized and not is_int:
            raise ConfigError(
                'confirmations は0以上の整数か "finalized" です',
                'confirmations must be an integer >= 0 or "finalized"',
            )
        return cls(
            rpc_urls=tuple(urls),
            chain_id=data["chain_id"],
            registry_address=data.get("registry_address"),
            explorer_tx_url=data.get("explorer_tx_url"),
            confirmations=0 if finalized else confirmations,
            finalized=finalized,
        )

    def to_json(self) -> dict[str, Any]:
        """The ``chain.json`` object."""
        out = asdict(self)
        out["rpc_urls"] = list(self.rpc_urls)
        del out["finalized"]
        if self.finalized:
            out["confirmations"] = FINALIZED
        return out

    def save(self, directory: Path) -> Path:
        """Write ``directory/chain.json`` (atomically: a reader never sees half a file),
        mode 0600 in a 0700 directory."""
        path = directory / CONFIG_FILE
        files.make_private_dir(directory)
        # 0600: RPC URLs may carry a provider's API key.
        files.write_private(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())
        return path

    def with_registry(self, address: str | None) -> ChainConfig:
        """The same network with another registry address."""
        return replace(self, registry_address=address)

    @staticmethod
    def _read_file(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ConfigError(f"{path} を読めません", f"cannot read {path}: {e.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"{path} がJSONではありません", f"{path} is not JSON") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} の形式が不正です", f"{path} is not a JSON object")
        return data

    # ------------------------------------------------------------------ connections
    @property
    def is_dev_chain(self) -> bool:
        """Whether this is a local development chain (anvil, hardhat)."""
        return self.chain_id == DEV_CHAIN_ID

    def tx_link(self, tx: str | None) -> str | None:
        """The block explorer's page of transaction ``tx``, when an explorer is set."""
        if not tx or not self.explorer_tx_url:
            return None
        return self.explorer_tx_url.replace("{tx}", tx)

    def node(self) -> RpcNode:
        """A connection to the network (no registry needed: deployment, status)."""
        from ._rpc import RpcNode

        return RpcNode(self.rpc_urls, self.chain_id)

    def chain(self, account: ChainAccount | None = None) -> RpcChain:
        """The registry's chain, signing with ``account`` (read-only when None).

        Raises ConfigError when no registry address is configured."""
        from ._rpc import RpcChain

        if self.registry_address is None:
            raise ConfigError(
                f"登録簿のアドレスが未設定です（shomei registry deploy か {REGISTRY_ENV}）",
                f"no registry address (run `shomei registry deploy` or set {REGISTRY_ENV})",
            )
        return RpcChain(self.rpc_urls, self.chain_id, self.registry_address, account)
