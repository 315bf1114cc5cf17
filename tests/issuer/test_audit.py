"""The audit log: every event recorded without personal values, the hash chain and
what breaks it (an edited, deleted or moved entry; a rewritten log), concurrent
writers, the head anchored with the next batch, the supervisor page and
``shomei audit verify``. On SQLite, and on PostgreSQL when configured."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from issuer_testing import PASSWORD, add_user, csrf_token, sign_in
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.accounts import ChainAccount
from anchor.backends import EvmChain
from anchor.batcher import Batcher, enqueue
from anchor.registry import register_issuer
from anchor.store import make_engine
from issuer import db
from issuer.audit import service as audit
from issuer.audit.models import AuditEntry, AuditHead
from shomei_cli import main

NOW = 1_800_000_000.0
WRONG_PASSWORD = "attempted-secret-77"
NEW_PASSWORD = "brand-new-password-99"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    db.migrate(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def append(engine: Engine, n: int, *, start: float = NOW) -> None:
    with Session(engine) as s:
        for i in range(n):
            audit.record(s, actor="boss", action=audit.SIGN_IN, target=f"user:u{i}", now=start + i)
        s.commit()


def entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def report(engine: Engine) -> audit.AuditReport:
    with Session(engine) as s:
        return audit.verify_chain(s)


# ------------------------------------------------------------------ events
def test_every_event_is_recorded_without_personal_values(make_app, database_url):
    app = make_app(database_url)
    add_user(app, "boss", "supervisor")
    client = app.test_client()
    assert sign_in(client, "boss", WRONG_PASSWORD).status_code == 401
    assert sign_in(client, "boss").status_code == 302
    token = csrf_token(client, "/users/")
    form = {
        "csrf_token": token,
        "username": "clerk2",
        "display_name": "山田 花子",
        "role": "clerk",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    assert client.post("/users/", data=form).status_code == 302
    with Session(db.engine_of(app)) as s:
        clerk_id = s.scalar(select(AuditEntry.id).where(AuditEntry.action == "user_created"))
        from issuer.accounts.models import User

        clerk_id = s.scalar(select(User.id).where(User.username == "clerk2"))
    pw = {"csrf_token": token, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    assert client.post(f"/users/{clerk_id}/password", data=pw).status_code == 302
    assert (
        client.post(f"/users/{clerk_id}/deactivate", data={"csrf_token": token}).status_code == 302
    )
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302

    log = entries(db.engine_of(app))
    assert [(e.actor, e.action, e.target) for e in log] == [
        (None, "sign_in_failed", "user:boss"),
        ("boss", "sign_in", "user:boss"),
        ("boss", "user_created", "user:clerk2"),
        ("boss", "password_reset", "user:clerk2"),
        ("boss", "user_deactivated", "user:clerk2"),
        ("boss", "sign_out", None),
    ]
    assert log[0].details == {"reason": "wrong_password"}
    assert log[2].details == {"role": "clerk"}
    stored = repr([(e.actor, e.action, e.target, e.details) for e in log])
    for secret in (WRONG_PASSWORD, PASSWORD, NEW_PASSWORD, "山田", "花子"):
        assert secret not in stored
    assert report(db.engine_of(app)).ok


def test_details_take_only_allowed_keys_and_short_values(engine):
    with Session(engine) as s:
        with pytest.raises(ValueError, match="may not carry 'family_name'"):
            audit.record(
                s, actor="a", action="certificate_issued", details={"family_name": "山田"}, now=NOW
            )
        with pytest.raises(ValueError, match="too long"):
            audit.record(
                s, actor="a", action="certificate_revoked", details={"reason": "x" * 200}, now=NOW
            )
        with pytest.raises(ValueError, match="must be a string"):
            audit.record(s, actor="a", action="key_rotated", details={"key_id": {"n": 1}}, now=NOW)
        with pytest.raises(ValueError, match="unknown audit action"):
            audit.record(s, actor="a", action="coffee", now=NOW)
        for action in ("certificate_issued", "certificate_viewed", "certificate_revoked"):
            audit.record(
                s,
                actor="clerk1",
                action=action,
                target="credential:42",
                details={"vct": "juminhyo", "status_index": 7},
                now=NOW,
            )
        audit.record(
            s,
            actor="boss",
            action="key_rotated",
            details={"key_id": "k2", "old_key_id": "k1"},
            now=NOW,
        )
        s.commit()
    assert report(engine).entries == 4 and report(engine).ok


# ------------------------------------------------------------------ the chain
def test_an_intact_chain_verifies(engine):
    assert report(engine).ok and report(engine).entries == 0
    append(engine, 5)
    r = report(engine)
    assert r.ok and r.entries == 5 and r.head_id == 5
    assert r.summary()[0].startswith("改ざんは検出されませんでした")
    log = entries(engine)
    assert log[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(log))


def test_an_edited_entry_is_detected(engine):
    append(engine, 5)
    with Session(engine) as s:
        s.execute(
            update(AuditEntry).where(AuditEntry.id == 3).values(details={"role": "supervisor"})
        )
        s.commit()
    r = report(engine)
    assert not r.ok and (r.broken.entry_id, r.broken.reason) == (3, "edited")
    assert r.summary()[0].startswith("改ざんを検出しました: 記録 3")


def test_a_deleted_entry_is_detected(engine):
    append(engine, 5)
    with Session(engine) as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == 2))
        s.commit()
    r = report(engine)
    assert (r.broken.entry_id, r.broken.reason) == (2, "deleted")


def test_deleting_the_newest_entry_is_detected(engine):
    append(engine, 5)
    with Session(engine) as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == 5))
        s.commit()
    r = report(engine)
    assert (r.broken.entry_id, r.broken.reason) == (5, "deleted")


def test_a_deleted_and_renumbered_entry_is_detected(engine):
    append(engine, 5)
    with Session(engine) as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == 3))
        for i in (4, 5):
            s.execute(update(AuditEntry).where(AuditEntry.id == i).values(id=i - 1))
        s.execute(update(AuditHead).values(entry_id=4))
        s.commit()
    r = report(engine)
    assert (r.broken.entry_id, r.broken.reason) == (3, "deleted")


def test_swapped_entries_are_detected(engine):
    append(engine, 5)
    with Session(engine) as s:
        for old, new in ((2, -1), (4, 2), (-1, 4)):
            s.execute(update(AuditEntry).where(AuditEntry.id == old).values(id=new))
        s.commit()
    r = report(engine)
    assert (r.broken.entry_id, r.broken.reason) == (2, "reordered")
    assert "entry 4" in r.broken.en


def test_concurrent_appends_keep_one_chain(engine):
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with Session(engine) as s:
                    audit.record(s, actor=name, action=audit.SIGN_IN, now=NOW + i)
                    s.commit()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    r = report(engine)
    assert r.ok and r.entries == 30 and r.head_id == 30
    assert sorted(e.actor for e in entries(engine)) == ["w0"] * 15 + ["w1"] * 15


# ------------------------------------------------------------------ anchoring
def batcher_for(engine: Engine) -> Batcher:
    gov = EvmChain.fresh()
    city = ChainAccount.dev(1)
    register_issuer(
        gov, city.address, issuer_id="https://a.example", name="A市", municipality_code="402052"
    )
    return Batcher(
        engine=engine,
        chain=gov.using(city),
        issuer_address=city.address,
        extra_leaves=audit.anchor_head,
    )


def queue_credential(engine: Engine, tag: str) -> None:
    with Session(engine) as s:
        enqueue(s, merkle.leaf_hash(f"eyJ.{tag}.sig"), now=NOW)
        s.commit()


def test_the_head_goes_into_the_next_batch_and_is_reported_anchored(engine):
    batcher = batcher_for(engine)
    append(engine, 3)
    queue_credential(engine, "a")
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)
    r = report(engine)
    assert r.ok and len(r.anchors) == 1
    (a,) = r.anchors
    assert (a.entry_id, a.intact, a.state) == (3, True, "anchored")
    assert a.block is not None and a.block_time is not None and a.tx
    head = entries(engine)[-1].entry_hash
    assert a.head_hash == head
    evidence = batcher.evidence(audit.head_leaf(head))
    assert evidence is not None and evidence.block == a.block
    assert audit.head_leaf(head) != merkle.leaf_from_digest(bytes.fromhex(head))

    queue_credential(engine, "b")  # head unchanged: nothing more to anchor
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)
    assert len(report(engine).anchors) == 1
    append(engine, 1, start=NOW + 100)
    queue_credential(engine, "c")
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)
    assert [(x.entry_id, x.state) for x in report(engine).anchors] == [
        (3, "anchored"),
        (4, "anchored"),
    ]


def test_a_rewritten_log_no_longer_matches_its_anchored_head(engine):
    batcher = batcher_for(engine)
    append(engine, 3)
    queue_credential(engine, "a")
    batcher.flush()
    batcher.run_until_idle(timeout=30, interval=0)
    # Edit entry 2 and recompute every hash after it, head row included: the chain
    # is consistent again, but the anchored head is not.
    with Session(engine) as s:
        prev = audit.GENESIS
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id)):
            if e.id == 2:
                e.target = "user:someone-else"
            e.prev_hash = prev
            e.entry_hash = prev = audit.entry_hash(
                prev,
                id=e.id,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                details=e.details,
            )
        s.execute(update(AuditHead).values(entry_hash=prev))
        s.commit()
    r = report(engine)
    assert (r.broken.entry_id, r.broken.reason) == (3, "rewritten")
    assert not r.anchors[0].intact


# ------------------------------------------------------------------ page and command
def test_audit_page_for_supervisors_only(make_app, database_url):
    app = make_app(database_url)
    add_user(app, "boss", "supervisor")
    add_user(app, "clerk1", "clerk")
    clerk = app.test_client()
    assert sign_in(clerk, "clerk1").status_code == 302
    assert clerk.get("/audit/").status_code == 403
    boss = app.test_client()
    assert sign_in(boss, "boss").status_code == 302
    page = boss.get("/audit/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "改ざんは検出されませんでした" in text and "sign_in" in text and "clerk1" in text
    with Session(db.engine_of(app)) as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == 1).values(actor="nobody"))
        s.commit()
    text = boss.get("/audit/?lang=en").get_data(as_text=True)
    assert "tampering detected: entry 1" in text


def test_every_action_has_its_own_label_in_both_languages(make_app, database_url):
    assert set(audit.LABELS) == audit.ACTIONS
    assert audit.CONTRACTOR_KEY_REPLACED != audit.CONTRACTOR_REGISTERED
    for ja, en in audit.LABELS.values():
        assert ja and en and ja != en
    assert len({en for _, en in audit.LABELS.values()}) == len(audit.LABELS)  # no two alike
    app = make_app(database_url)
    add_user(app, "boss", "supervisor")
    boss = app.test_client()
    assert sign_in(boss, "boss").status_code == 302
    assert 'data-action="sign_in">サインイン<br>' in boss.get("/audit/").get_data(as_text=True)
    english = boss.get("/audit/?lang=en").get_data(as_text=True)
    assert 'data-action="sign_in">signed in<br>' in english


def test_shomei_audit_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SHOMEI_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    runner = CliRunner()
    missing = runner.invoke(main, ["audit", "verify", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "cannot read the database" in missing.output
    url = f"sqlite:///{data / 'shomei.db'}"
    db.migrate(url)
    engine = make_engine(url)
    try:
        append(engine, 4)
        ok = runner.invoke(main, ["audit", "verify", "--data-dir", str(data)])
        assert ok.exit_code == 0, ok.output
        assert "改ざんは検出されませんでした" in ok.output
        with Session(engine) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.id == 2))
            s.commit()
        broken = runner.invoke(main, ["audit", "verify", "--data-dir", str(data)])
        assert broken.exit_code == 1
        assert "entry 2" in broken.output and "missing" in broken.output
    finally:
        engine.dispose()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "shomei.db").write_bytes(b"not a database at all" * 100)
    junk = runner.invoke(main, ["audit", "verify", "--data-dir", str(tmp_path / "junk")])
    assert junk.exit_code == 2
