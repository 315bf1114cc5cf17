"""``shomei wallet serve``: the resident's wallet (a PWA; the server holds nothing)."""

from __future__ import annotations

import click

import edges.serving as serving
from edges.serving import ServeOptions

#: One process: the relay keeps link-mode blobs in its memory until they are fetched,
#: so the fetch must reach the process that took the upload.
WORKERS, THREADS = 1, 4


@click.group("wallet")
def wallet_group() -> None:
    """The resident's phone wallet (a PWA that keeps certificates on the phone)."""


@wallet_group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5200, show_default=True)
@serving.serve_options(
    workers=WORKERS,
    threads=THREADS,
    workers_help="worker processes; keep 1: the relay keeps link-mode uploads in memory, "
    "and a blob put into one process cannot be fetched from another",
)
def serve(host: str, port: int, options: ServeOptions) -> None:
    """Serve the wallet under gunicorn. Browsers allow its camera, keys and offline
    mode only on https or on localhost / 127.0.0.1. SIGTERM or Ctrl-C stops it
    gracefully."""
    from .app import create_app

    app = create_app()
    click.echo(f"証明書ウォレット / wallet: http://{host}:{port}/ ({options.describe()})", err=True)
    serving.run(app, host=host, port=port, options=options, name="wallet")
