"""The issuer service for city clerks: ``create_app()`` builds the Flask app.

Flask is imported when an app is built, not when the package is, so the ``shomei``
command starts without it. The features are packages (``accounts``, ``audit``,
``certificates``, ``contracts``, ``keys``, ``oid4vci``), each with its models, services,
forms and views; ``web`` holds the edges every page shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The issuer app (see ``issuer.app.create_app``)."""
    from issuer.app import create_app as build

    return build(test_config)
