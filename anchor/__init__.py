"""Anchoring on Ethereum: Merkle batches, the AnchorRegistry contract, chain backends."""

#: The package's public face is its modules (none is imported here, so importing the
#: package costs nothing); a module whose name starts with ``_`` is private to it.
__all__ = [
    "accounts",
    "anchoring",
    "backends",
    "batcher",
    "chain",
    "cli",
    "config",
    "evidence",
    "lease",
    "localnode",
    "merkle",
    "nonces",
    "operations",
    "policy",
    "queue",
    "registry",
    "repair",
    "snapshot",
    "store",
]
