"""Files only their owner may read: the data directory 0700, everything in it 0600.

The data directory holds password hashes and the audit log (``shomei.db``), RPC URLs
that may carry API keys (``chain.json``), encrypted keys and the cookie-signing key.
Every ``shomei`` process calls :func:`restrict_umask` at start, so whatever it creates
(SQLite files and their ``-wal``/``-shm``, the local node's state, command outputs) is
private; :func:`make_private_dir` creates the directory 0700; and :func:`tighten`
repairs a directory made by an older release or another tool (group or others could
read it), with a one-line notice: the directory and what Shomei keeps in it, never
anything else a mistaken ``SHOMEI_DATA_DIR`` (a home, ``/srv``) may hold.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

#: Nothing a ``shomei`` process creates is readable or writable by group or others.
UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
#: What Shomei keeps in a data directory: only these are tightened (folders with all
#: they hold), so a data directory set to a shared place changes nothing else in it.
KNOWN_FILES = frozenset(
    {
        "chain.json",
        "chain.json.tmp",
        "secret_key",
        "shomei.db",
        "shomei.db-wal",
        "shomei.db-shm",
        "shomei.db-journal",
    }
)
KNOWN_FOLDERS = frozenset({"issuer", "anvil", "accounts", "demo"})

log = logging.getLogger("shomei.files")


def restrict_umask() -> None:
    """Set the process's umask to 0o077 (files 0600, directories 0700 by default)."""
    os.umask(UMASK)


def make_private_dir(directory: Path) -> Path:
    """Create ``directory`` (and each missing parent) with mode 0700 whatever the umask,
    or tighten it when it exists; return it. Raises OSError when it cannot be created."""
    for level in [*reversed(directory.parents), directory]:
        if not level.exists():
            level.mkdir(mode=DIR_MODE, exist_ok=True)
            os.chmod(level, DIR_MODE)  # mkdir's mode passes through the umask
    _report(directory, ([directory] if _restrict(directory) else []) + _tighten(directory))
    return directory


def tighten(directory: Path) -> list[Path]:
    """Remove every permission of group and others from a data directory and from what
    Shomei keeps in it (:data:`KNOWN_FILES`, :data:`KNOWN_FOLDERS` with all they hold;
    symbolic links are neither followed nor changed); return what was changed, and log
    one line when anything was. A directory that holds nothing of Shomei's (missing,
    empty, or not a data directory) is left alone, and so is what this user may not
    change (another owner's file)."""
    changed = _tighten(directory)
    _report(directory, changed)
    return changed


def _tighten(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    ours = [
        directory / name
        for name in sorted(KNOWN_FILES | KNOWN_FOLDERS)
        if (directory / name).exists() or (directory / name).is_symlink()
    ]
    if not ours:
        return []
    changed = [directory] if _restrict(directory) else []
    for path in ours:
        if _restrict(path):
            changed.append(path)
        if path.name in KNOWN_FOLDERS and not path.is_symlink():
            for root, dirs, names in os.walk(path, followlinks=False):
                changed += [Path(root) / n for n in [*dirs, *names] if _restrict(Path(root) / n)]
    return changed


def _report(directory: Path, changed: list[Path]) -> None:
    if changed:
        log.warning(
            "データディレクトリ %s を所有者だけが読めるようにしました（%d 件）/ "
            "tightened %s: its owner alone may read it now (%d entries were open to others)",
            directory,
            len(changed),
            directory,
            len(changed),
        )


def _restrict(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(mode) & 0o700)
    except OSError:  # gone meanwhile, or not ours to change
        return False
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically with mode 0600 whatever the umask (a reader never sees
    half a file). Raises OSError."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)
