"""The operator's chain commands end to end, on a real anvil started by ``shomei chain up``.

``chain up``/``chain down``, ``issue`` and ``receipt`` run as real processes (the node
must outlive the command that started it; stdout of ``issue`` is the credential). The
commands that load web3 run in-process through click's CliRunner, which keeps the test
quick. Every anvil started here is stopped at teardown by the pids its pid file named.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import RpcChain
from anchor.config import ChainConfig, ConfigError
from credentials import doctypes
from shomei_cli import main

ROOT = Path(__file__).resolve().parents[2]
SHOMEI = Path(sys.executable).with_name("shomei")
PASSPHRASE = "correct horse battery 証明"
ISSUER = "https://city.iizuka.example"
GOVERNANCE, CITY = ChainAccount.dev(0), ChainAccount.dev(1)
SEPOLIA = 11155111


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: this data directory, the passphrase, no outside overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOMEI_")}
    env.update(
        SHOMEI_DATA_DIR=str(data_dir), SHOMEI_KEY_PASSPHRASE=PASSPHRASE, PYTHONWARNINGS="error"
    )
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def check_clean(result: Result) -> Result:
    assert "Traceback" not in result.output, result.output
    assert PASSPHRASE not in result.output, "the passphrase is never printed"
    return result


def run(data_dir: Path, *args: str | Path, **extra: str) -> Result:
    """``shomei ARGS`` as a real process."""
    done = subprocess.run(
        [str(SHOMEI), *map(str, args)],
        capture_output=True,
        text=True,
        env=env_for(data_dir, **extra),
        cwd=data_dir.parent,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    return check_clean(Result(done.returncode, done.stdout, done.stderr))


def invoke(data_dir: Path, *args: str | Path, **extra: str) -> Result:
    """``shomei ARGS`` in this process (the web3 commands: no import cost per call)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SHOMEI_")}
    env.update(env_for(data_dir, **extra))
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return check_clean(Result(result.exit_code, result.stdout, result.stderr))


# --------------------------------------------------------------------------- the node
@dataclass
class Operator:
    """A data directory with a running local chain; remembers every anvil pid."""

    data: Path
    port: int
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int:
        return int((self.data / "anvil" / "anvil.pid").read_text())

    def up(self) -> Result:
        result = run(self.data, "chain", "up", "--port", self.port)
        assert result.code == 0, result.output
        self.pids.append(self.pid())
        return result

    def config(self) -> ChainConfig:
        cfg = ChainConfig.load_file(self.data)
        assert cfg is not None
        return cfg

    def chain(self) -> RpcChain:
        registry = self.config().registry_address
        assert registry is not None
        return RpcChain([self.url], 31337, registry)

    def stop_all(self) -> None:
        """Kill what is left of the anvils started here: only a pid whose command line
        still names this data directory (a number can be reused once its process died)."""
        for pid in dict.fromkeys(self.pids):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.data).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)


def require_anvil() -> None:
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists():
        reason = "node_modules/.bin/anvil is missing: run `npm ci` at the repository root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    require_anvil()
    op = Operator(tmp_path / "data", free_port())
    try:
        op.up()
        yield op
    finally:
        op.stop_all()


def write_claims(path: Path) -> Path:
    path.write_text(json.dumps(doctypes.sample("juminhyo"), ensure_ascii=False), "utf-8")
    return path


def issue(op: Operator, key: Path, claims: Path) -> str:
    """Issue to stdout: stdout is exactly the credential; the queue note is on stderr."""
    result = run(op.data, "issue", "juminhyo", "--data", claims, "--key", key, "--issuer", ISSUER)
    assert result.code == 0, result.output
    assert "queued for anchoring" in result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.strip().endswith("~")
    return result.stdout.strip()


def anchored_evidence(op: Operator, cred: str, out: Path) -> dict[str, object]:
    (op.data.parent / "cred.sd-jwt").write_text(cred, "utf-8")
    result = run(op.data, "receipt", op.data.parent / "cred.sd-jwt", "--out", out)
    assert result.code == 0, result.output
    evidence: dict[str, object] = json.loads(out.read_text())
    return evidence


def assert_on_chain(op: Operator, cred: str, evidence: dict[str, object]) -> None:
    """The receipt leads from the credential's leaf to a root the registry anchored."""
    chain = op.chain()
    try:
        record = chain.read_anchor(CITY.address, bytes.fromhex(str(evidence["root"])[2:]))
    finally:
        chain.close()
    assert record is not None
    assert (record.block, record.timestamp, record.tx) == (
        evidence["block"],
        evidence["timestamp"],
        evidence["tx"],
    )
    leaf = merkle.leaf_hash(cred.split("~")[0])
    merkle.verify_inclusion(leaf, merkle.Receipt.from_json(evidence["receipt"]), record.root)


# --------------------------------------------------------------------------- the flow
def test_operator_flow_survives_restarts_and_kill_9(operator: Operator, tmp_path: Path):
    op, d = operator, operator.data
    again = run(d, "chain", "up", "--port", op.port)
    assert "already running" in again.stdout and op.pid() == op.pids[0]

    # 1. the registry, governed by dev account 0; the city is dev account 1
    deploy = invoke(d, "registry", "deploy", "--dev", 0)
    assert deploy.code == 0, deploy.output
    registry = deploy.stdout.strip()
    assert op.config().registry_address == registry
    refused = invoke(d, "registry", "deploy", "--dev", 0)
    assert refused.code == 2 and "--force" in refused.stderr

    key, jwk = tmp_path / "city.pem", tmp_path / "city.jwk.json"
    kid = run(d, "keygen", "--out", key, "--public-out", jwk).stdout.strip()
    register = invoke(
        d,
        "registry",
        "register-issuer",
        "--dev",
        0,
        "--address",
        CITY.address,
        "--issuer-id",
        ISSUER,
        "--name",
        "飯塚市",
        "--municipality-code",
        "402052",
    )
    assert register.code == 0, register.output
    added = invoke(d, "registry", "add-key", "--dev", 0, "--issuer-id", ISSUER, "--jwk", jwk)
    assert added.code == 0 and kid in added.stdout, added.output

    # 2. issue: the leaf is queued before the credential goes out
    claims = write_claims(tmp_path / "claims.json")
    cred = issue(op, key, claims)
    (tmp_path / "cred.sd-jwt").write_text(cred, "utf-8")
    pending = run(d, "receipt", tmp_path / "cred.sd-jwt")
    assert pending.code == 1 and "not anchored yet (pending since" in pending.stderr

    # 3. anchor and check the receipt against the chain
    anchored = invoke(d, "anchor", "--wait", "--timeout", 30, "--dev", 1)
    assert anchored.code == 0, anchored.output
    assert "JST" in anchored.stdout and "nothing pending" in anchored.stdout
    evidence = anchored_evidence(op, cred, tmp_path / "evidence.json")
    assert evidence["chain_id"] == 31337 and evidence["registry_address"] == registry
    assert_on_chain(op, cred, evidence)

    # 4. chain down + up: registry and anchors are still there
    down = run(d, "chain", "down")
    assert down.code == 0 and "stopped" in down.stdout
    assert run(d, "chain", "down").stdout.startswith("起動していません")
    op.up()
    assert_on_chain(op, cred, evidence)

    # 5. a second credential anchored after the restart, then kill -9 (no clean exit)
    cred2 = issue(op, key, claims)
    assert invoke(d, "anchor", "--wait", "--dev", 1).code == 0
    evidence2 = anchored_evidence(op, cred2, tmp_path / "evidence2.json")
    time.sleep(1.6)  # --state-interval 1: the state file catches up within a second
    os.kill(op.pid(), signal.SIGKILL)
    op.up()
    assert_on_chain(op, cred, evidence)
    assert_on_chain(op, cred2, evidence2)

    # 6. the registry as operators read it
    shown = invoke(d, "registry", "show", "--json")
    doc = json.loads(shown.stdout)
    (issuer,) = doc["issuers"]
    assert (issuer["issuer_id"], issuer["address"]) == (ISSUER, CITY.address)
    assert [k["kid"] for k in issuer["keys"]] == [kid]
    status = invoke(d, "chain", "status")
    assert registry in status.stdout and "31337" in status.stdout


def test_revoke_key_and_snapshot(operator: Operator, tmp_path: Path):
    d = operator.data
    assert invoke(d, "registry", "deploy", "--dev", 0).code == 0
    register = invoke(
        d,
        "registry",
        "register-issuer",
        "--dev",
        0,
        "--address",
        CITY.address,
        "--issuer-id",
        ISSUER,
        "--name",
        "飯塚市",
        "--municipality-code",
        "402052",
    )
    assert register.code == 0, register.output
    jwk = tmp_path / "jwk.json"
    from credentials.keys import SigningKey

    key = SigningKey.generate()
    jwk.write_text(json.dumps(key.jwk))
    # The issuer adds its own key, and revokes it as of an earlier time.
    own = invoke(d, "registry", "add-key", "--dev", 1, "--issuer-id", ISSUER, "--jwk", jwk)
    assert own.code == 0, own.output
    revoked = invoke(
        d, "registry", "revoke-key", "--dev", 1, "--issuer-id", ISSUER, "--kid", key.kid,
        "--at", "2026-01-01T09:00:00",
    )  # fmt: skip
    assert revoked.code == 0, revoked.output
    shown = invoke(d, "registry", "show", "--issuer-id", ISSUER)
    assert "失効 / revoked 2026-01-01 09:00:00 JST" in shown.stdout
    # Only governance signs a snapshot.
    snap = tmp_path / "snap.json"
    assert invoke(d, "registry", "export-snapshot", "--dev", 1, "--out", snap).code == 2
    exported = invoke(d, "registry", "export-snapshot", "--dev", 0, "--out", snap)
    assert exported.code == 0, exported.output
    assert json.loads(snap.read_text())["snapshot"]["issuers"][0]["issuer_id"] == ISSUER
    unknown = invoke(d, "registry", "show", "--issuer-id", "https://nowhere.example")
    assert unknown.code == 2 and "not registered" in unknown.stderr


# --------------------------------------------------------------------------- errors
def test_anchor_without_chain_json(tmp_path: Path):
    result = run(tmp_path / "data", "anchor", "--dev", 1)
    assert result.code == 2
    assert "no chain configured" in result.stderr and "shomei chain up" in result.stderr


def test_anchor_while_the_node_is_down(tmp_path: Path):
    data = tmp_path / "data"
    ChainConfig(
        rpc_urls=(f"http://127.0.0.1:{free_port()}",),
        chain_id=31337,
        registry_address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    ).save(data)
    result = invoke(data, "anchor", "--wait", "--timeout", 2, "--dev", 1)
    assert result.code in (1, 2)
    assert "shomei chain up" in result.stderr and "SHOMEI_RPC_URLS" in result.stderr


def test_dev_accounts_are_refused_off_the_dev_chain(tmp_path: Path):
    data = tmp_path / "data"
    ChainConfig(rpc_urls=("https://rpc.example",), chain_id=SEPOLIA).save(data)
    result = invoke(data, "registry", "deploy", "--dev", 0)
    assert result.code == 2 and "31337" in result.stderr and "--account" in result.stderr
    # The same through the production overrides, with no chain.json at all.
    bare = tmp_path / "bare"
    overrides = {"SHOMEI_RPC_URLS": "https://a.example/key,https://b.example"}
    result = invoke(bare, "anchor", "--dev", 1, SHOMEI_CHAIN_ID=str(SEPOLIA), **overrides)
    assert result.code == 2 and "31337" in result.stderr


def test_unknown_account_and_missing_registry(tmp_path: Path):
    data = tmp_path / "data"
    ChainConfig(rpc_urls=("http://127.0.0.1:9",), chain_id=31337).save(data)
    unknown = invoke(data, "anchor", "--account", "nobody")
    assert unknown.code == 2 and "shomei account new nobody" in unknown.stderr
    no_registry = invoke(data, "anchor", "--dev", 1)
    assert no_registry.code == 2 and "shomei registry deploy" in no_registry.stderr


def test_chain_up_refuses_a_data_dir_of_another_network(tmp_path: Path):
    data = tmp_path / "data"
    ChainConfig(rpc_urls=("https://rpc.example",), chain_id=SEPOLIA).save(data)
    result = run(data, "chain", "up", "--port", free_port())
    assert result.code == 2 and "11155111" in result.stderr
    assert not (data / "anvil" / "anvil.pid").exists()


def test_account_new_and_show(tmp_path: Path):
    data = tmp_path / "data"
    created = invoke(data, "account", "new", "city")
    assert created.code == 0, created.output
    address = created.stdout.strip()
    path = data / "accounts" / "city.json"
    assert path.stat().st_mode & 0o077 == 0
    assert ChainAccount.from_keystore(path, PASSPHRASE).address == address
    assert invoke(data, "account", "show", "city").stdout.strip() == address
    assert invoke(data, "account", "new", "city").code == 2
    assert invoke(data, "account", "new", "../escape").code == 2


def test_issue_without_chain_config_queues_nothing(tmp_path: Path):
    data = tmp_path / "data"
    key = tmp_path / "k.pem"
    assert run(data, "keygen", "--out", key).code == 0
    claims = write_claims(tmp_path / "claims.json")
    result = run(data, "issue", "juminhyo", "--data", claims, "--key", key, "--issuer", ISSUER)
    assert result.code == 0 and result.stderr == ""
    assert not (data / "shomei.db").exists()


# --------------------------------------------------------------------------- config
def test_config_round_trip_and_environment_overrides(tmp_path: Path):
    cfg = ChainConfig(
        rpc_urls=("http://127.0.0.1:8545",),
        chain_id=31337,
        explorer_tx_url="https://explorer.example/tx/{tx}",
    )
    cfg.save(tmp_path)
    assert ChainConfig.load(tmp_path, env={}) == cfg
    assert cfg.tx_link("0xabc") == "https://explorer.example/tx/0xabc"
    assert ChainConfig.load(tmp_path / "none", env={}) is None
    env = {
        "SHOMEI_RPC_URLS": "https://a.example/k1, https://b.example",
        "SHOMEI_CHAIN_ID": str(SEPOLIA),
        "SHOMEI_REGISTRY_ADDRESS": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    }
    prod = ChainConfig.load(tmp_path / "none", env=env)
    assert prod is not None
    assert prod.rpc_urls == ("https://a.example/k1", "https://b.example")
    assert (prod.chain_id, prod.is_dev_chain) == (SEPOLIA, False)
    merged = ChainConfig.load(tmp_path, env=env)  # the file, with the overrides on top
    assert merged is not None
    assert (merged.rpc_urls, merged.chain_id) == (prod.rpc_urls, SEPOLIA)
    assert merged.explorer_tx_url == cfg.explorer_tx_url


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", "not a JSON object"),
        ("{", "is not JSON"),
        ('{"rpc_urls": ["http://x"]}', "no chain_id"),
        ('{"rpc_urls": ["ftp://x"], "chain_id": 1}', "http"),
        ('{"rpc_urls": ["http://x"], "chain_id": "1"}', "integer"),
        ('{"rpc_urls": ["http://x"], "chain_id": 1, "registry_address": "0x12"}', "address"),
    ],
)
def test_malformed_config_is_a_config_error(tmp_path: Path, text: str, match: str):
    (tmp_path / "chain.json").write_text(text)
    with pytest.raises(ConfigError, match=match):
        ChainConfig.load(tmp_path, env={})
