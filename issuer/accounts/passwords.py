"""argon2id password hashes (argon2-cffi), a few at a time.

The parameters come from the app's configuration; a stored hash made with other
parameters is replaced at the next successful sign-in, so raising the cost later needs
no migration. Each hash or check holds ``ARGON2_MEMORY_COST`` KiB (64 MiB by default)
for about a tenth of a second: the hasher lets at most ``PASSWORD_HASH_CONCURRENCY`` run
at once and refuses (``Busy``) a request that waited ``PASSWORD_HASH_WAIT_SECONDS`` for
a turn, so a flood of sign-ins queues briefly, then gets 503, never all the memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from credentials.errors import ShomeiError

# RFC 9106's second recommended option (argon2-cffi's defaults): 64 MiB, t=3, p=4.
DEFAULTS = {"ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST": 65536, "ARGON2_PARALLELISM": 4}
# Hashes at once per process (x 64 MiB), and how long a request waits for a turn.
GATE_DEFAULTS = {"PASSWORD_HASH_CONCURRENCY": 2, "PASSWORD_HASH_WAIT_SECONDS": 2.0}
#: Seconds a refused request is told to wait (``Retry-After``).
BUSY_RETRY_AFTER = 5
MIN_LENGTH = 10
MAX_LENGTH = 256


class Busy(ShomeiError):
    """Every password-hashing turn stayed taken for the whole wait."""

    def __init__(self, retry_after: int = BUSY_RETRY_AFTER) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"ただいま混み合っています。{retry_after}秒ほど待ってからもう一度お試しください",
            f"the server is busy: try again in {retry_after} seconds",
        )


class GatedHasher(PasswordHasher):
    """A ``PasswordHasher`` whose ``hash`` and ``verify`` take one of ``concurrency``
    turns first, waiting at most ``wait`` seconds; raises Busy when none came free."""

    def __init__(self, *, concurrency: int, wait: float, **parameters: Any) -> None:
        if concurrency < 1 or wait < 0:
            raise ValueError("a password hasher needs concurrency >= 1 and wait >= 0")
        super().__init__(**parameters)
        self.concurrency = concurrency
        self.wait = wait
        self._turns = threading.BoundedSemaphore(concurrency)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold one of the hasher's turns. Raises Busy after ``wait`` seconds."""
        if not self._turns.acquire(timeout=self.wait):
            raise Busy()
        try:
            yield
        finally:
            self._turns.release()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self.turn():
            return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self.turn():
            return super().verify(hash, password)


def make_hasher(config: Mapping[str, Any] | None = None) -> GatedHasher:
    """An argon2id hasher with the ``ARGON2_*`` and ``PASSWORD_HASH_*`` settings of
    ``config``. Raises ValueError for a concurrency below 1 or a negative wait."""
    known = DEFAULTS.keys() | GATE_DEFAULTS.keys()
    values = {**DEFAULTS, **GATE_DEFAULTS}
    values.update({k: v for k, v in (config or {}).items() if k in known})
    return GatedHasher(
        concurrency=int(values["PASSWORD_HASH_CONCURRENCY"]),
        wait=float(values["PASSWORD_HASH_WAIT_SECONDS"]),
        time_cost=int(values["ARGON2_TIME_COST"]),
        memory_cost=int(values["ARGON2_MEMORY_COST"]),
        parallelism=int(values["ARGON2_PARALLELISM"]),
        type=Type.ID,
    )


def check(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (False for a malformed hash).
    Raises Busy when the hasher had no turn free."""
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
