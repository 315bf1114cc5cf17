"""Shomei credential core: keys, SD-JWT VC, document types, status lists, QR codec.

Pure: imports neither Flask nor web3.
"""

#: The package's public face is its modules (none is imported here, so importing the
#: package costs nothing); a module whose name starts with ``_`` is private to it.
__all__ = [
    "agreement",
    "doctypes",
    "encoding",
    "errors",
    "jws",
    "keys",
    "qr",
    "qrimage",
    "sdjwt",
    "status_list",
    "trust",
]
