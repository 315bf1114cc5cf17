"""Clerk accounts in storage (SQLite and PostgreSQL): argon2id hashes, sign-in,
throttling by username and by address, deactivation, rehashing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from issuer_testing import FAST_ARGON2, PASSWORD
from sqlalchemy.orm import Session

from anchor.store import make_engine
from issuer import db
from issuer.accounts import passwords
from issuer.accounts import service as accounts
from issuer.accounts.models import User

NOW = 1_780_000_000.0
POLICY = accounts.ThrottlePolicy(max_failures=5, window=900)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    db.migrate(database_url)
    engine = make_engine(database_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def hasher() -> PasswordHasher:
    return passwords.make_hasher(FAST_ARGON2)


def new_user(session: Session, hasher: PasswordHasher, name: str = "clerk1", **kw) -> User:
    return accounts.create_user(
        session,
        hasher,
        username=name,
        display_name=kw.get("display_name", "窓口 花子"),
        role=kw.get("role", "clerk"),
        password=kw.get("password", PASSWORD),
        now=NOW,
    )


def sign_in(session: Session, hasher: PasswordHasher, **kw) -> User:
    args = {"username": "clerk1", "password": PASSWORD, "address": "192.0.2.1", "now": NOW}
    return accounts.authenticate(session, hasher, policy=POLICY, **(args | kw))


def test_hashes_are_argon2id_and_never_the_password(session, hasher):
    user = new_user(session, hasher)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.active and user.role == "clerk"


def test_sign_in_with_the_right_password(session, hasher):
    new_user(session, hasher)
    assert sign_in(session, hasher, username=" Clerk1 ").username == "clerk1"


@pytest.mark.parametrize("username", ["clerk1", "nobody"])
def test_a_wrong_password_or_unknown_user_fails_and_is_recorded(session, hasher, username):
    new_user(session, hasher)
    with pytest.raises(accounts.SignInFailed, match="wrong username or password"):
        sign_in(session, hasher, username=username, password="not-the-password")
    assert accounts.failures(session, username=username) == 1


def test_a_deactivated_user_cannot_sign_in(session, hasher):
    user = new_user(session, hasher)
    boss = new_user(session, hasher, "boss", role="supervisor")
    accounts.set_active(session, user.id, False, acting=boss, now=NOW)
    with pytest.raises(accounts.SignInFailed):
        sign_in(session, hasher)


def test_throttled_after_five_failures_even_with_the_right_password(session, hasher):
    new_user(session, hasher)
    for i in range(5):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, password="wrong-password", now=NOW + i)
    with pytest.raises(accounts.Throttled, match="too many failed sign-ins") as caught:
        sign_in(session, hasher, now=NOW + 10)
    assert 0 < caught.value.retry_after <= 900
    # The window slides: 15 minutes after the first failures, the clerk may try again.
    assert sign_in(session, hasher, now=NOW + 905).username == "clerk1"


def test_throttled_by_address_across_usernames(session, hasher):
    new_user(session, hasher)
    for i in range(5):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, username=f"guess{i}", password="wrong-password")
    with pytest.raises(accounts.Throttled):
        sign_in(session, hasher)
    # The same clerk from another counter is not affected by this address's guesses.
    assert sign_in(session, hasher, address="192.0.2.2").username == "clerk1"


def test_a_success_clears_the_username_failures(session, hasher):
    new_user(session, hasher)
    for _ in range(4):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, password="wrong-password", address="192.0.2.9")
    sign_in(session, hasher)
    assert accounts.failures(session, username="clerk1") == 0


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(session, hasher):
    old = new_user(session, PasswordHasher(time_cost=1, memory_cost=32, parallelism=1))
    before = old.password_hash
    user = sign_in(session, hasher)
    assert user.password_hash != before
    assert not hasher.check_needs_rehash(user.password_hash)
    assert sign_in(session, hasher).id == user.id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "A", "2-64 characters"),
        ("name", "bad name", "2-64 characters"),
        ("display_name", "   ", "display name"),
        ("role", "admin", "unknown role"),
        ("password", "short", "at least 10"),
    ],
)
def test_bad_accounts_are_refused(session, hasher, field, value, message):
    with pytest.raises(accounts.AccountError, match=message):
        new_user(session, hasher, **{field: value}) if field != "name" else new_user(
            session, hasher, value
        )
    assert accounts.list_users(session) == []


def test_usernames_are_unique(session, hasher):
    new_user(session, hasher)
    with pytest.raises(accounts.AccountError, match="taken"):
        new_user(session, hasher, "CLERK1")
    assert len(accounts.list_users(session)) == 1


def test_a_supervisor_cannot_deactivate_themselves(session, hasher):
    boss = new_user(session, hasher, "boss", role="supervisor")
    with pytest.raises(accounts.AccountError, match="your own account"):
        accounts.set_active(session, boss.id, False, acting=boss, now=NOW)


def test_reset_password(session, hasher):
    user = new_user(session, hasher)
    accounts.reset_password(session, hasher, user.id, "a-brand-new-password", now=NOW)
    with pytest.raises(accounts.SignInFailed):
        sign_in(session, hasher)
    assert sign_in(session, hasher, password="a-brand-new-password").id == user.id


def test_a_success_gives_the_address_its_attempt_back(session, hasher):
    new_user(session, hasher)
    for i in range(4):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, username=f"guess{i}", password="wrong-password")
    sign_in(session, hasher)
    assert accounts.failures(session, address="192.0.2.1") == 4  # the failures only
    with pytest.raises(accounts.SignInFailed):
        sign_in(session, hasher, username="guess9", password="wrong-password")
    with pytest.raises(accounts.Throttled):
        sign_in(session, hasher)


def test_a_throttled_attempt_counts_against_nothing(session, hasher):
    new_user(session, hasher)
    for i in range(5):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, username=f"guess{i}", password="wrong-password")
    for _ in range(3):
        with pytest.raises(accounts.Throttled):
            sign_in(session, hasher)
    assert accounts.failures(session, username="clerk1") == 0
    assert accounts.failures(session, address="192.0.2.1") == 5


def test_a_name_that_cannot_be_an_account_counts_against_the_address(session, hasher):
    for name in ("a\x00b", "x" * 80, "名前"):
        with pytest.raises(accounts.SignInFailed):
            sign_in(session, hasher, username=name, password="wrong-password")
    assert accounts.failures(session, address="192.0.2.1") == 3


def test_expired_counters_are_purged(session, hasher):
    new_user(session, hasher)
    with pytest.raises(accounts.SignInFailed):
        sign_in(session, hasher, username="guess1", password="wrong-password")
    later = NOW + 2 * POLICY.window + 1
    with pytest.raises(accounts.SignInFailed):
        sign_in(session, hasher, username="guess2", password="wrong-password", now=later)
    assert accounts.failures(session, username="guess1") == 0
    assert accounts.failures(session, address="192.0.2.1") == 1  # a fresh window
