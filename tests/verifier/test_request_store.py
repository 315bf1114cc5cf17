"""The request pool's SQLite store on its own: quotas, expiry, tombstones and answers
that are accepted once, also between two stores (two processes) on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from verifier import requests as vrequests
from verifier.request_store import MEMORY, SqliteStore

NOW = 1_800_000_000.0
CLIENT = "http://verifier.test"


def make(store: SqliteStore, address: str = "192.0.2.1", *, now: float = NOW) -> str:
    return store.create(client_id=CLIENT, claims=(), address=address, now=now).id


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(path=tmp_path / "requests.db")


def test_a_request_round_trips(store) -> None:
    made = store.create(client_id=CLIENT, claims=("address",), address="192.0.2.1", now=NOW)
    assert store.get(made.id, now=NOW + 1) == made
    assert made.expires_at == NOW + vrequests.TTL and made.state() == "pending"
    store.answer(made.id, {"verdict": "valid", "名": "値"}, "pres", now=NOW + 2)
    got = store.get(made.id, now=NOW + 3)
    assert got.result == {"verdict": "valid", "名": "値"} and got.state() == "answered"
    taken = store.take_result(made.id, now=NOW + 4)
    assert taken.presentation == "pres" and taken.result == got.result
    with pytest.raises(vrequests.RequestError, match="no such request"):
        store.get(made.id, now=NOW + 5)


def test_expired_requests_become_tombstones_that_count_for_nothing(tmp_path) -> None:
    limits = vrequests.Limits(max_pending=2, per_address=2)
    store = SqliteStore(path=tmp_path / "r.db", limits=limits)
    first, second = make(store, "192.0.2.1"), make(store, "192.0.2.2")
    with pytest.raises(vrequests.RequestError, match="too many pending") as full:
        make(store, "192.0.2.3", now=NOW + 50)
    assert full.value.status == 503 and full.value.retry_after == vrequests.TTL - 50
    later = NOW + vrequests.TTL
    third = make(store, "192.0.2.3", now=later)  # both expired: room at once
    with pytest.raises(vrequests.RequestError, match="expired") as gone:
        store.get(first, now=later)
    assert gone.value.status == 410
    # only the ids are left of the expired ones
    assert rows(tmp_path / "r.db") == ({first, second}, {third})
    store.purge(now=later + vrequests.GRACE)
    with pytest.raises(vrequests.RequestError, match="no such request"):
        store.get(first, now=later + vrequests.GRACE)
    assert rows(tmp_path / "r.db") == ({third}, set())


def rows(path: Path) -> tuple[set[str], set[str]]:
    """The ids of the tombstones and of the requests in the store file."""
    with closing(sqlite3.connect(path)) as db:
        tombstones = {r[0] for r in db.execute("SELECT id FROM tombstones")}
        live = {r[0] for r in db.execute("SELECT id FROM requests")}
    return tombstones, live


def test_an_answered_request_keeps_its_result_for_the_screen(store) -> None:
    rid = make(store)
    answered_at = NOW + vrequests.TTL - 1
    store.answer(rid, {"verdict": "valid"}, "p", now=answered_at)
    assert store.get(rid, now=NOW + vrequests.TTL + 10).state() == "answered"
    with pytest.raises(vrequests.RequestError, match="expired"):
        store.take_result(rid, now=answered_at + vrequests.RESULT_TTL)


def test_answers_are_refused_when_expired_or_unknown(store) -> None:
    rid = make(store)
    with pytest.raises(vrequests.RequestError, match="expired"):
        store.answer(rid, {}, "p", now=NOW + vrequests.TTL)
    with pytest.raises(vrequests.RequestError, match="no such request"):
        store.answer("A" * 22, {}, "p", now=NOW)
    with pytest.raises(vrequests.RequestError, match="no such request"):
        store.take_result(make(store), now=NOW)  # not answered yet


def test_one_answer_among_racing_processes(tmp_path) -> None:
    """Eight stores on one file (each its own connection, as worker processes) answer
    the same request at once: exactly one answer is kept, the others are replays."""
    path = tmp_path / "shared.db"
    stores = [SqliteStore(path=path) for _ in range(8)]
    rid = make(stores[0])
    outcomes: list[str] = []
    start = threading.Barrier(len(stores))

    def answer(i: int) -> None:
        start.wait()
        try:
            stores[i].answer(rid, {"verdict": "valid", "by": i}, f"p{i}", now=NOW + 1)
            outcomes.append("kept")
        except vrequests.RequestError as e:
            outcomes.append(e.code)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already_answered"] * 7 + ["kept"]
    kept = stores[3].take_result(rid, now=NOW + 2)
    assert kept.presentation == f"p{kept.result['by']}"  # type: ignore[index]


def test_memory_store_and_bad_limits() -> None:
    store = SqliteStore(path=MEMORY)
    rid = make(store)
    assert store.get(rid, now=NOW).id == rid
    with pytest.raises(ValueError, match="per_address must be positive"):
        vrequests.Limits(per_address=0)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("", "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_address_keys(address: str, key: str) -> None:
    assert vrequests.address_key(address) == key


_ANSWER_IN_A_PROCESS = """
import sys
from verifier.requests import RequestError
from verifier.request_store import SqliteStore
path, rid, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    SqliteStore(path=path).answer(rid, {"by": sys.argv[4]}, "p", now=now)
    print("kept")
except RequestError as e:
    print(e.code)
"""


def test_one_answer_among_worker_processes(tmp_path) -> None:
    """Real processes on one store file, as gunicorn's workers: one answer is kept."""
    path = tmp_path / "shared.db"
    store = SqliteStore(path=path)
    rid = make(store)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _ANSWER_IN_A_PROCESS, str(path), rid, str(NOW + 1), str(i)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outcomes = sorted(w.communicate(timeout=60)[0].strip() for w in workers)
    assert outcomes == ["already_answered"] * 3 + ["kept"]
    assert store.get(rid, now=NOW + 2).state() == "answered"
