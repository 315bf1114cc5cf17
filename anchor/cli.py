"""The operator's commands for the chain: ``shomei chain|account|registry|anchor|receipt``.

Each command parses its options, calls one small function and prints the result. Every
failure becomes a bilingual message and exit status 2 (``shomei anchor --wait`` exits 1
while something is still pending), never a traceback. web3, eth_account and SQLAlchemy
are imported only by the commands that use them, so ``shomei verify`` starts fast.

The local development node is anvil (npm ``@foundry-rs/anvil``), started detached in its
own session on 127.0.0.1 and stopped by the pid it wrote, never by name.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from credentials._b64 import b64d, b64e
from credentials.errors import ShomeiError

from . import merkle
from .chain import ChainUnavailable, IssuerRecord
from .config import (
    DATA_DIR_ENV,
    DEV_CHAIN_ID,
    RPC_URLS_ENV,
    ChainConfig,
    ConfigError,
    anvil_dir,
    database_url,
    keystore_path,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ._rpc import RpcChain
    from ._web3chain import Node
    from .accounts import ChainAccount
    from .batcher import AnchorEvidence, Batcher
    from .chain import TxReceipt

PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
ANVIL_ENV = "SHOMEI_ANVIL"  # path to an anvil binary, instead of node_modules
EXIT_PENDING, EXIT_ERROR = 1, 2
JST = timezone(timedelta(hours=9), "JST")
DEFAULT_PORT = 8545
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent

P = ParamSpec("P")
R = TypeVar("R")


# ================================================================== shared helpers
def fail(err: ShomeiError | str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``エラー: …`` on stderr and exit with ``code``."""
    click.echo(f"エラー: {err}", err=True)
    sys.exit(code)


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn Shomei errors into a message and exit status 2 (a command decorator)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # The failure is reported once, below; the library's own warnings would only
        # repeat it (an RPC fallback warning per endpoint, a batcher retry line).
        quiet = logging.getLogger("anchor")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
        try:
            return func(*args, **kwargs)
        except ChainUnavailable as e:
            fail(
                f"{e}\n  shomei chain up を実行するか {RPC_URLS_ENV} を確認してください"
                f" / run `shomei chain up` or check {RPC_URLS_ENV}"
            )
        except ShomeiError as e:
            fail(e)
        except OSError as e:
            fail(f"ファイルを読み書きできません / file error: {e.filename}: {e.strerror}")

    return wrapper


def passphrase(*, confirm: bool = False) -> str:
    """The keystore passphrase from ``SHOMEI_KEY_PASSPHRASE`` or a hidden prompt."""
    secret = os.environ.get(PASSPHRASE_ENV)
    if secret:
        return secret
    if not sys.stdin.isatty():
        fail(f"パスフレーズが必要です（{PASSPHRASE_ENV} を設定してください） / passphrase required")
    return str(
        click.prompt("鍵のパスフレーズ / passphrase", hide_input=True, confirmation_prompt=confirm)
    )


def jst(timestamp: float) -> str:
    """``2026-11-23 18:00:00 JST``."""
    return datetime.fromtimestamp(timestamp, JST).strftime("%Y-%m-%d %H:%M:%S JST")


def parse_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """A click callback: an ISO 8601 time (JST when no offset is given) as epoch seconds."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"ISO 8601 の日時ではありません / not an ISO 8601 time: {value}"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=JST)).timestamp())


def parse_address(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A click callback: a 0x Ethereum address."""
    if value is None:
        return None
    if not (value.startswith("0x") and len(value) == 42 and _is_hex(value[2:])):
        raise click.BadParameter(f"0x で始まる40桁の16進数です / not an address: {value}")
    return value


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


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
    directory: Path, cfg: ChainConfig, name: str | None, dev: int | None
) -> ChainAccount:
    """The signing account of ``--account NAME`` or ``--dev N``. Raises ConfigError for
    an unknown account, and for a dev account on anything but the dev chain."""
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


def data_dir_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default="data",
        show_default=True,
        help=f"data directory (env {DATA_DIR_ENV})",
    )(func)


def account_options(func: Callable[P, R]) -> Callable[P, R]:
    func = click.option(
        "--dev",
        type=click.IntRange(0, 2**31 - 1),
        help=f"anvil's public dev account N (chain id {DEV_CHAIN_ID} only)",
    )(func)
    return click.option("--account", "account_name", metavar="NAME", help="keystore account")(func)


# ================================================================== the local node
@dataclass(frozen=True)
class LocalNode:
    """The anvil process of a data directory: ``anvil/state.json``, ``.pid``, ``.log``."""

    directory: Path

    @property
    def pid_file(self) -> Path:
        return self.directory / "anvil.pid"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def log_file(self) -> Path:
        return self.directory / "anvil.log"

    def pid(self) -> int | None:
        """The pid in the pid file while that process is alive and is anvil, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self, port: int) -> int:
        """Start anvil detached (own session, output to the log); return its pid."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--state", str(self.state_file.resolve()), "--state-interval", "1", "--silent"]
        with self.log_file.open("ab") as log:
            log.write(f"--- {jst(time.time())}: {' '.join(argv)}\n".encode())
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.log_file), os.O_WRONLY | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # posix_spawn, not Popen: the node outlives this command, and nothing here
        # will ever wait for it.
        pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions, setsid=True)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def stop(self, pid: int, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (anvil then writes its state), SIGKILL after ``timeout``."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_exit(pid, wait):
                break
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def anvil_binary() -> Path:
    """anvil: ``SHOMEI_ANVIL``, the native binary of npm ``@foundry-rs/anvil`` (so the
    pid is anvil itself, not a node wrapper), the npm wrapper, or ``anvil`` on PATH."""
    if env := os.environ.get(ANVIL_ENV):
        return Path(env)
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    arch = machine.get(platform.machine().lower(), platform.machine().lower())
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
    for modules in (ROOT / "node_modules", Path.cwd() / "node_modules"):
        native = modules / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
        for candidate in (native, modules / ".bin" / "anvil"):
            if os.access(candidate, os.X_OK):
                return candidate
    if found := shutil.which("anvil"):
        return Path(found)
    raise ConfigError(
        "anvil が見つかりません（リポジトリで npm ci を実行してください）",
        f"anvil not found: run `npm ci` in the repository, or set {ANVIL_ENV}",
    )


def _alive(pid: int, *, is_anvil: bool = True) -> bool:
    """Whether ``pid`` runs (a zombie is dead) and, with ``is_anvil``, is anvil: a pid
    file can outlive its process and the number be reused. A process spawned a moment
    ago may not have become anvil yet: its starter passes ``is_anvil=False``."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, just reaped
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust the pid file
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    zombie = stat.rpartition(")")[2].split()[0] == "Z"
    return not zombie and (b"anvil" in cmdline or not is_anvil)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    """The chain id ``url`` answers with, or None when nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _local_port(cfg: ChainConfig | None) -> int | None:
    from urllib.parse import urlsplit

    if cfg is None:
        return None
    url = urlsplit(cfg.rpc_urls[0])
    return url.port if url.hostname == "127.0.0.1" else None


def chain_up(directory: Path, port: int | None) -> str:
    """Start the local node (or find it running) and point ``chain.json`` at it.
    Returns what happened. Raises ConfigError when chain.json names another network."""
    existing = ChainConfig.load_file(directory)
    if existing is not None and not existing.is_dev_chain:
        raise ConfigError(
            f"chain.json は別のネットワーク（chain id {existing.chain_id}）を指しています",
            f"chain.json points at another network (chain id {existing.chain_id}); "
            "use another --data-dir for the local chain",
        )
    node = LocalNode(anvil_dir(directory))
    running = node.pid()
    old_port = _local_port(existing)
    if running is not None and old_port is None:
        raise ConfigError(
            f"anvil（pid {running}）が動いていますが chain.json がありません。"
            "shomei chain down を実行してください",
            f"anvil (pid {running}) runs but chain.json is missing; run `shomei chain down`",
        )
    if running is not None and old_port is not None:
        url = f"http://127.0.0.1:{old_port}"
        if _wait_ready(url, running, READY_TIMEOUT):
            note = "" if port in (None, old_port) else f" (--port {port} ignored: chain down first)"
            return f"起動済み / already running: {url} (pid {running}){note}"
        raise ConfigError(
            f"anvil（pid {running}）が応答しません。shomei chain down を実行してください",
            f"anvil (pid {running}) does not answer on {url}; run `shomei chain down`",
        )
    port = port or old_port or DEFAULT_PORT
    url = f"http://127.0.0.1:{port}"
    if _port_in_use(port):
        raise ConfigError(
            f"ポート {port} は使用中です（--port で別のポートを指定してください）",
            f"port {port} is in use (choose another with --port)",
        )
    pid = node.start(port)
    if not _wait_ready(url, pid, READY_TIMEOUT):
        if _alive(pid, is_anvil=False):
            node.stop(pid)
        raise ConfigError(
            "anvil を起動できませんでした", f"anvil did not start:\n{node.log_tail()}"
        )
    base = existing or ChainConfig(rpc_urls=(url,), chain_id=DEV_CHAIN_ID)
    replace(base, rpc_urls=(url,), chain_id=DEV_CHAIN_ID).save(directory)
    return f"起動しました / started: {url} (pid {pid}, chain id {DEV_CHAIN_ID})"


def _wait_ready(url: str, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rpc_chain_id(url) == DEV_CHAIN_ID:
            return True
        if not _alive(pid, is_anvil=False):
            return False
        time.sleep(0.05)
    return False


def chain_down(directory: Path) -> str:
    """Stop the local node by the pid in its pid file. Returns what happened."""
    node = LocalNode(anvil_dir(directory))
    pid = node.pid()
    if pid is None:
        stale = node.pid_file.exists()
        node.pid_file.unlink(missing_ok=True)
        return "起動していません / not running" + (" (stale pid file removed)" if stale else "")
    node.stop(pid)
    return f"停止しました / stopped (pid {pid}); state kept in {node.state_file}"


def chain_status(directory: Path) -> list[str]:
    """Lines describing the configured chain: URLs, chain id, block, registry."""
    from ._rpc import redact

    cfg = require_config(directory)
    pid = LocalNode(anvil_dir(directory)).pid()
    lines = [
        f"RPC: {', '.join(redact(u) for u in cfg.rpc_urls)}",
        f"chain id: {cfg.chain_id}",
    ]
    if cfg.is_dev_chain:
        lines.append(f"ローカルノード / local node: {f'pid {pid}' if pid else '停止中 / stopped'}")
    node = cfg.node()
    try:
        lines.append(f"ブロック / block: {int(node.w3.eth.block_number)}")
        lines.append(f"登録簿 / registry: {_registry_line(cfg, node)}")
    finally:
        node.close()
    return lines


def _registry_line(cfg: ChainConfig, node: Node) -> str:
    if cfg.registry_address is None:
        return "未配置 / not deployed (shomei registry deploy)"
    if not _has_code(node, cfg.registry_address):
        return f"{cfg.registry_address} (コントラクトがありません / no contract at this address)"
    governance = cfg.chain().using(None)
    try:
        return f"{cfg.registry_address} (governance {governance.governance()})"
    finally:
        governance.close()


def _has_code(node: Node, address: str) -> bool:
    from eth_utils.address import to_checksum_address

    with node.translating():
        return len(node.w3.eth.get_code(to_checksum_address(address))) > 0


@click.group("chain")
def chain_group() -> None:
    """The Ethereum network: a local anvil node, or any configured RPC endpoints."""


@chain_group.command("up")
@click.option(
    "--port", type=click.IntRange(1, 65535), help=f"default: the last one, or {DEFAULT_PORT}"
)
@data_dir_option
@clean_errors
def chain_up_cmd(port: int | None, data_dir: Path) -> None:
    """Start the local development node (anvil, state kept in DATA/anvil/)."""
    click.echo(chain_up(data_dir, port))


@chain_group.command("down")
@data_dir_option
@clean_errors
def chain_down_cmd(data_dir: Path) -> None:
    """Stop the local development node (its state is kept)."""
    click.echo(chain_down(data_dir))


@chain_group.command("status")
@data_dir_option
@clean_errors
def chain_status_cmd(data_dir: Path) -> None:
    """Print the RPC URLs, chain id, block number and registry address."""
    click.echo("\n".join(chain_status(data_dir)))


# ================================================================== accounts
def account_new(directory: Path, name: str) -> str:
    """Create an encrypted keystore for a new account; return its address."""
    from .accounts import ChainAccount

    path = keystore_path(directory, name)
    if path.exists():
        raise ConfigError(
            f"アカウント {name} は既に存在します",
            f"account {name} exists ({path}), not overwriting",
        )
    account = ChainAccount.generate()
    keystore = account.to_keystore(passphrase(confirm=True))
    path.parent.mkdir(parents=True, exist_ok=True)
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


@click.group("account")
def account_group() -> None:
    """Ethereum accounts (issuers, governance) kept as encrypted keystores."""


@account_group.command("new")
@click.argument("name")
@data_dir_option
@clean_errors
def account_new_cmd(name: str, data_dir: Path) -> None:
    """Create account NAME (DATA/accounts/NAME.json) and print its address."""
    click.echo(account_new(data_dir, name))
    click.echo("送金してから使ってください / fund it before it sends transactions", err=True)


@account_group.command("show")
@click.argument("name")
@data_dir_option
@clean_errors
def account_show_cmd(name: str, data_dir: Path) -> None:
    """Print the address of account NAME (and its balance on the configured chain)."""
    address = account_address(data_dir, name)
    click.echo(address)
    if line := balance_line(data_dir, address):
        click.echo(line, err=True)


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
        if cfg.registry_address and not force and _has_code(node, cfg.registry_address):
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
    link = cfg.tx_link(tx)
    return f"block {block}, tx {tx}" + (f"\n  {link}" if link else "")


def find_issuer(chain: RpcChain, issuer_id: str) -> IssuerRecord:
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


def issuer_json(record: IssuerRecord) -> dict[str, Any]:
    return {
        "address": record.address,
        "issuer_id": record.issuer_id,
        "name": record.name,
        "municipality_code": record.municipality_code,
        "active": record.active,
        "keys": [
            {
                "kid": b64e(k.thumbprint),
                "valid_from": k.valid_from,
                "revoked_at": k.revoked_at,
                "added_at": k.added_at,
            }
            for k in record.keys
        ],
    }


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
            "issuers": [issuer_json(r) for r in records],
        }
    finally:
        chain.close()


def describe_registry(doc: dict[str, Any]) -> str:
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
    try:
        jwk = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path} を読めません", f"cannot read the JWK file {path}") from None
    if not isinstance(jwk, dict):
        raise ConfigError(f"{path} はJWKではありません", f"{path} is not a JWK")
    return {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}


def kid_bytes(kid: str) -> bytes:
    try:
        raw = b64d(kid)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"鍵ID（kid）が不正です: {kid}", f"bad kid {kid} (the key's JWK thumbprint)"
        )
    return raw


@click.group("registry")
def registry_group() -> None:
    """The AnchorRegistry: trusted issuers (cities) and their signing keys."""


@registry_group.command("deploy")
@account_options
@click.option("--governance", callback=parse_address, help="governance address (default: signer)")
@click.option("--force", is_flag=True, help="deploy even if a registry is configured")
@data_dir_option
@clean_errors
def registry_deploy_cmd(
    account_name: str | None, dev: int | None, governance: str | None, force: bool, data_dir: Path
) -> None:
    """Deploy an AnchorRegistry and write its address into chain.json."""
    cfg = require_config(data_dir)
    account = load_account(data_dir, cfg, account_name, dev)
    address = registry_deploy(data_dir, account, governance=governance, force=force)
    click.echo(address)
    if os.environ.get("SHOMEI_REGISTRY_ADDRESS"):
        click.echo("注意 / note: update SHOMEI_REGISTRY_ADDRESS to this address", err=True)


@registry_group.command("register-issuer")
@account_options
@click.option("--address", required=True, callback=parse_address, help="the issuer's account")
@click.option("--issuer-id", required=True, help="the iss URL of its credentials")
@click.option("--name", required=True, help="e.g. 飯塚市")
@click.option("--municipality-code", required=True, help="全国地方公共団体コード")
@data_dir_option
@clean_errors
def register_issuer_cmd(
    account_name: str | None,
    dev: int | None,
    address: str,
    issuer_id: str,
    name: str,
    municipality_code: str,
    data_dir: Path,
) -> None:
    """Register an issuer (governance account)."""
    from .registry import register_issuer

    cfg = require_config(data_dir)
    chain = cfg.chain(load_account(data_dir, cfg, account_name, dev))
    try:
        r = register_issuer(
            chain, address, issuer_id=issuer_id, name=name, municipality_code=municipality_code
        )
    finally:
        chain.close()
    click.echo(
        f"登録しました / registered {issuer_id} → {address}: {tx_line(cfg, r.tx_hash, r.block)}"
    )


@registry_group.command("add-key")
@account_options
@click.option("--issuer-id", required=True)
@click.option("--jwk", "jwk_path", required=True, metavar="JWK.json", help="the public key")
@click.option("--valid-from", callback=parse_time, help="ISO 8601 (JST without offset)")
@data_dir_option
@clean_errors
def add_key_cmd(
    account_name: str | None,
    dev: int | None,
    issuer_id: str,
    jwk_path: str,
    valid_from: int | None,
    data_dir: Path,
) -> None:
    """Publish a signing key (as governance, or as the issuer itself)."""
    from credentials.keys import jwk_thumbprint

    from .registry import add_key

    cfg = require_config(data_dir)
    account = load_account(data_dir, cfg, account_name, dev)
    jwk = read_jwk(jwk_path)
    line = key_change(
        data_dir,
        account,
        issuer_id,
        lambda chain, issuer: add_key(chain, jwk, issuer=issuer, valid_from=valid_from),
    )
    click.echo(f"鍵を登録しました / key added {jwk_thumbprint(jwk)}: {line}")


@registry_group.command("revoke-key")
@account_options
@click.option("--issuer-id", required=True)
@click.option("--kid", required=True, help="the key's JWK thumbprint")
@click.option("--at", "at", callback=parse_time, help="revoked from (ISO 8601; default: now)")
@data_dir_option
@clean_errors
def revoke_key_cmd(
    account_name: str | None,
    dev: int | None,
    issuer_id: str,
    kid: str,
    at: int | None,
    data_dir: Path,
) -> None:
    """Revoke a signing key from --at (as governance, or as the issuer itself)."""
    from .registry import revoke_key

    cfg = require_config(data_dir)
    account = load_account(data_dir, cfg, account_name, dev)
    thumbprint = kid_bytes(kid)
    line = key_change(
        data_dir,
        account,
        issuer_id,
        lambda chain, issuer: revoke_key(chain, thumbprint, issuer=issuer, revoked_at=at),
    )
    click.echo(f"鍵を失効させました / key revoked {kid}: {line}")


@registry_group.command("show")
@click.option("--issuer-id", help="only this issuer")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
@clean_errors
def registry_show_cmd(issuer_id: str | None, as_json: bool, data_dir: Path) -> None:
    """Print the registered issuers and their keys."""
    doc = registry_document(data_dir, issuer_id)
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2) if as_json else describe_registry(doc))


@registry_group.command("export-snapshot")
@account_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="SNAP.json")
@data_dir_option
@clean_errors
def export_snapshot_cmd(
    account_name: str | None, dev: int | None, out: str, data_dir: Path
) -> None:
    """Write the registry as a snapshot signed by the governance account."""
    from .snapshot import export_snapshot

    cfg = require_config(data_dir)
    account = load_account(data_dir, cfg, account_name, dev)
    chain = cfg.chain(account)
    try:
        doc = export_snapshot(chain, account, now=int(time.time()))
    finally:
        chain.close()
    Path(out).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"{out}: {len(doc['snapshot']['issuers'])} issuers, block {doc['snapshot']['block']}"
    )


# ================================================================== anchoring
@contextmanager
def database(directory: Path) -> Iterator[Engine]:
    """The anchoring database (schema created if missing); database errors become
    ConfigError."""
    from sqlalchemy.exc import SQLAlchemyError

    from .store import create_schema, make_engine

    try:
        engine = make_engine(database_url(directory))
        try:
            create_schema(engine)
            yield engine
        finally:
            engine.dispose()
    except SQLAlchemyError as e:
        raise ConfigError(
            "データベースを使えません", f"database error: {type(e).__name__}: {e.args[0]}"
        ) from None


def queue_credential(directory: Path, jwt: str, *, queue: bool | None, now: float) -> bool:
    """Queue an issued credential's leaf for anchoring when anchoring is configured
    (``chain.json`` or ``SHOMEI_RPC_URLS``) or ``queue`` is True. Returns whether it was
    queued. Raises ConfigError when it cannot be: the credential must not go out then."""
    if queue is False or (queue is None and ChainConfig.load(directory) is None):
        return False
    from sqlalchemy.orm import Session

    from .batcher import enqueue

    with database(directory) as engine, Session(engine) as session:
        enqueue(session, merkle.leaf_hash(jwt), now=now)
        session.commit()
    return True


@dataclass(frozen=True)
class AnchorRun:
    anchored: list[dict[str, Any]]  # the batches anchored by this run
    status: dict[str, Any]  # Batcher.status() afterwards


def run_anchor(
    directory: Path, cfg: ChainConfig, account: ChainAccount, *, wait: bool, timeout: float
) -> AnchorRun:
    """Close a batch now and drive the batcher: one pass, or until idle (``wait``).
    Raises ConfigError when the account is not an active issuer, ChainUnavailable when
    the node does not answer."""
    from .batcher import Batcher, BatchPolicy

    chain = cfg.chain(account)
    try:
        issuer = chain.issuer_of(account.address)
        if issuer is None or not issuer.active:
            raise ConfigError(
                f"{account.address} は有効な発行者として登録されていません",
                f"{account.address} is not an active registered issuer "
                "(shomei registry register-issuer)",
            )
        with database(directory) as engine:
            before = _anchored_batches(engine)
            batcher = Batcher(
                engine=engine,
                chain=chain,
                issuer_address=account.address,
                policy=BatchPolicy(confirmations=cfg.confirmations),
            )
            batcher.flush()
            _drive(batcher, wait=wait, timeout=timeout)
            anchored = [b for i, b in _anchored_batches(engine).items() if i not in before]
            return AnchorRun(anchored=anchored, status=batcher.status())
    finally:
        chain.close()


def _drive(batcher: Batcher, *, wait: bool, timeout: float) -> None:
    from credentials.errors import AnchorError

    if wait:
        try:
            batcher.run_until_idle(timeout=timeout)
        except AnchorError:
            pass  # still pending: reported from the status
        return
    # One pass: keep going while each step completes at once (send, then the poll
    # that finds it mined on an automining node), stop at anything that must wait.
    for _ in range(8):
        if batcher.step() not in ("sent", "anchored"):
            return


def _anchored_batches(engine: Engine) -> dict[int, dict[str, Any]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .store import ANCHORED, Batch

    with Session(engine) as s:
        rows = s.scalars(select(Batch).where(Batch.state == ANCHORED).order_by(Batch.id))
        return {
            b.id: {
                "batch": b.id,
                "size": b.size,
                "block": b.block,
                "time": b.block_time,
                "tx": b.tx_hash,
            }
            for b in rows
        }


def describe_run(cfg: ChainConfig, run: AnchorRun) -> list[str]:
    lines = [
        f"記録しました / anchored: batch {b['batch']} ({b['size']} 件), "
        f"{jst(b['time'])}, {tx_line(cfg, b['tx'], b['block'])}"
        for b in run.anchored
    ]
    st = run.status
    if not st["pending"]:
        return [*lines, "すべて記録済み / nothing pending"]
    line = f"記録待ち / pending: {st['pending']} 件, pending since {jst(st['pending_since'])}"
    err = (st["in_flight"] or {}).get("last_error")
    return [*lines, line + (f"\n  最後のエラー / last error: {err}" if err else "")]


@click.command("anchor")
@account_options
@click.option("--wait", is_flag=True, help="keep going until everything is anchored")
@click.option("--timeout", type=click.FloatRange(0), default=60.0, show_default=True)
@data_dir_option
@clean_errors
def anchor_cmd(
    account_name: str | None, dev: int | None, wait: bool, timeout: float, data_dir: Path
) -> None:
    """Anchor the queued credentials now with the issuer account.

    Exit status: 0 nothing pending (or pending without --wait), 1 still pending after
    --wait, 2 configuration or connection error.
    """
    cfg = require_config(data_dir)
    account = load_account(data_dir, cfg, account_name, dev)
    run = run_anchor(data_dir, cfg, account, wait=wait, timeout=timeout)
    click.echo("\n".join(describe_run(cfg, run)))
    sys.exit(EXIT_PENDING if wait and run.status["pending"] else 0)


# ================================================================== receipts
def credential_leaf(path: str) -> bytes:
    """The leaf of the credential in file ``path`` (its issuer-signed JWT)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"{path} を読めません", f"cannot read {path}") from None
    jwt = text.split("~", 1)[0]
    if jwt.count(".") != 2 or "~" not in text:
        raise ConfigError(f"{path} はSD-JWTではありません", f"{path} is not an SD-JWT")
    return merkle.leaf_hash(jwt)


def lookup(directory: Path, leaf: bytes) -> tuple[AnchorEvidence | None, float | None]:
    """(evidence, None) once anchored; (None, queued_at) while pending; (None, None)
    when the leaf was never queued here."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .batcher import AnchorEvidence
    from .store import ANCHORED, Batch, Leaf

    with database(directory) as engine, Session(engine) as s:
        row = s.execute(
            select(Leaf, Batch).outerjoin(Batch, Leaf.batch_id == Batch.id).where(Leaf.leaf == leaf)
        ).first()
        if row is None:
            return None, None
        entry, batch = row
        if batch is None or batch.state != ANCHORED or entry.receipt is None:
            return None, entry.queued_at
        assert batch.block is not None and batch.block_time is not None
        return AnchorEvidence(
            receipt=merkle.Receipt.from_bytes(entry.receipt),
            root=batch.root,
            block=batch.block,
            timestamp=batch.block_time,
            tx=batch.tx_hash,
        ), None


def evidence_json(cfg: ChainConfig, ev: AnchorEvidence) -> dict[str, Any]:
    return {
        "receipt": ev.receipt.to_json(),
        "root": "0x" + ev.root.hex(),
        "chain_id": cfg.chain_id,
        "registry_address": cfg.registry_address,
        "block": ev.block,
        "timestamp": ev.timestamp,
        "tx": ev.tx,
    }


@click.command("receipt")
@click.argument("cred_path", metavar="CRED")
@click.option("--out", type=click.Path(dir_okay=False), help="write the evidence JSON here")
@data_dir_option
@clean_errors
def receipt_cmd(cred_path: str, out: str | None, data_dir: Path) -> None:
    """Print the anchor evidence of credential CRED (exit 1 while not anchored)."""
    cfg = require_config(data_dir)
    evidence, queued_at = lookup(data_dir, credential_leaf(cred_path))
    if evidence is None:
        since = (
            f"pending since {jst(queued_at)}"
            if queued_at
            else "この記録簿に未登録 / never queued here"
        )
        click.echo(f"まだ記録されていません / not anchored yet ({since})", err=True)
        sys.exit(EXIT_PENDING)
    text = json.dumps(evidence_json(cfg, evidence), indent=2)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"{out}: block {evidence.block}, {jst(evidence.timestamp)}", err=True)
    else:
        click.echo(text)


COMMANDS: tuple[click.Command, ...] = (
    chain_group,
    account_group,
    registry_group,
    anchor_cmd,
    receipt_cmd,
)
