"""The edges the three web apps share (issuer, verifier, wallet): security headers,
the one JSON error document, the page language, and the production server (``serving``:
gunicorn; ``processes``: the children beside it). Flask is imported by ``headers`` and
``errors``; ``i18n`` is pure. The core (``credentials``) never imports this package, and
this package imports nothing from the apps. ``busy`` (bounded concurrency) is pure too."""

#: The package's public face is its modules (none is imported here, so ``edges.i18n``
#: costs no web framework).
__all__ = ["busy", "errors", "headers", "i18n", "json", "processes", "serving"]
