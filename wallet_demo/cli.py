"""``shomei wallet serve``: the resident's wallet (a PWA; the server holds nothing)."""

from __future__ import annotations

import click


@click.group("wallet")
def wallet_group() -> None:
    """The resident's phone wallet (a PWA that keeps certificates on the phone)."""


@wallet_group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5200, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the wallet (Flask's own server, threaded). Browsers allow its camera,
    keys and offline mode only on https or on localhost / 127.0.0.1."""
    from .app import create_app

    app = create_app()
    click.echo(f"証明書ウォレット / wallet: http://{host}:{port}/", err=True)
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
