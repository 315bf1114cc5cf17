"""The edges of the issuer's pages: sign-in, CSRF, language, error pages, headers.

Import the module you need (``issuer.web.auth``, ``issuer.web.i18n`` ...)."""

#: The package's public face is its modules (none is imported here, so importing the
#: package costs nothing); a module whose name starts with ``_`` is private to it.
__all__ = [
    "auth",
    "csrf",
    "errors",
    "headers",
    "helpers",
    "i18n",
]
