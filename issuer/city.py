"""The city's issuer (its signing key and settings) as an app-wide resource, the shape
of ``db.py``: ``init_app(app)`` attaches it, views reach it through ``city()``.

The key is opened on first use, not at start-up, so an app whose key is not created yet
still serves its pages; those needing the key answer 503 with the reason.
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


class CityResource:
    """Opens the city's key from the data directory once and keeps it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._loaded: keys.City | None = None

    @property
    def passphrase(self) -> str | None:
        """The configured passphrase, else the environment's (read when needed)."""
        from flask import current_app

        configured: str | None = current_app.config.get("KEY_PASSPHRASE")
        return configured or os.environ.get(keys.PASSPHRASE_ENV)

    def get(self) -> keys.City:
        """The city. Raises ``keys.NotInitialised`` or ``KeyFileError``."""
        if self._loaded is None:
            self._loaded = keys.load(self.data_dir, self.passphrase)
        return self._loaded

    def reload(self) -> None:
        """Forget the open key: the next request signs with the files as they are now."""
        self._loaded = None


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
