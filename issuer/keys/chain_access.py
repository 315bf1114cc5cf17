"""The issuer's way to the chain: which network, and which account signs for the city.

Two settings of the app (``app.config``), each with a default from the data directory
and the environment:

- ``CHAIN_FACTORY``: a callable ``(account | None) -> Chain``. By default the network of
  ``chain.json`` / ``SHOMEI_RPC_URLS`` (``anchor.config.ChainConfig``); tests put an
  in-process EVM here.
- ``ANCHOR_ACCOUNT``: the city's Ethereum account (an ``anchor.accounts.ChainAccount``),
  which anchors batches and registers the city's signing keys. By default
  ``SHOMEI_ANCHOR_ACCOUNT``: a keystore name in ``<data dir>/accounts/`` (opened with
  ``SHOMEI_KEY_PASSPHRASE``), or ``dev:N`` for anvil's public account N on the local
  development chain only.

Every failure is a :class:`~anchor.config.ConfigError` with a message for the operator;
no key material is ever put into one. No Flask import at module level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor.config import ChainConfig, ConfigError

if TYPE_CHECKING:
    from anchor.accounts import ChainAccount
    from anchor.chain import Chain

ACCOUNT_ENV = "SHOMEI_ANCHOR_ACCOUNT"
PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
ChainFactory = Callable[["ChainAccount | None"], "Chain"]


def chain_config(config: Mapping[str, Any]) -> ChainConfig | None:
    """The network from the data directory and the environment, None when none is set."""
    return ChainConfig.load(Path(config["DATA_DIR"]))


def is_configured(config: Mapping[str, Any]) -> bool:
    """Whether this issuer anchors at all (a chain factory, chain.json or the env)."""
    if config.get("CHAIN_FACTORY") is not None:
        return True
    try:
        return chain_config(config) is not None
    except ConfigError:
        return True  # configured, but wrongly: the caller reports the error when used


def chain_for(config: Mapping[str, Any], account: ChainAccount | None) -> Chain:
    """A connection to the registry's chain signing with ``account`` (read-only when
    None). Raises ConfigError when no chain or registry is configured."""
    factory: ChainFactory | None = config.get("CHAIN_FACTORY")
    if factory is not None:
        return factory(account)
    cfg = chain_config(config)
    if cfg is None:
        raise ConfigError(
            "ブロックチェーンが設定されていません（chain.json または SHOMEI_RPC_URLS）",
            "no chain is configured (chain.json or SHOMEI_RPC_URLS)",
        )
    return cfg.chain(account)


def anchor_account(config: Mapping[str, Any]) -> ChainAccount:
    """The city's account: ``ANCHOR_ACCOUNT`` or ``SHOMEI_ANCHOR_ACCOUNT``. Raises
    ConfigError when none is set, it cannot be opened, or a dev account is asked for
    on another chain than the development chain."""
    account: ChainAccount | None = config.get("ANCHOR_ACCOUNT")
    if account is not None:
        return account
    spec = config.get("ANCHOR_ACCOUNT_NAME") or os.environ.get(ACCOUNT_ENV)
    if not spec:
        raise ConfigError(
            f"記録に使うアカウントが未設定です（{ACCOUNT_ENV}=NAME または dev:N）",
            f"no anchoring account: set {ACCOUNT_ENV}=NAME (a keystore) or dev:N",
        )
    return open_account(Path(config["DATA_DIR"]), str(spec), chain_config(config))


def open_account(directory: Path, spec: str, cfg: ChainConfig | None) -> ChainAccount:
    """The account named by ``spec``: ``dev:N`` or a keystore name. Raises ConfigError."""
    from anchor.operations import load_account

    if cfg is None:
        raise ConfigError(
            "ブロックチェーンが設定されていません（chain.json または SHOMEI_RPC_URLS）",
            "no chain is configured (chain.json or SHOMEI_RPC_URLS)",
        )
    if spec.startswith("dev:"):
        try:
            index = int(spec[4:])
        except ValueError:
            raise ConfigError(
                f"{ACCOUNT_ENV} の dev 番号が不正です", f"{ACCOUNT_ENV}: dev:N needs a number"
            ) from None
        return load_account(directory, cfg, None, index, passphrase=_no_prompt)
    from credentials.errors import KeyFileError

    try:
        return load_account(directory, cfg, spec, None, passphrase=_env_passphrase)
    except KeyFileError as e:
        raise ConfigError(f"アカウント {spec} を開けません: {e.ja}", e.en) from None


def _env_passphrase() -> str:
    secret = os.environ.get(PASSPHRASE_ENV)
    if not secret:
        raise ConfigError(
            f"鍵ストアのパスフレーズがありません（{PASSPHRASE_ENV}）",
            f"no keystore passphrase ({PASSPHRASE_ENV})",
        )
    return secret


def _no_prompt() -> str:  # pragma: no cover - a dev account has no keystore
    raise ConfigError("パスフレーズは不要です", "no passphrase needed")
