"""Rotation of the city's signing key: the new key on chain first, then locally, then
the old key retired on chain. No Flask here.

The order makes every failure safe:

1. the new key is registered with the city's own account (``addKey``, valid from the
   block that mines it). When that fails — node down, the city not (or no longer) a
   registered issuer, a revert — nothing has changed locally;
2. the local key files switch to the new key (:func:`issuer.keys.switch_key`, atomic);
   from then on every credential is signed with the new key;
3. the old key gets a ``revokedAt`` on chain.

Why ``revokedAt`` lies in the future: a verifier accepts a credential whose batch was
anchored *before* its key's ``revokedAt`` (DESIGN §3). Credentials signed with the old
key just before the switch may still wait in the anchoring queue (a batch closes within
``ANCHOR_INTERVAL_SECONDS``, a failing send retries with a backoff of up to a minute,
and the node may be down for hours). ``revokedAt = retired_at + grace`` keeps them
valid when anchored within the grace period (``KEY_RETIRE_GRACE_SECONDS``, default one
day). The contract lets the issuer's own account set any ``revokedAt``, future or past,
and only ever move it earlier later — so when the old key turns out to be compromised,
governance or the city can still revoke it at once. A key's ``validFrom`` in contrast
may not be in the past for the issuer's own account, hence "from the mining block"
rather than the local clock, which may trail the chain's.

When step 3 fails the rotation has still happened: :class:`RotationResult` carries the
error and :func:`retire_on_chain` can be run again later with the same ``revokedAt``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import issuer.keys.service as keys
from credentials.encoding import b64d
from credentials.errors import ShomeiError
from credentials.keys import SigningKey

if TYPE_CHECKING:
    from anchor.backends import Web3Chain
    from anchor.chain import IssuerRecord, KeyRecord

GRACE_ENV = "SHOMEI_KEY_RETIRE_GRACE_SECONDS"
DEFAULT_GRACE = 86_400  # one day: far beyond a batch interval and the send backoff
LOCK_FILE = ".key-rotation.lock"


class RotationError(ShomeiError):
    """The rotation could not start or register the new key; nothing changed locally."""


@dataclass(frozen=True, kw_only=True)
class RotationResult:
    old_kid: str
    new_kid: str
    add_tx: str  # the transaction that registered the new key
    revoked_at: int  # the old key's revokedAt (seconds since the epoch)
    revoke_tx: str | None  # None when no revocation was sent (see below)
    revoke_error: tuple[str, str] | None = None  # (ja, en) when step 3 failed
    old_key_registered: bool = True  # False: the old key was never on chain


def grace_seconds(config: Mapping[str, Any]) -> int:
    """``KEY_RETIRE_GRACE_SECONDS`` or ``SHOMEI_KEY_RETIRE_GRACE_SECONDS`` (default one
    day). Raises RotationError for a value that is not a positive whole number."""
    raw = config.get("KEY_RETIRE_GRACE_SECONDS") or os.environ.get(GRACE_ENV) or DEFAULT_GRACE
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise RotationError(
            f"{GRACE_ENV} は正の整数（秒）で指定してください",
            f"{GRACE_ENV} must be a positive number of seconds",
        )
    return value


def rotate(
    data_dir: Path,
    *,
    passphrase: str | None,
    chain: Web3Chain,
    now: float,
    grace: int = DEFAULT_GRACE,
    new_key: SigningKey | None = None,
) -> RotationResult:
    """Rotate the city's signing key (see the module docstring); ``chain`` signs with
    the city's account. Returns what was done. Raises NotInitialised or KeyFileError
    (missing or wrong passphrase), RotationError (another rotation running, the city
    not an active issuer of this account, the new key refused or the chain down, the
    new key not saved) — in all these cases the old key stays the current one."""
    if chain.account is None:
        raise ValueError("the chain needs the city's account to sign")
    with _rotation_lock(data_dir, passphrase):
        city = keys.load(data_dir, passphrase)
        record = _issuer_record(chain, city.issuer_id)
        new_key = new_key or SigningKey.generate()
        # (1) the new key on chain, valid from its block
        from anchor.registry import add_key

        try:
            added = add_key(chain, new_key.jwk)
        except ShomeiError as e:
            raise RotationError(
                f"新しい署名鍵を登録簿に登録できませんでした: {e.ja}",
                f"the new signing key was not registered on chain: {e.en}",
            ) from None
        # (2) the local switch: from here on the new key signs
        try:
            keys.switch_key(data_dir, city, new_key, passphrase=str(passphrase), now=now)
        except OSError as e:
            # The new key is on chain but unused (its private part is gone): harmless.
            raise RotationError(
                "新しい署名鍵を保存できませんでした。これまでの鍵で発行を続けます",
                f"the new key could not be saved ({e.strerror}); the old key stays in use",
            ) from None
        # (3) the old key retired after the grace period (unless revoked earlier already)
        result = RotationResult(
            old_kid=city.key.kid,
            new_kid=new_key.kid,
            add_tx=added.tx_hash,
            revoked_at=int(now) + grace,
            revoke_tx=None,
        )
        old = on_chain_key(record, city.key.kid)
        if old is None:
            return replace(result, old_key_registered=False)
        if old.revoked_at is not None and old.revoked_at <= result.revoked_at:
            return replace(result, revoked_at=old.revoked_at)
        try:
            tx = retire_on_chain(chain, city.key.kid, revoked_at=result.revoked_at)
        except RotationError as e:
            return replace(result, revoke_error=(e.ja, e.en))
        return replace(result, revoke_tx=tx)


def retire_on_chain(chain: Web3Chain, kid: str, *, revoked_at: int) -> str:
    """Give the city's key ``kid`` the ``revokedAt`` ``revoked_at``; returns the
    transaction hash. Raises RotationError when the chain refuses or is down."""
    from anchor.registry import revoke_key

    try:
        return revoke_key(chain, b64d(kid), revoked_at=revoked_at).tx_hash
    except ShomeiError as e:
        raise RotationError(
            f"旧署名鍵の取り消しを登録簿に記録できませんでした: {e.ja}",
            f"the old signing key was not revoked on chain: {e.en}",
        ) from None


def on_chain_key(record: IssuerRecord | None, kid: str) -> KeyRecord | None:
    """The registry's record of the key ``kid`` in ``record``, or None."""
    if record is None:
        return None
    thumbprint = b64d(kid)
    return next((k for k in record.keys if k.thumbprint == thumbprint), None)


def _issuer_record(chain: Web3Chain, issuer_id: str) -> IssuerRecord:
    """The city's registry entry, checked to belong to the signing account and to be
    active. Raises RotationError."""
    try:
        record = chain.issuer_by_id(issuer_id)
    except ShomeiError as e:
        raise RotationError(
            f"登録簿を読み込めません: {e.ja}", f"cannot read the registry: {e.en}"
        ) from None
    if record is None:
        raise RotationError(
            f"{issuer_id} は登録簿に発行者として登録されていません"
            "（管理者に登録を依頼してください）",
            f"{issuer_id} is not a registered issuer (ask governance to register it)",
        )
    account = chain.account.address if chain.account else ""
    if record.address.lower() != account.lower():
        raise RotationError(
            "記録用アカウントが登録簿の市のアドレスと一致しません",
            "the anchoring account is not the city's address in the registry",
        )
    if not record.active:
        raise RotationError(
            "市は登録簿で無効にされています", "the city is deactivated in the registry"
        )
    return record


@contextmanager
def _rotation_lock(data_dir: Path, passphrase: str | None) -> Iterator[None]:
    """One rotation at a time (across processes). Raises RotationError when busy,
    NotInitialised when there is no issuer directory."""
    try:
        fd = os.open(keys.issuer_dir(data_dir) / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    except FileNotFoundError:
        keys.load(data_dir, passphrase)  # raises NotInitialised
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationError(
                "別の署名鍵の更新が実行中です", "another key rotation is in progress"
            ) from None
        yield
    finally:
        os.close(fd)
