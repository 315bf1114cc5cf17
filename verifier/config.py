"""Build a :class:`~verifier.policy.Verifier` from configuration.

A verifier needs only a chain (RPC URLs, chain id) and a registry address; a trust
file and a governance-signed snapshot can stand in or add to it (offline use).
"""

from __future__ import annotations

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
