"""The issuer app's configuration: defaults, the environment, the data directory.

``SECRET_KEY`` (signs the session cookie) comes from ``SHOMEI_SECRET_KEY`` or the file
``secret_key`` in the data directory, generated once with mode 0600. The database is
``SHOMEI_DATABASE_URL`` or SQLite ``shomei.db`` in the data directory. Cookies are
marked Secure when the app is served over TLS (``SHOMEI_TLS=1`` or
``PREFERRED_URL_SCHEME=https``).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from anchor import files
from anchor.config import data_dir, database_url

SECRET_KEY_ENV = "SHOMEI_SECRET_KEY"
TLS_ENV = "SHOMEI_TLS"
SECRET_KEY_FILE = "secret_key"


def defaults() -> dict[str, Any]:
    """Settings that do not depend on the data directory."""
    return {
        "MAX_CONTENT_LENGTH": 1024 * 1024,  # forms are small; 413 beyond 1 MiB
        "SESSION_COOKIE_NAME": "shomei_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # A counter shift: a forgotten tablet does not stay signed in overnight.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        "TLS": os.environ.get(TLS_ENV) == "1",
        "AUTO_MIGRATE": True,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_WINDOW_SECONDS": 15 * 60,
        # Anchoring: a batch at most this long after its first leaf; the leader's lease.
        "ANCHOR_INTERVAL_SECONDS": env_seconds("SHOMEI_ANCHOR_INTERVAL_SECONDS", 10.0),
        "ANCHOR_LEASE_SECONDS": env_seconds("SHOMEI_ANCHOR_LEASE_SECONDS", 5.0),
    }


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment. Raises ValueError (with the
    variable's name) for anything else."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise ValueError(f"{name} must be a number of seconds (0 < s < 86400), not {text!r}")
    return value


def finish(config: dict[str, Any]) -> None:
    """Fill in what depends on other settings: data directory, database, secret key,
    Secure cookies. Values already set (e.g. by a test) are kept."""
    directory = data_dir(config.get("DATA_DIR"))
    config["DATA_DIR"] = directory
    config.setdefault("DATABASE_URL", None)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = database_url(directory)
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = os.environ.get(SECRET_KEY_ENV) or load_secret_key(directory)
    if config.get("TLS") or config.get("PREFERRED_URL_SCHEME") == "https":
        config["SESSION_COOKIE_SECURE"] = True


def load_secret_key(directory: Path) -> str:
    """The secret key stored in ``directory/secret_key``, created (mode 0600) on first
    use. Two processes starting at once end up with the same key."""
    path = directory / SECRET_KEY_FILE
    files.make_private_dir(directory)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        raise RuntimeError(f"{path} is empty: delete it to generate a new key") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        key = secrets.token_hex(32)
        f.write(key + "\n")
    return key
