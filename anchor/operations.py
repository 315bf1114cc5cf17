"""The operator's services behind ``shomei account|registry|anchor|receipt``.

Each function takes the data directory (or a loaded configuration) and plain values,
does one thing against the keystores, the chain or the anchoring database, and returns
data or the lines to print. Failures raise ShomeiError subclasses (ConfigError,
ChainUnavailable, ...); nothing here prints, prompts or exits. web3, eth_account and
SQLAlchemy are imported inside the functions that use them, so ``shomei verify``
starts fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credentials.encoding import JST, b64d

from . import files
from .chain import ChainUnavailable, IssuerRecord
from .config import (
    DEV_CHAIN_ID,
    RPC_URLS_ENV,
    ChainConfig,
    ConfigError,
    keystore_path,
)

if TYPE_CHECKING:
    from ._rpc import RpcChain
    from ._web3chain import Node
    from .accounts import ChainAccount
    from .chain import TxReceipt


#: Asks for the keystore passphrase: called only once a keystore is about to be used.
Passphrase = Callable[[], str]


# ================================================================== shared
def jst(timestamp: float) -> str:
    """``2026-11-23 18:00:00 JST``."""
    return datetime.fromtimestamp(timestamp, JST).strftime("%Y-%m-%d %H:%M:%S JST")


def require_config(directory: Path) -> ChainConfig:
    """The chain configuration. Raises ConfigError when there is none."""
    cfg = ChainConfig.load(directory)
    if cfg is None:
        raise ConfigError(
            f"チェーンの設定がありません（{directory / 'chain.json'}）。shomei chain up を実行"
            f"するか {RPC_URLS_ENV} を設定してください",
            f"no chain configured ({directory / 'chain.json'}): run `shomei chain up` "
            f"or set {RPC_URLS_ENV}",
        )
    return cfg


def load_account(
    directory: Path,
    cfg: ChainConfig,
    name: str | None,
    dev: int | None,
    *,
    passphrase: Passphrase,
) -> ChainAccount:
    """The signing account of ``--account NAME`` or ``--dev N`` (``passphrase`` is
    asked only for a keystore that exists). Raises ConfigError for an unknown account,
    and for a dev account on anything but the dev chain."""
    from .accounts import ChainAccount

    if name is not None and dev is not None:
        raise ConfigError(
            "--account と --dev は同時に指定できません", "use --account or --dev, not both"
        )
    if dev is not None:
        if cfg.chain_id != DEV_CHAIN_ID:
            raise ConfigError(
                f"開発用アカウント（--dev）は開発チェーン（chain id {DEV_CHAIN_ID}）専用です"
                f"（このチェーンは {cfg.chain_id}）",
                f"--dev accounts are public keys for the dev chain ({DEV_CHAIN_ID}) only; "
                f"this chain is {cfg.chain_id}: use --account NAME",
            )
        return ChainAccount.dev(dev)
    if name is None:
        raise ConfigError(
            "署名するアカウントを --account NAME で指定してください",
            "choose the signing account with --account NAME (or --dev N on the dev chain)",
        )
    path = keystore_path(directory, name)
    if not path.exists():
        raise ConfigError(
            f"アカウント {name} がありません（shomei account new {name}）",
            f"unknown account {name} (create it with `shomei account new {name}`)",
        )
    return ChainAccount.from_keystore(path, passphrase())


def has_code(node: Node, address: str) -> bool:
    """Whether a contract is deployed at ``address``. Raises ChainUnavailable."""
    from eth_utils.address import to_checksum_address

    with node.translating():
        return len(node.w3.eth.get_code(to_checksum_address(address))) > 0


# ================================================================== accounts
def account_new(directory: Path, name: str, *, passphrase: Passphrase) -> str:
    """Create an encrypted keystore for a new account; return its address. Raises
    ConfigError when the account exists (before ``passphrase`` is asked)."""
    from .accounts import ChainAccount

    path = keystore_path(directory, name)
    if path.exists():
        raise ConfigError(
            f"アカウント {name} は既に存在します",
            f"account {name} exists ({path}), not overwriting",
        )
    account = ChainAccount.generate()
    keystore = account.to_keystore(passphrase())
    files.make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(keystore, f)
    return account.address


def account_address(directory: Path, name: str) -> str:
    """The address of account ``name`` (from its keystore, without decrypting it)."""
    from eth_utils.address import to_checksum_address

    path = keystore_path(directory, name)
    try:
        address = json.loads(path.read_text(encoding="utf-8"))["address"]
        return str(to_checksum_address("0x" + address.removeprefix("0x")))
    except FileNotFoundError:
        raise ConfigError(f"アカウント {name} がありません", f"unknown account {name}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path} は鍵ストアではありません", f"{path} is not a keystore") from None


def balance_line(directory: Path, address: str) -> str | None:
    """The account's balance on the configured chain, or None when there is none."""
    cfg = ChainConfig.load(directory)
    if cfg is None:
        return None
    node = cfg.node()
    try:
        with node.translating():
            wei = int(node.w3.eth.get_balance(address))  # type: ignore[arg-type]
    except ChainUnavailable:
        return "残高 / balance: 不明 / unknown (node unreachable)"
    finally:
        node.close()
    return f"残高 / balance: {wei / 10**18:.6f} ETH (chain id {cfg.chain_id})"


# ================================================================== the registry
def registry_deploy(
    directory: Path, account: ChainAccount, *, governance: str | None, force: bool
) -> str:
    """Deploy an AnchorRegistry and record its address in chain.json; return it.
    Raises ConfigError when a registry is already configured (unless ``force``)."""
    from .registry import deploy_registry

    cfg = require_config(directory)
    node = cfg.node()
    try:
        if cfg.registry_address and not force and has_code(node, cfg.registry_address):
            raise ConfigError(
                f"登録簿は配置済みです（{cfg.registry_address}）。置き換えるには --force",
                f"a registry is already deployed at {cfg.registry_address} (use --force "
                "to deploy another)",
            )
        address = deploy_registry(node, account, governance=governance)
    finally:
        node.close()
    on_file = ChainConfig.load_file(directory)
    target = on_file if on_file is not None and on_file.chain_id == cfg.chain_id else cfg
    target.with_registry(address).save(directory)
    return address


def tx_line(cfg: ChainConfig, tx: str, block: int) -> str:
    """``block N, tx 0x…`` and, on a network with an explorer, the link below it."""
    link = cfg.tx_link(tx)
    return f"block {block}, tx {tx}" + (f"\n  {link}" if link else "")


def find_issuer(chain: RpcChain, issuer_id: str) -> IssuerRecord:
    """The registered issuer ``issuer_id``. Raises ConfigError when there is none."""
    record = chain.issuer_by_id(issuer_id)
    if record is None:
        raise ConfigError(
            f"発行者 {issuer_id} は登録されていません", f"issuer {issuer_id} is not registered"
        )
    return record


def key_change(
    directory: Path,
    account: ChainAccount,
    issuer_id: str,
    change: Callable[[RpcChain, str | None], TxReceipt],
) -> str:
    """Run ``change(chain, issuer)`` as the issuer itself (``issuer`` None) or as
    governance for that issuer; return the transaction line."""
    cfg = require_config(directory)
    chain = cfg.chain(account)
    try:
        issuer = find_issuer(chain, issuer_id)
        own = issuer.address.lower() == account.address.lower()
        receipt = change(chain, None if own else issuer.address)
    finally:
        chain.close()
    return tx_line(cfg, receipt.tx_hash, receipt.block)


def registry_document(directory: Path, issuer_id: str | None) -> dict[str, Any]:
    """The registry as JSON: governance, block, and the issuers (or one of them)."""
    from .snapshot import issuer_addresses

    cfg = require_config(directory)
    chain = cfg.chain()
    try:
        if issuer_id is not None:
            records = [find_issuer(chain, issuer_id)]
        else:
            found = (chain.issuer_of(a) for a in issuer_addresses(chain))
            records = [r for r in found if r is not None]
        return {
            "chain_id": cfg.chain_id,
            "registry_address": chain.registry_address,
            "governance": chain.governance(),
            "block": chain.block_number(),
            "issuers": [r.to_json() for r in records],
        }
    finally:
        chain.close()


def describe_registry(doc: dict[str, Any]) -> str:
    """The lines of ``shomei registry show`` for a :func:`registry_document`."""
    lines = [
        f"登録簿 / registry {doc['registry_address']} (chain id {doc['chain_id']}, "
        f"block {doc['block']})",
        f"管理者 / governance: {doc['governance']}",
    ]
    if not doc["issuers"]:
        lines.append("発行者なし / no issuers")
    for i in doc["issuers"]:
        state = "有効 / active" if i["active"] else "停止中 / deactivated"
        lines.append(f"\n{i['name']}（{i['municipality_code']}） {i['issuer_id']}")
        lines.append(f"  address {i['address']}  {state}")
        for k in i["keys"]:
            revoked = f", 失効 / revoked {jst(k['revoked_at'])}" if k["revoked_at"] else ""
            lines.append(f"  key {k['kid']}  from {jst(k['valid_from'])}{revoked}")
    return "\n".join(lines)


def read_jwk(path: str) -> dict[str, Any]:
    """The public members of the JWK in file ``path``. Raises ConfigError when the file
    cannot be read or is not a JSON object."""
    try:
        jwk = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path} を読めません", f"cannot read the JWK file {path}") from None
    if not isinstance(jwk, dict):
        raise ConfigError(f"{path} はJWKではありません", f"{path} is not a JWK")
    return {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}


def kid_bytes(kid: str) -> bytes:
    """The 32-byte thumbprint a base64url kid names. Raises ConfigError otherwise."""
    try:
        raw = b64d(kid)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"鍵ID（kid）が不正です: {kid}", f"bad kid {kid} (the key's JWK thumbprint)"
        )
    return raw


def issuer_register(
    cfg: ChainConfig,
    account: ChainAccount,
    address: str,
    *,
    issuer_id: str,
    name: str,
    municipality_code: str,
) -> str:
    """Register ``address`` as issuer ``issuer_id``, signed by ``account`` (governance).
    Returns the confirmation line. Raises ChainUnavailable, or a ShomeiError when the
    registry rejects the transaction."""
    from .registry import register_issuer

    chain = cfg.chain(account)
    try:
        r = register_issuer(
            chain, address, issuer_id=issuer_id, name=name, municipality_code=municipality_code
        )
    finally:
        chain.close()
    return f"登録しました / registered {issuer_id} → {address}: {tx_line(cfg, r.tx_hash, r.block)}"


def key_add(
    directory: Path,
    account: ChainAccount,
    issuer_id: str,
    jwk: dict[str, Any],
    *,
    valid_from: int | None,
) -> str:
    """Publish ``jwk`` as a signing key of ``issuer_id`` from ``valid_from``; return the
    confirmation line. Raises ConfigError for an unknown issuer, InvalidCredential for
    a key that is not P-256, ChainUnavailable."""
    from credentials.keys import jwk_thumbprint

    from .registry import add_key

    line = key_change(
        directory,
        account,
        issuer_id,
        lambda chain, issuer: add_key(chain, jwk, issuer=issuer, valid_from=valid_from),
    )
    return f"鍵を登録しました / key added {jwk_thumbprint(jwk)}: {line}"


def key_revoke(
    directory: Path, account: ChainAccount, issuer_id: str, kid: str, *, at: int | None
) -> str:
    """Revoke key ``kid`` of ``issuer_id`` from ``at`` (None: now); return the
    confirmation line. Raises ConfigError for a malformed kid or an unknown issuer,
    ChainUnavailable."""
    from .registry import revoke_key

    thumbprint = kid_bytes(kid)
    line = key_change(
        directory,
        account,
        issuer_id,
        lambda chain, issuer: revoke_key(chain, thumbprint, issuer=issuer, revoked_at=at),
    )
    return f"鍵を失効させました / key revoked {kid}: {line}"


def snapshot_export(cfg: ChainConfig, account: ChainAccount, *, now: int) -> dict[str, Any]:
    """The registry as a snapshot document signed by ``account``. Raises AnchorError when
    ``account`` is not the governance, ChainUnavailable."""
    from .snapshot import export_snapshot

    chain = cfg.chain(account)
    try:
        return export_snapshot(chain, account, now=now)
    finally:
        chain.close()
