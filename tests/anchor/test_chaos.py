"""Chaos: several anchoring workers on one database, clerks issuing at full rate, the
leader killed with SIGKILL at its crash points, the node restarted, PostgreSQL
restarted. At the end every issued credential has a receipt whose root is anchored on
chain exactly once, and no root is anchored twice.

Each worker is a real process (chaos_worker.py: the issuer's ``AnchorWorker`` with its
lease) against a real anvil mining a block a second, and the clerks are four threads
that each commit one leaf per transaction, as the issuer does when it issues. The
figures (anchoring lag, takeover time) are printed and written to
``build/chaos-<backend>-<workers>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from anchor_testing import ANVIL, free_port, postgres_schema, require_anvil
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import RpcChain, RpcNode
from anchor.batcher import enqueue
from anchor.lease import current
from anchor.registry import deploy_registry, register_issuer
from anchor.store import ANCHORED, Batch, Leaf, create_schema, make_engine

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("chaos_worker.py")
CLERKS = 4
DURATION = 24.0  # seconds of issuing under chaos
DRAIN = 90.0  # at most this long for the rest to be anchored afterwards
#: The crash points the leader is killed at: before the send is recorded (signed only),
#: recorded but not broadcast, broadcast but nothing after recorded, mined but not
#: finalized, and right after a close.
KILL_POINTS = ["before_record", "before_broadcast", "after_broadcast", "before_finalize"]
KILL_POINTS_MORE = ["after_close", "after_finalize"]


class Node:
    """anvil on a fixed port with its state in a file, restartable (a node restart)."""

    def __init__(self, directory: Path) -> None:
        require_anvil()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = directory / "state.json"
        self.log = directory / "anvil.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent",
                    "--block-time", "1", "--state", str(self.state), "--state-interval", "1",
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.post(self.url, json=body, timeout=1).ok:
                    return
            time.sleep(0.05)
        raise AssertionError(f"anvil did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean stop: anvil writes its state
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Workers:
    """The worker processes; a killed one is started again (as systemd would)."""

    db: str
    node: Node
    registry: str
    directory: Path
    kill_file: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0

    def start(self, name: str) -> None:
        self.started += 1
        log = (self.directory / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [
                sys.executable, str(WORKER), "--db", self.db, "--rpc", self.node.url,
                "--registry", self.registry, "--name", name, "--kill-file", str(self.kill_file),
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def restart_dead(self) -> list[str]:
        dead = [n for n, p in self.procs.items() if p.poll() is not None]
        for name in dead:
            self.start(name)
        return dead

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(
            f"--- {f.name}\n" + f.read_text()[-3000:] for f in sorted(self.directory.glob("*.log"))
        )


def restart_postgres() -> None:
    """Restart the local cluster of the test database (root only: .ci/run is root)."""
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot restart PostgreSQL here (root and pg_ctlcluster needed)")
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster")
    version, cluster = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    subprocess.run(
        ["pg_ctlcluster", version, cluster, "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Clerks:
    """Four clerks issuing as fast as the database lets them: one leaf a transaction."""

    def __init__(self, engine, *, pause: float = 0.002) -> None:
        self.engine = engine
        self.pause = pause
        self.issued: dict[bytes, float] = {}
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLERKS)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, clerk: int) -> None:
        n = 0
        while not self._stop.is_set():
            leaf = merkle.leaf_hash(f"eyJ.clerk{clerk}-{n}.{os.urandom(4).hex()}")
            now = time.time()
            try:
                with Session(self.engine) as s:
                    enqueue(s, leaf, now=now)
                    s.commit()
            except SQLAlchemyError:
                self.failures += 1  # not issued: the clerk sees an error and retries
                time.sleep(0.1)
                continue
            with self._lock:
                self.issued[leaf] = now
            n += 1
            time.sleep(self.pause)  # at least: keeps SQLite's write lock shared


class LeaderLog:
    """Watches the lease row: every change of leader, with its time."""

    def __init__(self, engine, *, pause: float = 0.002) -> None:
        self.engine = engine
        self.pause = pause
        self.changes: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with Session(self.engine) as s:
                    info = current(s)
            except SQLAlchemyError:
                info = None
            if info is not None and (not self.changes or self.changes[-1][2] != info.epoch):
                self.changes.append((time.monotonic(), info.holder, info.epoch))
            self._stop.wait(0.02)

    def holder(self) -> str | None:
        return self.changes[-1][1] if self.changes else None

    def next_change_after(self, t: float, holder: str) -> float | None:
        """When a holder other than ``holder`` first led after ``t``."""
        for at, who, _ in self.changes:
            if at > t and who != holder:
                return at
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def anchored_roots_on_chain(chain: RpcChain, address: str) -> list[bytes]:
    """Every root the issuer anchored, from the registry's Anchored events."""
    from anchor._web3chain import address_topic, event_topic

    w3 = chain.node.w3
    logs = w3.eth.get_logs(
        {
            "address": chain.registry_address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [event_topic("Anchored"), address_topic(address)],
        }
    )
    return [bytes(log["topics"][2]) for log in logs]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_chaos(backend: str, workers: int, tmp_path: Path, people) -> None:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            db = f"sqlite:///{tmp_path / 'shomei.db'}"
        else:
            db = stack.enter_context(postgres_schema())
        run_chaos(backend, workers, db, tmp_path, people, seed=workers * 7919)


def run_chaos(
    backend: str,
    n_workers: int,
    db: str,
    tmp_path: Path,
    people,
    *,
    seed: int,
    clerk_pause: float = 0.002,
    chaos: bool = True,
) -> dict:
    """Run the scenario; returns the figures. ``clerk_pause`` paces each clerk (the
    default is the database's full rate), ``chaos`` False measures a quiet run."""
    rng = random.Random(seed)
    node = Node(tmp_path)
    rpc = RpcNode([node.url], 31337)
    registry = deploy_registry(rpc, people.governance)
    gov = RpcChain([node.url], 31337, registry, people.governance)
    city = ChainAccount.dev(1)
    register_issuer(
        gov, city.address, issuer_id="https://chaos.example", name="カオス市",
        municipality_code="402052",
    )  # fmt: skip
    engine = make_engine(db)
    create_schema(engine)
    kill_file = tmp_path / "kill"
    pool = Workers(db, node, registry, tmp_path, kill_file)
    clerks = Clerks(engine, pause=clerk_pause)
    leaders = LeaderLog(engine)
    events: list[str] = []
    takeovers: list[float] = []
    try:
        for i in range(n_workers):
            pool.start(f"w{i}")
        clerks.start()
        # The chaos schedule: three kills (the named points first, then a random one),
        # a node restart, and on PostgreSQL a database restart.
        named = ["before_broadcast", "after_broadcast", "before_finalize"]
        points = [*rng.sample(named, 3), rng.choice(KILL_POINTS + KILL_POINTS_MORE)]
        plan: list[tuple[float, str]] = [(1.0, "kill"), (6.0, "node"), (7.0, "kill")]
        plan += [(12.0, "postgres")] if backend == "postgresql" else []
        plan += [(13.0, "kill"), (19.0, "kill")]
        plan = plan if chaos else []
        start = time.monotonic()
        while time.monotonic() - start < DURATION:
            if plan and time.monotonic() - start >= plan[0][0]:
                _, what = plan.pop(0)
                if what == "kill":
                    event = kill_leader(leaders, pool, kill_file, points.pop(0))
                    events.append(event)
                    if "taken over in" in event:
                        takeovers.append(float(event.split("taken over in ")[1].split()[0]))
                elif what == "node":
                    node.restart()
                    events.append("node restarted")
                else:
                    restart_postgres()
                    events.append("PostgreSQL restarted")
            pool.restart_dead()
            time.sleep(0.1)
        clerks.stop()
        issued = dict(clerks.issued)
        deadline = time.monotonic() + DRAIN
        while time.monotonic() < deadline:
            pool.restart_dead()
            if not pending(engine, issued):
                break
            time.sleep(0.5)
        left = pending(engine, issued)
        assert not left, f"{len(left)} of {len(issued)} not anchored\n{events}\n{pool.logs()}"
        check_exactly_once(engine, gov.using(city), city.address, issued)
        events.append(f"{len(leaders.changes)} leaders in all")
        return report(backend, n_workers, engine, issued, takeovers, events, clerks.failures)
    finally:
        leaders.stop()
        pool.stop()
        node.stop()
        engine.dispose()
        gov.close()
        rpc.close()


def kill_leader(leaders: LeaderLog, pool: Workers, kill_file: Path, point: str) -> str:
    """Ask the leader to die at ``point``; say who died and how long until another
    process led (a worker that was deposed without knowing it yet may die instead)."""
    kill_file.write_text(point)
    deadline = time.monotonic() + 20
    while kill_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if kill_file.exists():
        kill_file.unlink(missing_ok=True)
        return f"{point}: not reached"
    killed_at = time.monotonic()
    (taken,) = kill_file.parent.glob(f"{kill_file.name}.*")
    pid = taken.suffix.lstrip(".")
    taken.unlink()
    name = next(n for n, p in pool.procs.items() if str(p.pid) == pid)
    victim = f"{name}:{pid}"
    if leaders.holder() != victim:
        return f"{point}: killed {victim}, not the leader ({leaders.holder()})"
    while time.monotonic() < deadline:
        pool.restart_dead()
        at = leaders.next_change_after(killed_at - 0.05, victim)
        if at is not None:
            took = max(0.0, at - killed_at)
            return f"{point}: killed leader {victim}, taken over in {took:.2f} s"
        time.sleep(0.05)
    return f"{point}: killed leader {victim}, no takeover within 20 s"


def pending(engine, issued: dict[bytes, float]) -> list[bytes]:
    try:
        with Session(engine) as s:
            done = {
                leaf
                for (leaf,) in s.execute(
                    select(Leaf.leaf)
                    .join(Batch, Leaf.batch_id == Batch.id)
                    .where(Leaf.receipt.is_not(None), Batch.state == ANCHORED)
                )
            }
    except SQLAlchemyError:
        return list(issued)
    return [leaf for leaf in issued if leaf not in done]


def check_exactly_once(engine, chain: RpcChain, address: str, issued: dict[bytes, float]):
    with Session(engine) as s:
        rows = {r.leaf: r for r in s.scalars(select(Leaf))}
        batches = {b.id: b for b in s.scalars(select(Batch))}
    on_chain = anchored_roots_on_chain(chain, address)
    assert len(on_chain) == len(set(on_chain)), "no root is anchored twice"
    anchored = {b.root: b for b in batches.values() if b.state == ANCHORED}
    # Every root on chain is a batch we hold receipts for (no stray anchor of a batch
    # given up on, whose leaves would then be in two roots), and the other way round.
    assert set(on_chain) == set(anchored), (len(on_chain), len(anchored))
    for leaf in issued:
        row = rows[leaf]
        batch = batches[row.batch_id]
        assert batch.state == ANCHORED and row.receipt is not None
        merkle.verify_inclusion(leaf, merkle.Receipt.from_bytes(row.receipt), batch.root)
    for batch in anchored.values():
        rec = chain.read_anchor(address, batch.root)
        assert rec is not None and rec.block == batch.block


def report(backend, n_workers, engine, issued, takeovers, events, clerk_failures) -> dict:
    with Session(engine) as s:
        rows = s.execute(
            select(Leaf.leaf, Batch.anchored_at).join(Batch, Leaf.batch_id == Batch.id)
        ).all()
        n_batches = len(s.scalars(select(Batch.id).where(Batch.state == ANCHORED)).all())
    lag = sorted(at - issued[leaf] for leaf, at in rows if leaf in issued and at is not None)
    q = statistics.quantiles(lag, n=20)
    figures = {
        "backend": backend,
        "workers": n_workers,
        "issued": len(issued),
        "issue_rate_per_s": round(len(issued) / DURATION, 1),
        "batches": n_batches,
        "lag_p50_s": round(statistics.median(lag), 2),
        "lag_p95_s": round(q[18], 2),
        "lag_max_s": round(lag[-1], 2),
        "takeover_s": takeovers,
        "events": events,
        "clerk_errors_during_restarts": clerk_failures,
    }
    out = ROOT / "build" / f"chaos-{backend}-{n_workers}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(figures, ensure_ascii=False))
    return figures
