"""``shomei audit verify``: check the audit log's hash chain and its anchored heads.

Exit status: 0 the log is intact, 1 tampering detected (the first broken entry and why
are printed), 2 the database cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from anchor.config import data_dir, database_url


@click.group("audit")
def audit_group() -> None:
    """The issuer's audit log."""


@audit_group.command()
@click.option("--data-dir", "directory", help="default: SHOMEI_DATA_DIR or ./data")
def verify(directory: str | None) -> None:
    """Verify the audit log (exit 0 intact, 1 tampered with, 2 unreadable)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    import issuer.audit.service as audit
    from anchor.store import make_engine

    url = database_url(data_dir(directory))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        _unreadable(f"no database at {parsed.database}")
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            report = audit.verify_chain(session)
    except SQLAlchemyError as e:
        _unreadable(str(e.args[0]) if e.args else type(e).__name__)
    finally:
        engine.dispose()
    ja, en = report.summary()
    click.echo(f"{ja} / {en}")
    for a in report.anchors:
        where = f"block {a.block}" if a.block is not None else a.state
        mark = "ok" if a.intact else "MISMATCH"
        click.echo(f"  head of entry {a.entry_id}: {a.head_hash[:16]}… {where} [{mark}]")
    sys.exit(0 if report.ok else 1)


def _unreadable(reason: str) -> None:
    click.echo(f"エラー: データベースを読めません / cannot read the database: {reason}", err=True)
    sys.exit(2)
