"""The issuer service for city clerks: ``create_app()`` builds the Flask app.

Flask is imported when an app is built, not when the package is, so the ``shomei``
command starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Response

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The issuer app, configured from the environment and the data directory (or from
    ``test_config``), its database migrated to the newest revision."""
    from flask import Flask

    from . import (
        audit_views,
        auth,
        config,
        contract_views,
        csrf,
        db,
        errors,
        home,
        i18n,
        issue_views,
        key_views,
        oid4vci_views,
        passwords,
        print_views,
        users,
        wellknown_views,
    )

    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder="static")
    app.config.from_mapping(config.defaults())
    if test_config:
        app.config.from_mapping(test_config)
    config.finish(app.config)

    db.init_app(app)
    app.extensions["shomei_hasher"] = passwords.make_hasher(app.config)
    i18n.init_app(app)  # before CSRF: its error page is in the chosen language
    csrf.init_app(app)
    errors.init_app(app)
    app.after_request(_security_headers)

    for module in (auth, home, users, audit_views, issue_views, wellknown_views, key_views):
        app.register_blueprint(module.bp)
    app.register_blueprint(print_views.bp)
    app.register_blueprint(oid4vci_views.bp)
    app.register_blueprint(contract_views.bp)
    app.register_blueprint(contract_views.sign_bp)
    return app


def _security_headers(response: Response) -> Response:
    from flask import g

    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if g.get("user") is not None:
        # Pages of a signed-in clerk may show personal data: never cached.
        headers["Cache-Control"] = "no-store"
    return response
