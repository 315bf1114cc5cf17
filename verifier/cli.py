"""``shomei verifier serve``: the standalone verifier service."""

from __future__ import annotations

import click


@click.group("verifier")
def verifier_group() -> None:
    """The verifier service for companies (scan page and /api/verify)."""


@verifier_group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5100, show_default=True)
@click.option("--data-dir", help="where chain.json is (default: SHOMEI_DATA_DIR or ./data)")
@click.option("--trust", "trust_path", help="TRUST.json: issuers trusted besides the registry")
def serve(host: str, port: int, data_dir: str | None, trust_path: str | None) -> None:
    """Serve the verifier (Flask's own server, threaded). Trust comes from the registry
    on the configured chain, as for `shomei verify`, and from --trust."""
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
    click.echo(f"証明書の確認 / verifier: http://{host}:{port}/", err=True)
    app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
