"""One language convention for the three apps: Japanese first, English on request
(``?lang=en``; the issuer remembers it in its session, the wallet in the phone's
storage, the verifier, which keeps nothing, in its links). Every text is written where
it is used as a pair, ``t(ja, en)`` — in Python, in the templates and in the wallet's
JavaScript alike — so no key table can fall out of step with its page.
"""

from __future__ import annotations

LANGUAGES = ("ja", "en")
DEFAULT = "ja"


def choose(requested: str | None, remembered: str | None = None) -> str:
    """The language of a request: ``requested`` when it names one (``en``, ``en-US``,
    ``ja``), else ``remembered`` when valid, else Japanese."""
    for value in (requested, remembered):
        code = (value or "").lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT


def pick(lang: str, ja: str, en: str) -> str:
    """``en`` for English, else ``ja``."""
    return en if lang == "en" else ja
