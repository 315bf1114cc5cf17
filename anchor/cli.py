"""The operator's commands for the chain: ``shomei chain|account|registry|anchor|receipt``.

Each command parses its options, calls one service (:mod:`anchor.operations`, or
:mod:`anchor.localnode` for the local node) and prints the result. Every failure becomes
a bilingual message and exit status 2 (``shomei anchor --wait`` exits 1 while something
is still pending), never a traceback. web3, eth_account and SQLAlchemy are imported only
by the services that use them, so ``shomei verify`` starts fast.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import click

from credentials.encoding import JST
from credentials.errors import ShomeiError

from .anchoring import (
    anchor_status,
    credential_leaf,
    describe_run,
    describe_status,
    evidence_json,
    lookup,
    pending_line,
    run_anchor,
    run_repair,
)
from .chain import ChainUnavailable
from .config import DATA_DIR_ENV, DEV_CHAIN_ID, RPC_URLS_ENV, ChainConfig
from .config import data_dir as resolve_data_dir
from .localnode import DEFAULT_PORT, chain_down, chain_status, chain_up
from .operations import (
    account_address,
    account_new,
    balance_line,
    describe_registry,
    issuer_register,
    jst,
    key_add,
    key_revoke,
    load_account,
    read_jwk,
    registry_deploy,
    registry_document,
    require_config,
    snapshot_export,
)

if TYPE_CHECKING:
    from .accounts import ChainAccount

PASSPHRASE_ENV = "SHOMEI_KEY_PASSPHRASE"
EXIT_PENDING, EXIT_ERROR = 1, 2

P = ParamSpec("P")
R = TypeVar("R")


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


def data_dir_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default="data",
        show_default=True,
        help=f"data directory (env {DATA_DIR_ENV})",
        # Resolved like every data directory: an existing directory is made private at start.
        callback=lambda _ctx, _param, value: resolve_data_dir(value),
    )(func)


def account_options(func: Callable[P, R]) -> Callable[P, R]:
    func = click.option(
        "--dev",
        type=click.IntRange(0, 2**31 - 1),
        help=f"anvil's public dev account N (chain id {DEV_CHAIN_ID} only)",
    )(func)
    return click.option("--account", "account_name", metavar="NAME", help="keystore account")(func)


def signer(data_dir: Path, name: str | None, dev: int | None) -> tuple[ChainConfig, ChainAccount]:
    """The configuration and the account of ``--account NAME``/``--dev N``, asking for the
    keystore passphrase when one is opened. Raises ConfigError."""
    cfg = require_config(data_dir)
    return cfg, load_account(data_dir, cfg, name, dev, passphrase=passphrase)


# ================================================================== the local node
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
@click.group("account")
def account_group() -> None:
    """Ethereum accounts (issuers, governance) kept as encrypted keystores."""


@account_group.command("new")
@click.argument("name")
@data_dir_option
@clean_errors
def account_new_cmd(name: str, data_dir: Path) -> None:
    """Create account NAME (DATA/accounts/NAME.json) and print its address."""
    click.echo(account_new(data_dir, name, passphrase=functools.partial(passphrase, confirm=True)))
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
    _cfg, account = signer(data_dir, account_name, dev)
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
    cfg, account = signer(data_dir, account_name, dev)
    click.echo(
        issuer_register(
            cfg,
            account,
            address,
            issuer_id=issuer_id,
            name=name,
            municipality_code=municipality_code,
        )
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
    _cfg, account = signer(data_dir, account_name, dev)
    jwk = read_jwk(jwk_path)
    click.echo(key_add(data_dir, account, issuer_id, jwk, valid_from=valid_from))


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
    _cfg, account = signer(data_dir, account_name, dev)
    click.echo(key_revoke(data_dir, account, issuer_id, kid, at=at))


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
    cfg, account = signer(data_dir, account_name, dev)
    doc = snapshot_export(cfg, account, now=int(time.time()))
    Path(out).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"{out}: {len(doc['snapshot']['issuers'])} issuers, block {doc['snapshot']['block']}"
    )


# ================================================================== anchoring
@click.group("anchor", invoke_without_command=True)
@account_options
@click.option("--wait", is_flag=True, help="keep going until everything is anchored")
@click.option("--timeout", type=click.FloatRange(0), default=60.0, show_default=True)
@data_dir_option
@click.pass_context
@clean_errors
def anchor_cmd(
    ctx: click.Context,
    account_name: str | None,
    dev: int | None,
    wait: bool,
    timeout: float,
    data_dir: Path,
) -> None:
    """Anchor the queued credentials now with the issuer account.

    When another process leads the anchoring (an issuer's worker), this one follows:
    it reports, or with --wait watches until the leader has anchored everything.
    Exit status: 0 nothing pending (or pending without --wait), 1 still pending after
    --wait, 2 configuration or connection error.
    """
    if ctx.invoked_subcommand is not None:
        return
    cfg, account = signer(data_dir, account_name, dev)
    run = run_anchor(data_dir, cfg, account, wait=wait, timeout=timeout)
    click.echo("\n".join(describe_run(cfg, run)))
    sys.exit(EXIT_PENDING if wait and run.status["pending"] else 0)


@anchor_cmd.command("status")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@data_dir_option
@clean_errors
def anchor_status_cmd(as_json: bool, data_dir: Path) -> None:
    """The leader and its epoch, the queue, the batch in flight, what needs attention."""
    now = time.time()
    st = anchor_status(data_dir, now=now)
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(describe_status(st, now=now)))


@anchor_cmd.command("repair")
@account_options
@data_dir_option
@clean_errors
def anchor_repair_cmd(account_name: str | None, dev: int | None, data_dir: Path) -> None:
    """Check every batch against its leaves and the chain, and repair it: receipts
    rebuilt from a root on chain, damaged batches requeued. Says what it changed."""
    cfg, account = signer(data_dir, account_name, dev)
    changes = run_repair(data_dir, cfg, account)
    if not changes:
        click.echo("修復の必要はありません / nothing to repair")
    for change in changes:
        click.echo(f"修復 / repaired: {change}")


# ================================================================== receipts
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
        click.echo(pending_line(queued_at), err=True)
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
