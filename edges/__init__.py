"""The edges the three web apps share (issuer, verifier, wallet): security headers,
the one JSON error document and the page language. Flask is imported here, the core
(``credentials``) never imports this package, and this package imports nothing from the
apps."""

from edges.errors import HTTP_ERRORS, coded, from_http, json_error
from edges.headers import HeaderPolicy, install_headers

__all__ = [
    "HTTP_ERRORS",
    "HeaderPolicy",
    "coded",
    "from_http",
    "install_headers",
    "json_error",
]
