"""argon2id password hashes (argon2-cffi).

The parameters come from the app's configuration; a stored hash made with other
parameters is replaced at the next successful sign-in, so raising the cost later needs
no migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended option (argon2-cffi's defaults): 64 MiB, t=3, p=4.
DEFAULTS = {"ARGON2_TIME_COST": 3, "ARGON2_MEMORY_COST": 65536, "ARGON2_PARALLELISM": 4}
MIN_LENGTH = 10
MAX_LENGTH = 256


def make_hasher(config: Mapping[str, Any] | None = None) -> PasswordHasher:
    """An argon2id hasher with the ``ARGON2_*`` parameters of ``config``."""
    values = {**DEFAULTS, **{k: v for k, v in (config or {}).items() if k in DEFAULTS}}
    return PasswordHasher(
        time_cost=int(values["ARGON2_TIME_COST"]),
        memory_cost=int(values["ARGON2_MEMORY_COST"]),
        parallelism=int(values["ARGON2_PARALLELISM"]),
        type=Type.ID,
    )


def check(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (False for a malformed hash)."""
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
