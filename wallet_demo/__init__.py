"""The resident's phone wallet (PWA)."""

#: The package's public face is its modules (none is imported here, so importing the
#: package costs nothing); a module whose name starts with ``_`` is private to it.
__all__ = [
    "app",
    "cli",
    "encode",
    "icons",
    "relay",
]
