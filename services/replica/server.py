"""Running the replica on a real socket: ``run_replica`` for tests, benchmarks and the CLI.

A threaded werkzeug server in a background thread, so clients under test talk real HTTP
(timeouts, dropped connections and Retry-After included), and the server stops cleanly when
the ``with`` block ends. Port 0 picks a free port; the handle reports the URLs to use.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from services.replica.app import create_app
from services.replica.collection import Collection
from services.replica.derivatives import DEFAULT_MAX_MB
from services.replica.faults import FaultConfig, FaultPlan
from services.replica.routes_snapshot import SNAPSHOT_PATH
from services.replica.state import EXTENSION, ReplicaState


class _NoBody:
    """The request stream of a request without a body, once it has been parsed: nothing to
    read. See ``_QuietHandler.run_wsgi``."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readinto(self, buffer: bytearray) -> int:
        return 0


def _connections(server: object) -> set[socket.socket]:
    """The connections a replica server has open (kept alive between requests), so that
    stopping the replica ends them as a real server's restart would: otherwise clients would
    go on being served by the stopped replica's threads."""
    return server.__dict__.setdefault("lookalike_connections", set())


def _close_connections(server: object) -> None:
    for sock in list(_connections(server)):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: a crawl makes hundreds of thousands. HTTP/1.1 with
    keep-alive for requests without a body, so clients keep their connections open as they do
    with the real catalogue, instead of a new TCP connection (and server thread) per request.

    werkzeug's development server closes every connection, for a reason that does not apply
    to such requests: ``http.server`` cannot tell an unread request body from the next
    request, so after each response werkzeug reads whatever the client sent next and throws it
    away. A GET or HEAD without a body has nothing left unread; those requests keep their
    connection, and werkzeug's discard reads from ``_NoBody`` instead of eating the next
    request. Anything else is served and closed as werkzeug does.
    """

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection gives its thread back after this long
    # Headers and body go out as separate writes: on a kept-alive connection Nagle's
    # algorithm would hold the body back until the client's delayed ACK (~40 ms a response).
    disable_nagle_algorithm = True

    def log_request(self, code="-", size="-") -> None:
        pass

    def setup(self) -> None:
        super().setup()
        _connections(self.server).add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            _connections(self.server).discard(self.connection)

    def log_error(self, format: str, *args) -> None:
        if not format.startswith("Request timed out"):  # an idle keep-alive connection
            super().log_error(format, *args)

    def run_wsgi(self) -> None:
        if not self._bodiless():
            super().run_wsgi()
            return
        stream, self.rfile = self.rfile, _NoBody()
        try:
            super().run_wsgi()
        finally:
            self.rfile = stream

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug sends "Connection: close" on every response (see the class docstring);
        # it is kept when the connection does end: the client asked to close it.
        if (keyword.lower() == "connection" and value.lower() == "close"
                and self._bodiless() and not self.close_connection):
            return
        super().send_header(keyword, value)

    def _bodiless(self) -> bool:
        return (
            self.command in ("GET", "HEAD")
            and self.headers.get("Content-Length", "0").strip() in ("", "0")
            and "Transfer-Encoding" not in self.headers
        )


@dataclass
class ReplicaHandle:
    """What ``run_replica`` yields."""

    base_url: str  # http://127.0.0.1:PORT
    collection: Collection
    state: ReplicaState

    @property
    def catalogue_url(self) -> str:
        return f"{self.base_url}/catalogue/v2"

    @property
    def image_host(self) -> str:
        return self.base_url.split("://", 1)[1]

    @property
    def snapshot_url(self) -> str:
        return f"{self.base_url}{SNAPSHOT_PATH}"

    @property
    def fault_plan(self) -> FaultPlan:
        return self.state.plan

    def stats(self, *, timestamps: bool = False, paths: bool = False) -> dict:
        """Request/fault/status counts, and ``pictures``: where served pictures came from
        (``memory_hits``, ``derivative_hits``, ``rendered``, ``stored``, ...)."""
        return self.state.counts(timestamps=timestamps, paths=paths)

    def reset_stats(self) -> None:
        self.state.reset()

    def set_faults(self, faults: FaultConfig | str | None) -> None:
        """Change the fault plan of the running server (counters restart)."""
        config = FaultConfig.parse(faults) if isinstance(faults, str | type(None)) else faults
        self.state.plan = FaultPlan(config)

    def env(self) -> dict[str, str]:
        """The environment that points Lookalike's crawler at this replica."""
        return {
            "LOOKALIKE_CATALOGUE_URL": self.catalogue_url,
            "LOOKALIKE_IMAGE_HOSTS": self.image_host,
        }

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())


@contextmanager
def run_replica(
    collection_dir: str | os.PathLike | Collection,
    *,
    legacy: bool = False,
    faults: FaultConfig | str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    derivatives_dir: str | os.PathLike | None = None,
    derivatives_mb: float = DEFAULT_MAX_MB,
) -> Iterator[ReplicaHandle]:
    """Serve a collection until the block exits; yields a ``ReplicaHandle``.

    ``derivatives_dir``: serve pictures from (and store rendered ones into) the derivative
    cache there (see ``derivatives``; fill it beforehand with ``derivatives.prerender``).
    """
    collection = (collection_dir if isinstance(collection_dir, Collection)
                  else Collection.load(Path(collection_dir)))
    config = FaultConfig.parse(faults) if isinstance(faults, str) else faults
    app = create_app(collection, legacy=legacy, faults=config,
                     derivatives_dir=derivatives_dir, derivatives_mb=derivatives_mb)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True
    bound_port = server.socket.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown_host = "127.0.0.1"
    base_url = f"http://{shown_host}:{bound_port}"
    state: ReplicaState = app.extensions[EXTENSION]
    state.public_base = base_url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="replica-server", daemon=True)
    thread.start()
    try:
        yield ReplicaHandle(base_url, collection, state)
    finally:
        server.shutdown()
        server.server_close()
        _close_connections(server)
        thread.join(timeout=10)
        state.close()
