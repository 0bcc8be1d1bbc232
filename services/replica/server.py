"""Running the replica on a real socket: ``run_replica`` for tests, benchmarks and the CLI.

A threaded werkzeug server in a background thread, so clients under test talk real HTTP
(timeouts, dropped connections and Retry-After included), and the server stops cleanly when
the ``with`` block ends. Port 0 picks a free port; the handle reports the URLs to use.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

from services.replica.app import SNAPSHOT_PATH, ReplicaState, create_app
from services.replica.collection import Collection
from services.replica.derivatives import DEFAULT_MAX_MB
from services.replica.faults import FaultConfig, FaultPlan


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: a crawl makes hundreds of thousands. HTTP/1.1, so
    clients keep their connections open as they do with the real catalogue, instead of a new
    TCP connection (and server thread) per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code="-", size="-") -> None:
        pass


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
        return self.state.snapshot(timestamps=timestamps, paths=paths)

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
    state: ReplicaState = app.extensions["replica"]
    state.public_base = base_url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="replica-server", daemon=True)
    thread.start()
    try:
        yield ReplicaHandle(base_url, collection, state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        _remove_tree(state.snapshot_dir)
        if state.derivatives is not None:
            state.derivatives.close()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
