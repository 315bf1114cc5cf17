"""The one error family of Shomei. Imports nothing from the package.

Every error carries a message for people: Japanese first, then English, as
``"日本語の説明 / English explanation"``. Library exceptions are converted into these
where they enter the package, so callers catch one family.
"""

from __future__ import annotations

from typing import Any


class ShomeiError(Exception):
    """Base class of every error Shomei raises on purpose."""

    def __init__(self, ja: str, en: str | None = None) -> None:
        self.ja = ja
        self.en = en if en is not None else ja
        super().__init__(f"{ja} / {en}" if en is not None else ja)

    @property
    def message(self) -> str:
        return str(self)


class CodedError(ShomeiError):
    """An error a service answers a client with: a short machine ``code``, the HTTP
    ``status``, the message in Japanese and English, and ``extra`` members for the
    answer (never secrets). Every app's JSON APIs answer with :meth:`to_json`."""

    def __init__(
        self,
        code: str,
        ja: str,
        en: str,
        *,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(ja, en)
        self.code = code
        self.status = status
        self.extra = dict(extra or {})

    def to_json(self) -> dict[str, Any]:
        """The one JSON error document: ``{"error": {"code", "message": {"ja", "en"}}}``."""
        return {"error": {"code": self.code, "message": {"ja": self.ja, "en": self.en}}}


class InvalidCredential(ShomeiError):
    """The input cannot be parsed as a credential, presentation or QR payload."""


class NotACredential(InvalidCredential):
    """The input is not a credential at all (random text, an unrelated file)."""


class VerificationError(ShomeiError):
    """The input parses but does not verify (signature, disclosures, time, holder...)."""


class ValidationError(ShomeiError):
    """Claims offered for issuance do not match the document type's schema.

    ``errors`` lists ``(field_path, ja, en)`` for every offending field so a form can
    show each message next to its field.
    """

    def __init__(self, errors: list[tuple[str, str, str]]) -> None:
        self.errors = errors
        ja = "; ".join(f"{p}: {j}" for p, j, _ in errors)
        en = "; ".join(f"{p}: {e}" for p, _, e in errors)
        super().__init__(f"入力内容に誤りがあります（{ja}）", f"invalid claims ({en})")


class KeyFileError(ShomeiError):
    """A key cannot be loaded (wrong passphrase, not a P-256 key, unencrypted)."""


class AnchorError(ShomeiError):
    """Anchoring or anchor verification failed."""
