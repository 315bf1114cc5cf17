"""The local development node: anvil, and ``chain.json`` pointing at it.

The node is anvil (npm ``@foundry-rs/anvil``), started detached in its own session on
127.0.0.1 and stopped by the pid it wrote, never by name. Its state, pid file and log
live in ``DATA/anvil/``. Failures raise ConfigError; nothing here prints or exits.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import files
from .config import DEV_CHAIN_ID, ChainConfig, ConfigError, anvil_dir
from .operations import has_code, jst, require_config

if TYPE_CHECKING:
    from ._web3chain import Node

ANVIL_ENV = "SHOMEI_ANVIL"  # path to an anvil binary, instead of node_modules
DEFAULT_PORT = 8545
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent


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
        files.make_private_dir(self.directory)
        argv = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--state", str(self.state_file.resolve()), "--state-interval", "1", "--silent"]
        with self.log_file.open("ab") as log:
            log.write(f"--- {jst(time.time())}: {' '.join(argv)}\n".encode())
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(self.log_file), os.O_WRONLY | os.O_APPEND, 0o600),
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
    if not has_code(node, cfg.registry_address):
        return f"{cfg.registry_address} (コントラクトがありません / no contract at this address)"
    governance = cfg.chain().using(None)
    try:
        return f"{cfg.registry_address} (governance {governance.governance()})"
    finally:
        governance.close()
