"""The audit log: who did what, when — never the personal values themselves.

Entries form a hash chain: ``entry_hash = SHA-256(prev_hash ‖ canonical JSON of
{id, at, actor, action, target, details})``, the first entry's ``prev_hash`` being 32
zero bytes. Ids are assigned here, gapless, so a deleted entry leaves a gap; the
``audit_head`` row names the newest entry, so deleting the newest entries is noticed
too. Appends lock that row (``UPDATE … RETURNING`` takes SQLite's write lock and a row
lock on PostgreSQL), so concurrent writers extend one chain and never fork it.

Each time the anchoring worker closes a batch, :func:`anchor_head` puts the current
head into it as one more leaf, ``leaf_from_digest(SHA-256(b"shomei-audit-head\\x00" ‖
head))``: one anchor transaction then proves the whole log up to that entry existed
at that time, and even a log rewritten with fresh hashes no longer matches it.

What ``details`` may hold: only the keys in :data:`DETAIL_KEYS`, each a number, a
boolean, None or a short string without line breaks. Anything else raises
``ValueError``: names, dates of birth, addresses and other claim values of a
certificate have no key to go in, and a password never reaches this module (a failed
sign-in records the username typed, as ``target``, and nothing else).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anchor import merkle
from anchor.store import Batch, Leaf
from credentials.encoding import canonical_json
from issuer.audit.models import HEAD_ROW, AuditAnchor, AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_DOMAIN = b"shomei-audit-head\x00"

# ------------------------------------------------------------------ actions
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
USER_CREATED = "user_created"
USER_DEACTIVATED = "user_deactivated"
USER_ACTIVATED = "user_activated"
PASSWORD_RESET = "password_reset"
CERTIFICATE_ISSUED = "certificate_issued"
CERTIFICATE_VIEWED = "certificate_viewed"
CERTIFICATE_REVOKED = "certificate_revoked"
KEY_ROTATED = "key_rotated"
OFFER_CREATED = "offer_created"  # a credential offer for the resident's wallet
OFFER_REDEEMED = "offer_redeemed"  # the wallet took the credential (holder-bound)
OFFER_REJECTED = "offer_rejected"  # a wrong tx_code, a reused or expired offer, a bad proof
CERTIFICATE_PRINTED = "certificate_printed"
CONTRACTOR_REGISTERED = "contractor_registered"  # a contractor, or its first signing key
CONTRACTOR_KEY_REPLACED = "contractor_key_replaced"  # a supervisor revoked its key, made a link
CONTRACTOR_KEY_REGISTERED = "contractor_key_registered"  # the new key, through that link
CONTRACT_UPLOADED = "contract_uploaded"  # a contract version created with its PDF
CONTRACT_LINK_CREATED = "contract_link_created"  # a one-time signing link for the contractor
CONTRACT_SIGNED = "contract_signed"  # the contractor's agreement, verified and stored
CONTRACT_APPROVED = "contract_approved"  # the supervisor signed with the city's key
CONTRACT_ISSUED = "contract_issued"  # one credential per party
CONTRACT_AMENDED = "contract_amended"  # a new version of an issued contract
CONTRACT_TERMINATED = "contract_terminated"  # its credentials revoked
CONTRACT_REFUSED = "contract_refused"  # a refused link, key or agreement
CONTRACT_VIEWED = "contract_viewed"  # its PDF opened (by the contractor or a clerk)
#: Each action's name on the audit page (Japanese, English); the log stores the code.
LABELS: dict[str, tuple[str, str]] = {
    SIGN_IN: ("サインイン", "signed in"),
    SIGN_IN_FAILED: ("サインイン失敗", "sign-in failed"),
    SIGN_OUT: ("サインアウト", "signed out"),
    USER_CREATED: ("職員の登録", "account created"),
    USER_DEACTIVATED: ("職員の無効化", "account deactivated"),
    USER_ACTIVATED: ("職員の有効化", "account activated"),
    PASSWORD_RESET: ("パスワードの再設定", "password reset"),
    CERTIFICATE_ISSUED: ("証明書の発行", "certificate issued"),
    CERTIFICATE_VIEWED: ("証明書の閲覧", "certificate viewed"),
    CERTIFICATE_REVOKED: ("証明書の取り消し", "certificate revoked"),
    KEY_ROTATED: ("市の署名鍵の更新", "city key rotated"),
    OFFER_CREATED: ("ウォレットへの送付", "credential offer created"),
    OFFER_REDEEMED: ("ウォレットが受け取り", "credential offer redeemed"),
    OFFER_REJECTED: ("ウォレットへの送付を拒否", "credential offer refused"),
    CERTIFICATE_PRINTED: ("証明書の印刷", "certificate printed"),
    CONTRACTOR_REGISTERED: ("受注者・署名鍵の登録", "contractor or its first key registered"),
    CONTRACTOR_KEY_REPLACED: ("受注者の署名鍵の失効・再登録リンク", "contractor key replaced"),
    CONTRACTOR_KEY_REGISTERED: ("受注者の新しい署名鍵の登録", "contractor's new key registered"),
    CONTRACT_UPLOADED: ("契約書の登録", "contract uploaded"),
    CONTRACT_LINK_CREATED: ("署名用リンクの作成", "signing link created"),
    CONTRACT_SIGNED: ("受注者の署名", "contractor signed"),
    CONTRACT_APPROVED: ("承認（発注者の署名）", "contract approved"),
    CONTRACT_ISSUED: ("契約書の発行", "contract credential issued"),
    CONTRACT_AMENDED: ("変更契約の作成", "contract amended"),
    CONTRACT_TERMINATED: ("契約の解除", "contract terminated"),
    CONTRACT_REFUSED: ("契約の操作を拒否", "contract request refused"),
    CONTRACT_VIEWED: ("契約書の閲覧", "contract viewed"),
}
ACTIONS = frozenset(LABELS)

#: The only keys ``details`` may carry: identifiers and codes, never a resident's data.
DETAIL_KEYS = frozenset(
    {
        "role",  # a clerk account's role
        "via",  # "web" or "cli"
        "reason",  # why sign-in failed ("wrong_password", "throttled") or a revocation code
        "vct",  # the certificate type
        "status_index",  # the certificate's index in the status list
        "key_id",  # a signing key's thumbprint
        "old_key_id",
        "page",  # which view of a certificate was opened ("detail", "print")
        "offer",  # a credential offer's public id
        "holder_key_id",  # the JWK thumbprint of the wallet key a credential is bound to
        "tx",  # an Ethereum transaction hash (key registration, anchoring)
        "contract",  # a contract version's public id
        "version",  # a contract's version number (1, then one more per amendment)
        "previous",  # the public id of the version an amendment replaces
        "party",  # "orderer" or "contractor"
        "document_sha256",  # the contract PDF's digest
        "certificate",  # a certificate's public id
        "contractor",  # a contractor's public id
    }
)
MAX_DETAIL_LENGTH = 128


@dataclass(frozen=True, kw_only=True)
class Break:
    """Where the chain first fails, and why: ``edited``, ``deleted``, ``reordered``,
    ``head`` (the head row disagrees with the entries) or ``rewritten`` (an entry no
    longer matches the head anchored for it)."""

    entry_id: int
    reason: str
    en: str
    ja: str


@dataclass(frozen=True, kw_only=True)
class AnchoredHead:
    """One head that went into an anchoring batch, and what became of it."""

    entry_id: int
    head_hash: str
    intact: bool  # the entry it names still hashes to it
    state: str  # "missing", or the batch's state: "closed", "sent", "anchored"
    batch_id: int | None
    block: int | None
    block_time: int | None
    tx: str | None


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    entries: int
    head_id: int
    broken: Break | None
    anchors: tuple[AnchoredHead, ...]

    @property
    def ok(self) -> bool:
        return self.broken is None

    def summary(self) -> tuple[str, str]:
        """The result for people, (Japanese, English)."""
        if self.broken is None:
            return (
                f"改ざんは検出されませんでした（{self.entries}件）",
                f"no tampering detected ({self.entries} entries)",
            )
        b = self.broken
        return (
            f"改ざんを検出しました: 記録 {b.entry_id} — {b.ja}",
            f"tampering detected: entry {b.entry_id} — {b.en}",
        )


# ------------------------------------------------------------------ writing
def check_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """``details`` when every key is allowed and every value a short scalar; raises
    ValueError otherwise (see the module docstring)."""
    details = dict(details or {})
    for key, value in details.items():
        if key not in DETAIL_KEYS:
            raise ValueError(
                f"audit details may not carry {key!r} (allowed: {sorted(DETAIL_KEYS)})"
            )
        if isinstance(value, str):
            if len(value) > MAX_DETAIL_LENGTH or "\n" in value or "\r" in value:
                raise ValueError(f"audit detail {key!r} is too long or spans lines")
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValueError(f"audit detail {key!r} must be a string, number or boolean")
    return details


def entry_hash(
    prev_hash: str,
    *,
    id: int,
    at: float,
    actor: str | None,
    action: str,
    target: str | None,
    details: dict[str, Any],
) -> str:
    """The hex SHA-256 of ``prev_hash`` (32 bytes) followed by the entry's canonical JSON."""
    body = {
        "id": id,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    }
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(body)).hexdigest()


def record(
    session: Session,
    *,
    actor: str | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    now: float,
) -> AuditEntry:
    """Append an entry inside the caller's transaction (the caller commits). Blocks
    while another transaction is appending. Raises ValueError for an unknown action
    or disallowed details."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    details = check_details(details)
    # Lock the head row first, then read it: on SQLite the UPDATE takes the write lock
    # before anything is read, on PostgreSQL it waits for (and then sees) the last append.
    head = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ROW)
        .values(entry_id=AuditHead.entry_id)
        .returning(AuditHead.entry_id, AuditHead.entry_hash)
    ).one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: run shomei issuer migrate")
    prev_id, prev_hash = head
    fields = {
        "id": prev_id + 1,
        "at": float(now),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    }
    digest = entry_hash(
        prev_hash,
        id=prev_id + 1,
        at=float(now),
        actor=actor,
        action=action,
        target=target,
        details=details,
    )
    entry = AuditEntry(**fields, prev_hash=prev_hash, entry_hash=digest)
    session.add(entry)
    session.flush()
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ROW)
        .values(entry_id=entry.id, entry_hash=digest)
    )
    return entry


def record_committed(session: Session, **kwargs: Any) -> AuditEntry:
    """:func:`record`, then commit: for events whose own change is already committed
    (or that change nothing, like a sign-in)."""
    entry = record(session, **kwargs)
    session.commit()
    return entry


def latest(session: Session, *, page: int = 1, per_page: int = 50) -> list[AuditEntry]:
    """The entries of page ``page`` (1 = the newest ``per_page``), newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    return list(session.scalars(query.offset((max(page, 1) - 1) * per_page).limit(per_page)))


# ------------------------------------------------------------------ anchoring
def head_leaf(head_hash: str) -> bytes:
    """The anchoring leaf for a head: domain-separated, so it can never be mistaken
    for a credential's leaf (whose digest is the SHA-256 of a JWT)."""
    return merkle.leaf_from_digest(hashlib.sha256(HEAD_DOMAIN + bytes.fromhex(head_hash)).digest())


def anchor_head(session: Session, now: float) -> list[bytes]:
    """The Batcher's ``extra_leaves`` hook: the current head's leaf, recorded in
    ``audit_anchors`` in the batch's own transaction; nothing when the log is empty or
    its head is already anchored."""
    head = session.get(AuditHead, HEAD_ROW, populate_existing=True)
    if head is None or head.entry_id == 0:
        return []
    last = session.scalar(select(AuditAnchor.entry_id).order_by(AuditAnchor.id.desc()).limit(1))
    if last == head.entry_id:
        return []
    leaf = head_leaf(head.entry_hash)
    session.add(
        AuditAnchor(entry_id=head.entry_id, head_hash=head.entry_hash, leaf=leaf, queued_at=now)
    )
    return [leaf]


# ------------------------------------------------------------------ verifying
def verify_chain(session: Session) -> AuditReport:
    """Check the whole log and every anchored head.

    (1) ids run 1, 2, 3… without gaps; (2) each entry hashes to its stored hash (if it
    hashes correctly under another id, it was moved: reordered); (3) each entry's
    prev_hash is the hash of the entry before; (4) the head row names the last entry;
    (5) each anchored head is still the hash of the entry it names. The report names
    the first failure; the anchored heads are listed with their batch's state."""
    broken: Break | None = None
    hashes: dict[int, str] = {}
    prev, expected, count = GENESIS, 1, 0
    for e in _entries(session):
        count += 1
        hashes[e.id] = e.entry_hash
        if broken is None:
            broken = _check_entry(session, e, expected, prev)
        prev, expected = e.entry_hash, e.id + 1
    head = session.get(AuditHead, HEAD_ROW)
    head_id = head.entry_id if head else 0
    last_id = expected - 1
    # (4)
    if broken is None and (head is None or head_id != last_id or head.entry_hash != prev):
        if head is not None and head_id > last_id:
            broken = _break(
                last_id + 1,
                "deleted",
                "the newest entries are missing",
                "最新の記録が削除されています",
            )
        else:
            broken = _break(
                max(head_id, 1),
                "head",
                "the head row does not match the last entry",
                "先頭の記録が最後の記録と一致しません",
            )
    anchors = tuple(_anchored_heads(session, hashes))
    # (5)
    for a in anchors:
        if broken is None and not a.intact:
            broken = _break(
                a.entry_id,
                "rewritten",
                "no longer matches the head anchored for it",
                "ブロックチェーンに記録した時点の内容と一致しません",
            )
    return AuditReport(entries=count, head_id=head_id, broken=broken, anchors=anchors)


def _entries(session: Session) -> Iterator[AuditEntry]:
    """Every entry in id order, streamed. The result is closed even when the caller stops
    early (a broken entry found): PostgreSQL streams through a server-side cursor."""
    result = session.scalars(
        select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
    )
    try:
        yield from result
    finally:
        result.close()


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "details": e.details,
    }


def _check_entry(session: Session, e: AuditEntry, expected: int, prev: str) -> Break | None:
    # (1)
    if e.id != expected:
        span = f"{expected}" if e.id == expected + 1 else f"{expected}–{e.id - 1}"
        return _break(
            expected, "deleted", f"entry {span} is missing", f"記録 {span} が削除されています"
        )
    # (2)
    if entry_hash(e.prev_hash, id=e.id, **_fields(e)) != e.entry_hash:
        moved = _original_id(session, e)
        if moved is not None and not _content_exists_for(session, e.id):
            return _break(
                e.id,
                "deleted",
                f"entry {e.id} was deleted and the later ones renumbered",
                f"記録 {e.id} が削除され、以降の番号が付け直されています",
            )
        if moved is not None:
            return _break(
                e.id,
                "reordered",
                f"holds the content of entry {moved}",
                f"記録 {moved} の内容と入れ替えられています",
            )
        return _break(
            e.id, "edited", "its content does not match its hash", "内容が書き換えられています"
        )
    # (3)
    if e.prev_hash != prev:
        return _break(
            e.id,
            "deleted",
            "it does not follow the entry before it (deleted or rewritten)",
            "直前の記録とつながりません（削除または書き換え）",
        )
    return None


def _original_id(session: Session, e: AuditEntry) -> int | None:
    """The id under which this entry's content hashes correctly, if another one."""
    fields = _fields(e)
    for other in session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)):
        if other != e.id and entry_hash(e.prev_hash, id=other, **fields) == e.entry_hash:
            return other
    return None


def _content_exists_for(session: Session, entry_id: int) -> bool:
    """Whether some row holds content that hashes correctly under ``entry_id``."""
    for e in _entries(session):
        if entry_hash(e.prev_hash, id=entry_id, **_fields(e)) == e.entry_hash:
            return True
    return False


def _anchored_heads(session: Session, hashes: dict[int, str]) -> Iterator[AnchoredHead]:
    rows = session.execute(
        select(AuditAnchor, Batch)
        .outerjoin(Leaf, Leaf.leaf == AuditAnchor.leaf)
        .outerjoin(Batch, Batch.id == Leaf.batch_id)
        .order_by(AuditAnchor.id)
    ).all()
    for anchor, batch in rows:
        intact = hashes.get(anchor.entry_id) == anchor.head_hash and anchor.leaf == head_leaf(
            anchor.head_hash
        )
        yield AnchoredHead(
            entry_id=anchor.entry_id,
            head_hash=anchor.head_hash,
            intact=intact,
            state=batch.state if batch is not None else "missing",
            batch_id=batch.id if batch is not None else None,
            block=batch.block if batch is not None else None,
            block_time=batch.block_time if batch is not None else None,
            tx=batch.tx_hash if batch is not None else None,
        )


def _break(entry_id: int, reason: str, en: str, ja: str) -> Break:
    return Break(entry_id=entry_id, reason=reason, en=en, ja=ja)
