"""The issuer app factory: configuration, the database, the city's key, the edges
(language, CSRF, error pages, security headers) and one blueprint per feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

import anchor.files as files
import edges.json as edges_json
import issuer.city as city
import issuer.config as config
import issuer.db as db
from issuer.accounts import passwords
from issuer.accounts import views as accounts_views
from issuer.audit import views as audit_views
from issuer.certificates import views as certificates_views
from issuer.certificates import wellknown_views
from issuer.contracts import key_views as contractor_key_views
from issuer.contracts import views as contracts_views
from issuer.keys import views as keys_views
from issuer.oid4vci import views as oid4vci_views
from issuer.web import auth, csrf, errors, headers, i18n, openapi, routing

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The issuer app, configured from the environment and the data directory (or from
    ``test_config``), its database migrated to the newest revision."""
    files.restrict_umask()  # the database, the secret key: for this user alone
    app = Flask("issuer", template_folder=str(TEMPLATES), static_folder="static")
    edges_json.install(app)
    app.config.from_mapping(config.defaults())
    if test_config:
        app.config.from_mapping(test_config)
    config.finish(app.config)

    db.init_app(app)
    city.init_app(app)
    app.extensions["shomei_hasher"] = passwords.make_hasher(app.config)
    i18n.init_app(app)  # before CSRF: its error page is in the chosen language
    csrf.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    routing.init_app(app)  # before the blueprints: their rules use the converters

    for blueprint in (
        auth.bp,
        certificates_views.home_bp,
        certificates_views.bp,
        accounts_views.bp,
        audit_views.bp,
        wellknown_views.bp,
        keys_views.bp,
        oid4vci_views.bp,
        contracts_views.bp,
        contracts_views.sign_bp,
        openapi.bp,
        contractor_key_views.bp,
        contractor_key_views.link_bp,
    ):
        app.register_blueprint(blueprint)
    return app
