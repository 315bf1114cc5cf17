"""The standalone verifier: policy (pure) and web app."""

#: The package's public face is its modules (none is imported here, so importing the
#: package costs nothing); a module whose name starts with ``_`` is private to it.
__all__ = [
    "agreements",
    "api",
    "app",
    "cli",
    "config",
    "display",
    "documents",
    "http",
    "i18n",
    "inputs",
    "openapi",
    "policy",
    "ratelimit",
    "registry_trust",
    "relay",
    "requests",
    "results",
    "service",
    "snapshot_trust",
    "status",
    "web",
]
