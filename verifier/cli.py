"""``shomei verifier serve``: the standalone verifier service."""

from __future__ import annotations

import click

import edges.serving as serving
from edges.serving import ServeOptions

#: Two processes (verification is CPU-bound) with threads: cross-device requests
#: (``/request``) live in ``requests.db``, shared by every process.
WORKERS, THREADS = 2, 4


@click.group("verifier")
def verifier_group() -> None:
    """The verifier service for companies (scan page and /api/verify)."""


@verifier_group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5100, show_default=True)
@click.option("--data-dir", help="where chain.json is (default: SHOMEI_DATA_DIR or ./data)")
@click.option("--trust", "trust_path", help="TRUST.json: issuers trusted besides the registry")
@serving.serve_options(
    workers=WORKERS,
    threads=THREADS,
    workers_help="worker processes; they share cross-device requests (/request) through "
    "requests.db in the data directory; the rate limit counts per process",
)
def serve(
    host: str, port: int, data_dir: str | None, trust_path: str | None, options: ServeOptions
) -> None:
    """Serve the verifier under gunicorn. Trust comes from the registry on the
    configured chain, as for `shomei verify`, and from --trust. SIGTERM or Ctrl-C stops
    it gracefully."""
    from credentials.errors import ShomeiError

    from .app import create_app

    config: dict[str, object] = {}
    if data_dir:
        config["DATA_DIR"] = data_dir
    if trust_path:
        config["TRUST_FILE"] = trust_path
    try:
        app = create_app(config or None)
    except ShomeiError as e:
        click.echo(f"エラー: {e}", err=True)
        raise SystemExit(2) from None
    click.echo(f"証明書の確認 / verifier: http://{host}:{port}/ ({options.describe()})", err=True)
    serving.run(app, host=host, port=port, options=options, name="verifier")
