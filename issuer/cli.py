"""``shomei issuer …``: migrate the database, create accounts, serve the app.

Flask, SQLAlchemy, argon2 and the apps are imported inside the commands, so the rest of the
``shomei`` command starts without them. Passwords come from a prompt or
``SHOMEI_USER_PASSWORD``, never from an argument.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

import edges.serving as serving
from anchor.config import data_dir, database_url
from edges.serving import ServeOptions

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Engine

#: Two processes of four threads: for a counter's few tablets on a 2-core machine
#: (argon2 sign-ins and PDF printing are the expensive requests).
WORKERS, THREADS = 2, 4

PASSWORD_ENV = "SHOMEI_USER_PASSWORD"


def _fail(message: str) -> NoReturn:
    click.echo(f"エラー: {message}", err=True)
    sys.exit(2)


def _database_url(directory: str | None) -> str:
    return database_url(data_dir(directory))


@click.group("issuer")
def issuer_group() -> None:
    """The issuer service for city clerks (database, accounts, web server)."""


@issuer_group.command()
@click.option("--data-dir", help="default: SHOMEI_DATA_DIR or ./data")
def migrate(data_dir: str | None) -> None:
    """Create or upgrade the database (SHOMEI_DATABASE_URL, else data/shomei.db)."""
    from sqlalchemy.exc import SQLAlchemyError

    import issuer.db as db

    url = _database_url(data_dir)
    try:
        db.migrate(url, storage_key=_storage_key(data_dir))
    except SQLAlchemyError as e:
        _fail(f"データベースを更新できません / cannot migrate the database: {e.args[0]}")
    except db.MigrationError as e:
        _fail(f"{e.ja} / {e.en}")
    click.echo("データベースは最新です / the database is up to date")


@issuer_group.command()
@click.option(
    "--issuer-id", required=True, help="the issuer id (iss URL), e.g. https://city.example.jp"
)
@click.option("--name", required=True, help="the city's name, e.g. 飯塚市")
@click.option("--municipality-code", required=True, help="全国地方公共団体コード (6 digits)")
@click.option("--data-dir", help="default: SHOMEI_DATA_DIR or ./data")
def init(issuer_id: str, name: str, municipality_code: str, data_dir: str | None) -> None:
    """Create the city's signing key (encrypted with SHOMEI_KEY_PASSPHRASE or a prompted
    passphrase) and the issuer settings in the data directory."""
    from issuer.keys import service as keys

    try:
        settings = keys.IssuerSettings(
            issuer_id=issuer_id, name=name, municipality_code=municipality_code
        )
    except ValueError as e:
        _fail(f"設定が不正です / invalid settings: {e}")
    passphrase = os.environ.get(keys.PASSPHRASE_ENV)
    if not passphrase:
        if not sys.stdin.isatty():
            _fail(f"パスフレーズが必要です（{keys.PASSPHRASE_ENV} を設定してください）")
        passphrase = str(
            click.prompt(
                "鍵のパスフレーズ / key passphrase", hide_input=True, confirmation_prompt=True
            )
        )
    try:
        city = keys.init(data_dir_of(data_dir), settings, passphrase=passphrase)
    except FileExistsError:
        _fail("発行者はすでに初期設定されています / the issuer is already initialised")
    click.echo(f"署名鍵を作成しました / signing key created: kid {city.key.kid}")


def data_dir_of(directory: str | None) -> Path:
    return data_dir(directory)


def _storage_key(directory: str | None) -> bytes | None:
    """The issuer's storage key (a migration may seal rows with it), None before init."""
    from issuer.keys import service as keys

    try:
        return keys.read_storage_key(data_dir_of(directory))
    except keys.NotInitialised as e:
        _fail(f"{e.ja} / {e.en}")


@issuer_group.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(["clerk", "supervisor"]), required=True)
@click.option("--display-name", required=True, help="the name shown in the app")
@click.option("--data-dir", help="default: SHOMEI_DATA_DIR or ./data")
def create_user(username: str, role: str, display_name: str, data_dir: str | None) -> None:
    """Create an account (the password is asked for, or read from SHOMEI_USER_PASSWORD)."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    import issuer.db as db
    from anchor.store import make_engine
    from issuer.accounts import passwords
    from issuer.accounts import service as accounts
    from issuer.audit import service as audit

    password = _password()
    engine = make_engine(_database_url(data_dir))
    try:
        db.migrate(engine, storage_key=_storage_key(data_dir))
        with Session(engine) as session:
            user = accounts.create_user(
                session,
                passwords.make_hasher(),
                username=username,
                display_name=display_name,
                role=role,
                password=password,
                now=time.time(),
            )
            audit.record_committed(
                session,
                actor=None,
                action=audit.USER_CREATED,
                target=f"user:{user.username}",
                details={"role": user.role, "via": "cli"},
                now=time.time(),
            )
            click.echo(f"作成しました / created: {user.username} ({user.role})")
    except accounts.AccountError as e:
        _fail(str(e))
    except SQLAlchemyError as e:
        _fail(f"データベースを使えません / database error: {e.args[0]}")
    except db.MigrationError as e:
        _fail(f"{e.ja} / {e.en}")
    finally:
        engine.dispose()


def _password() -> str:
    secret = os.environ.get(PASSWORD_ENV)
    if secret:
        return secret
    if not sys.stdin.isatty():
        _fail(f"パスワードが必要です（{PASSWORD_ENV} を設定してください） / password required")
    return str(click.prompt("パスワード / password", hide_input=True, confirmation_prompt=True))


@issuer_group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--anchor/--no-anchor",
    default=None,
    help="run the anchoring worker beside the server (default: when a chain is configured)",
)
@serving.serve_options(
    workers=WORKERS,
    threads=THREADS,
    workers_help="worker processes (the issuer keeps no state in a process's memory: "
    "any number may serve one database)",
)
@click.option("--data-dir", help="default: SHOMEI_DATA_DIR or ./data")
def serve(
    host: str, port: int, anchor: bool | None, options: ServeOptions, data_dir: str | None
) -> None:
    """Serve the issuer app under gunicorn and, when a chain is configured, anchor issued
    certificates in a process beside it (the city's account from SHOMEI_ANCHOR_ACCOUNT:
    a keystore name, or dev:N on the local chain). SIGTERM or Ctrl-C stops both
    gracefully."""
    import issuer.worker as worker
    from anchor.config import ConfigError
    from issuer.app import create_app
    from issuer.keys import chain_access

    try:
        app = create_app({"DATA_DIR": data_dir} if data_dir else None)
    except ValueError as e:
        _fail(f"設定が不正です / bad setting: {e}")
    anchoring = bool(anchor or (anchor is None and chain_access.is_configured(app.config)))
    if anchoring:
        try:
            worker.build(app.config, db_of(app))  # a bad setting stops here, not in the child
        except ConfigError as e:
            _fail(f"記録を開始できません / cannot start anchoring: {e}")
        click.echo(
            "ブロックチェーンへの記録: 別プロセスで実行（リーダーは1プロセスのみ）/ anchoring: "
            "in a process beside the server (one leader per database; the others follow)",
            err=True,
        )
    click.echo(f"職員用の画面 / issuer: http://{host}:{port}/ ({options.describe()})", err=True)
    serve_app(app, host=host, port=port, options=options, anchoring=anchoring)


def db_of(app: Flask) -> Engine:
    import issuer.db as db

    return db.engine_of(app)


def serve_app(
    app: Flask,
    *,
    host: str,
    port: int,
    options: ServeOptions,
    anchoring: bool,
) -> NoReturn:
    """Serve ``app`` under gunicorn, with the anchoring worker in a child process beside
    it when ``anchoring``, until SIGTERM or SIGINT; exits the process."""
    # No database connection crosses a fork: the workers and the anchoring process
    # each open their own.
    db_of(app).dispose()
    beside = functools.partial(_anchor, app) if anchoring else None
    serving.run(app, host=host, port=port, options=options, name="issuer", beside=beside)


def _anchor(app: Flask) -> int:
    """The anchoring process: its worker built here, so the lease names this process."""
    import issuer.worker as worker

    return worker.run_until_stopped(worker.build(app.config, db_of(app)), grace=5.0)
