"""Shomei credential core: keys, SD-JWT VC, document types, status lists, QR codec.

Pure: imports neither Flask nor web3.
"""
