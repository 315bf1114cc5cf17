"""The production server: a Flask app under gunicorn, started by the ``shomei`` command.

``shomei issuer serve``, ``verifier serve``, ``wallet serve`` and ``shomei demo`` build
their app in this process first (a bad setting is reported before anything listens),
then :func:`run` makes this process gunicorn's master: it binds the address, forks the
workers (gthread: a pool of threads in each) and restarts one that dies or hangs.

- **Timeouts.** A connection whose read or write stalls for ``timeout`` seconds is
  dropped, and a worker silent for that long is restarted; idle keep-alive connections
  close after ``keepalive`` seconds.
- **Graceful stop.** SIGTERM and SIGINT (Ctrl-C) alike: stop accepting, finish the
  requests in flight within ``grace`` seconds, then exit. A second SIGINT stops at once.
- **Logs.** No access log unless asked for, and then without query strings or anything
  past a path's first segment (tokens travel in both: ``/contract-sign/<token>``), no
  headers, no cookies.
- **Files.** umask 0o077 in the master and the workers; no control socket.
"""

from __future__ import annotations

import errno
import functools
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import RequestTimeout

import edges.processes as processes

#: Seconds a read or a write may stall, and a worker may stay silent.
DEFAULT_TIMEOUT = 30
#: Seconds to finish the requests in flight after SIGTERM or SIGINT.
DEFAULT_GRACE = 10
#: Seconds an idle keep-alive connection stays open.
DEFAULT_KEEPALIVE = 5
#: The access log's line: client, time, method, path (first segment), status, size, ms.
ACCESS_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How many processes and threads serve, and for how long they wait."""

    workers: int
    threads: int
    timeout: int = DEFAULT_TIMEOUT
    grace: int = DEFAULT_GRACE
    keepalive: int = DEFAULT_KEEPALIVE
    access_log: bool = False

    def describe(self) -> str:
        """For the start message: ``gunicorn, 2 workers × 4 threads``."""
        workers = f"{self.workers} worker" + ("s" if self.workers != 1 else "")
        return f"gunicorn, {workers} × {self.threads} threads"


def serve_options(*, workers: int, threads: int, workers_help: str) -> Callable[[F], F]:
    """Add ``--workers``, ``--threads``, ``--timeout``, ``--grace`` and ``--access-log``
    to a click command, handed to it as one ``options: ServeOptions`` argument."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(
            *args: Any,
            workers: int,
            threads: int,
            timeout: int,
            grace: int,
            access_log: bool,
            **kwargs: Any,
        ) -> Any:
            options = ServeOptions(
                workers=workers,
                threads=threads,
                timeout=timeout,
                grace=grace,
                access_log=access_log,
            )
            return command(*args, options=options, **kwargs)

        decorators = [
            click.option(
                "--workers",
                type=click.IntRange(1, 64),
                default=workers,
                show_default=True,
                help=workers_help,
            ),
            click.option(
                "--threads",
                type=click.IntRange(1, 256),
                default=threads,
                show_default=True,
                help="threads per worker process (requests served at once by each)",
            ),
            click.option(
                "--timeout",
                type=click.IntRange(1, 3600),
                default=DEFAULT_TIMEOUT,
                show_default=True,
                help="seconds a connection may stall on a read or write (then it is "
                "dropped) and a worker may stay silent (then it is restarted)",
            ),
            click.option(
                "--grace",
                type=click.IntRange(0, 3600),
                default=DEFAULT_GRACE,
                show_default=True,
                help="on SIGTERM or Ctrl-C: seconds to finish the requests in flight",
            ),
            click.option(
                "--access-log/--no-access-log",
                default=False,
                show_default=True,
                help="one line per request on standard output (method, status, time and "
                "the path's first segment only: never a query string or token)",
            ),
        ]
        decorated: Any = wrapper
        for option in reversed(decorators):
            decorated = option(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


def run(
    app: Any,
    *,
    host: str,
    port: int,
    options: ServeOptions,
    name: str,
    beside: Callable[[], int | None] | None = None,
) -> NoReturn:
    """Serve the WSGI ``app`` on ``host:port`` until SIGTERM or SIGINT; this process
    becomes gunicorn's master and exits (SystemExit) when the server stops: status 0
    after a graceful stop, 1 when it could not bind.

    ``beside`` runs in a child process of its own once the address is bound (not in
    the workers), is started again should it end, and gets SIGTERM after the workers
    have stopped (SIGKILL ``grace`` + 5 seconds later)."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    _Server(
        app,
        beside,
        {
            "bind": [bind],
            "workers": options.workers,
            "threads": options.threads,
            "worker_class": _Worker,
            "timeout": options.timeout,
            "graceful_timeout": options.grace,
            "keepalive": options.keepalive,
            "accesslog": "-" if options.access_log else None,
            "access_log_format": ACCESS_FORMAT,
            "logger_class": _Logger,
            "errorlog": "-",
            "loglevel": "warning",
            "umask": 0o077,
            "control_socket_disable": True,
            "proc_name": f"shomei-{name}",
        },
    ).run()
    raise SystemExit(0)  # the arbiter always exits; this is for the type checker


class _Server(BaseApplication):  # type: ignore[misc]
    """gunicorn with its settings given here, not read from a command line or a file."""

    def __init__(
        self, app: Any, beside: Callable[[], int | None] | None, settings: dict[str, Any]
    ) -> None:
        self._app = app
        self.beside = beside
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return _timeouts_as_408(self._app)

    def run(self) -> None:
        _Arbiter(self).run()


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, with a graceful Ctrl-C and a process beside the workers."""

    companion: int | None = None

    def start(self) -> None:
        super().start()  # binds the address (or exits)
        self._start_companion()

    def _start_companion(self) -> None:
        beside: Callable[[], int | None] | None = self.app.beside
        if beside is None:
            return
        listeners = list(self.LISTENERS)

        def companion() -> int | None:
            for listener in listeners:  # the port is the workers'
                listener.close()
            return beside()

        self.companion = processes.fork(companion)

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.companion is not None and processes.exited(self.companion):
            self.log.error(
                "process beside the server ended (pid %s): starting it again", self.companion
            )
            self._start_companion()

    def stop(self, graceful: bool = True) -> None:
        super().stop(graceful)
        if self.companion is not None:
            pid, self.companion = self.companion, None
            processes.stop([pid], grace=self.cfg.graceful_timeout + 5 if graceful else 1)

    def handle_int(self) -> None:
        """SIGINT (Ctrl-C) stops gracefully, as SIGTERM does (gunicorn's own stops at
        once); a second SIGINT during the stop still stops at once."""
        raise StopIteration


class _TimedConn(TConn):  # type: ignore[misc]
    """A client connection whose every read and write gives up after ``timeout``."""

    def init(self) -> None:
        super().init()  # (re)sets blocking mode, which clears any timeout
        self.sock.settimeout(self.cfg.timeout)


class _Worker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker: SIGINT is a graceful stop, connections time out."""

    def init_signals(self) -> None:
        super().init_signals()
        signal.signal(signal.SIGINT, self.handle_exit)
        signal.siginterrupt(signal.SIGINT, False)

    def accept(self, listener: Any) -> None:
        # ThreadWorker.accept with a _TimedConn in place of its TConn.
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            conn = _TimedConn(self.cfg, client_sock, client_addr, listener.getsockname())
            self.enqueue_req(conn)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise


def _timeouts_as_408(app: Any) -> Any:
    """``app`` whose request body, when the client stalls past the timeout, raises
    Werkzeug's 408 (each app's error page or JSON error) instead of an OSError (a 500)."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input"] = _TimedInput(environ["wsgi.input"])
        return app(environ, start_response)

    return wsgi


class _TimedInput:
    """A WSGI input stream whose socket timeout becomes :class:`RequestTimeout`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._call(self._stream.read, size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        line: bytes = self._call(self._stream.readline, size)
        return line

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines: list[bytes] = self._call(self._stream.readlines, hint)
        return lines

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    @staticmethod
    def _call(method: Any, arg: int | None) -> Any:
        try:
            return method(arg) if arg is not None else method()
        except TimeoutError:
            raise RequestTimeout() from None


class _Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with only safe fields for the access log, whatever its format,
    and one quiet line (not a stack trace) for a connection dropped at its timeout."""

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(sys.exc_info()[1], TimeoutError):
            self.info("connection dropped: a read or write stalled past the timeout")
            return
        super().exception(msg, *args, **kwargs)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        every = super().atoms(resp, req, environ, request_time)
        safe = {k: every[k] for k in ("h", "t", "m", "s", "b", "B", "M", "L", "T", "D", "p")}
        safe["U"] = first_segment(str(environ.get("PATH_INFO") or "/"))
        return safe


def first_segment(path: str) -> str:
    """``/contract-sign/<token>`` → ``/contract-sign/…``: the rest may be a secret."""
    head, sep, _rest = path.lstrip("/").partition("/")
    return "/" + head[:64] + ("/…" if sep else "")
