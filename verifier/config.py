"""Build a :class:`~verifier.policy.Verifier` from configuration, and the verifier's
budgets for what strangers send it (:class:`Limits`).

A verifier needs only a chain (RPC URLs, chain id) and a registry address; a trust
file and a governance-signed snapshot can stand in or add to it (offline use).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from anchor.config import ChainConfig
from credentials.trust import CombinedTrust, TrustList, TrustSource

from .policy import Verifier
from .registry_trust import RegistryTrust
from .snapshot_trust import SnapshotTrust
from .status import HttpStatusFetcher


def build_verifier(
    *,
    chain: ChainConfig | None = None,
    trust_file: str | Path | None = None,
    snapshot_file: str | Path | None = None,
    governance: str | None = None,
    offline: bool = False,
) -> Verifier:
    """A verifier trusting the registry on ``chain`` (unless ``offline``), the issuers of
    ``trust_file`` and those of a snapshot signed by ``governance``.

    Offline, anchors and status lists are not fetched (their checks say so). Raises
    :class:`credentials.errors.ShomeiError` for an unreadable file.
    """
    sources: list[TrustSource] = []
    if trust_file is not None:
        sources.append(TrustList.load(trust_file))
    if snapshot_file is not None:
        sources.append(SnapshotTrust.load_file(snapshot_file, governance=governance))
    registry = None
    if chain is not None and chain.registry_address and not offline:
        registry = RegistryTrust(chain.chain(None))
        sources.append(registry)
    trust: TrustSource = (
        sources[0] if len(sources) == 1 else CombinedTrust(sources) if sources else TrustList({})
    )
    return Verifier(
        trust=trust,
        anchors=registry,
        status_fetcher=None if offline else HttpStatusFetcher(trust.resolve_key),
    )


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the verifier spends on one upload at most, checked before the work.

    Each field has an environment override, ``SHOMEI_VERIFIER_<FIELD>`` in upper case
    (``SHOMEI_VERIFIER_MAX_PIXELS=8000000``); see :meth:`from_env`.
    """

    #: Pixels of an uploaded image (from its header, before decoding) and of a PDF's
    #: first page as rendered: a larger page is rendered at a smaller scale.
    max_pixels: int = 20_000_000
    #: The longest side of a PDF render, in pixels.
    max_side: int = 12_000
    #: Pages of a PDF given as the credential file (its first page is rendered).
    pdf_max_pages: int = 200
    #: The rendering process's address space (MiB) and CPU time (s); the wall time is
    #: twice that. A PDF that needs more is refused (413), the verifier unharmed.
    render_memory_mib: int = 384
    render_seconds: float = 5.0
    #: Image decodes and PDF renders at once in this process, and how long a request
    #: waits for a turn before it is answered 503 with ``Retry-After``.
    decode_slots: int = 2
    decode_wait_seconds: float = 3.0
    #: A link-mode QR's relay: the whole fetch, and the largest sealed blob taken.
    link_timeout_seconds: float = 5.0
    link_max_blob: int = 256 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The defaults, with ``SHOMEI_VERIFIER_<FIELD>`` overrides. Raises
        ``ValueError`` for an override that is not a positive number."""
        values: dict[str, float | int] = {}
        for f in fields(cls):
            raw = environ.get(f"SHOMEI_VERIFIER_{f.name.upper()}")
            if raw is not None and raw.strip():
                kind = float if isinstance(f.default, float) else int
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"SHOMEI_VERIFIER_{f.name.upper()}: not a number") from None
        return cls(**values)  # type: ignore[arg-type]
