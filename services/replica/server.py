"""Running the replica on a real socket: ``run_replica`` for tests, benchmarks and the CLI.

A cheroot server (CherryPy's WSGI server) in background threads of this process, so clients
under test talk real HTTP (timeouts, dropped connections and Retry-After included), and the
server stops cleanly when the ``with`` block ends. Port 0 picks a free port; the handle
reports the URLs to use.

Connections behave as the real catalogue's do: HTTP/1.1, kept alive between requests (a
crawler's two requests per image share one TCP connection), with ``TCP_NODELAY`` so a
response is never held back waiting for the client's delayed ACK. Idle kept-alive
connections wait in cheroot's one selector thread, not in a thread each. Stopping the
replica closes them all, as a restarted server's would, so clients reconnect to whatever
listens next instead of talking to a stopped replica.

Why cheroot and not waitress (both maintained, pure Python): cheroot answers a crawl's
requests with less CPU (waitress hands every response from its worker thread to its event
loop), and it has a documented ``stop()`` that also closes kept-alive connections, where
waitress has no programmatic shutdown. A dropped-connection fault works with either (see
``routes_faults.DropConnections``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cheroot import wsgi

from services.replica.app import create_app
from services.replica.collection import Collection
from services.replica.derivatives import DEFAULT_MAX_MB
from services.replica.faults import FaultConfig, FaultPlan
from services.replica.routes_snapshot import SNAPSHOT_PATH
from services.replica.state import EXTENSION, ReplicaState

THREADS = 32  # requests answered at once (a slow fault holds one for its seconds)
IDLE_TIMEOUT_S = 30  # an idle kept-alive connection is closed after this long
LISTEN_BACKLOG = 128  # connections waiting to be accepted (a crawl's workers start together)
# How often the connection thread looks up from its sockets: also how long stopping waits.
STOP_POLL_S = 0.05


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
    collection = (
        collection_dir
        if isinstance(collection_dir, Collection)
        else Collection.load(Path(collection_dir))
    )
    config = FaultConfig.parse(faults) if isinstance(faults, str) else faults
    app = create_app(
        collection,
        legacy=legacy,
        faults=config,
        derivatives_dir=derivatives_dir,
        derivatives_mb=derivatives_mb,
    )
    state: ReplicaState = app.extensions[EXTENSION]
    try:
        server = wsgi.Server(
            (host, port),
            app,
            numthreads=THREADS,
            timeout=IDLE_TIMEOUT_S,
            request_queue_size=LISTEN_BACKLOG,
        )
        server.keep_alive_conn_limit = None  # every client keeps its connection
        server.expiration_interval = STOP_POLL_S
        server.prepare()  # binds the port (and raises here if it cannot)
        # cheroot allows an address in use only for a fixed port; a replica restarted on the
        # port a stopped one picked (tests do) needs it too, or the stopped one's closed
        # connections (TIME_WAIT) would hold the port. Connections inherit it from here.
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound_port = server.bind_addr[1]
        thread = threading.Thread(target=server.serve, name="replica-server", daemon=True)
        try:
            shown_host = f"[{host}]" if ":" in host else host
            if host in ("0.0.0.0", "::"):
                shown_host = "127.0.0.1"
            base_url = f"http://{shown_host}:{bound_port}"
            state.public_base = base_url
            thread.start()
            yield ReplicaHandle(base_url, collection, state)
        finally:
            server.stop()  # closes the listening socket and every kept-alive connection
            if thread.is_alive():
                thread.join(timeout=10)
    finally:
        state.close()
