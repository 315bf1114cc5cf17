"""The city's issuer (its signing key and settings) as an app-wide resource, the shape
of ``db.py``: ``init_app(app)`` attaches it, views reach it through ``city()``.

The key is opened on first use, not at start-up, so an app whose key is not created yet
still serves its pages; those needing the key answer 503 with the reason. It is opened
again when its files change on disk: a rotation made by one worker process (gunicorn
runs several) reaches the others at their next request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from credentials.errors import KeyFileError
from issuer.keys import service as keys
from issuer.web.helpers import abort_with

if TYPE_CHECKING:
    from flask import Flask

_EXTENSION = "shomei_city"


#: One file's identity: a replaced file (rotations write atomically) differs.
_Stamp = tuple[int, int, int] | None


class CityResource:
    """Opens the city's key from the data directory and keeps it while its files stay
    as they were (two ``stat`` calls a request tell)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._loaded: keys.City | None = None
        self._stamps: tuple[_Stamp, ...] = ()

    @property
    def passphrase(self) -> str | None:
        """The configured passphrase, else the environment's (read when needed)."""
        from flask import current_app

        configured: str | None = current_app.config.get("KEY_PASSPHRASE")
        return configured or os.environ.get(keys.PASSPHRASE_ENV)

    def get(self) -> keys.City:
        """The city. Raises ``keys.NotInitialised`` or ``KeyFileError``."""
        stamps = self._read_stamps()
        if self._loaded is None or stamps != self._stamps:
            self._loaded = keys.load(self.data_dir, self.passphrase)
            self._stamps = stamps  # read before loading: a change meanwhile loads again
        return self._loaded

    def _read_stamps(self) -> tuple[_Stamp, ...]:
        directory = keys.issuer_dir(self.data_dir)
        return tuple(_stamp(directory / name) for name in (keys.KEY_FILE, keys.HISTORY_FILE))

    def reload(self) -> None:
        """Forget the open key: the next request signs with the files as they are now."""
        self._loaded = None


def _stamp(path: Path) -> _Stamp:
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION] = CityResource(Path(app.config["DATA_DIR"]))


def resource() -> CityResource:
    from flask import current_app

    found: CityResource = current_app.extensions[_EXTENSION]
    return found


def city() -> keys.City:
    """This app's city; a 503 page when its key is not set up or cannot be opened."""
    try:
        return resource().get()
    except (keys.NotInitialised, KeyFileError) as e:
        abort_with(503, e.ja, e.en)
