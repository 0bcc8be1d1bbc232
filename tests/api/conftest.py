"""Fixtures for API tests: a graph of known data, the API as a real server process
(``lookalike serve``, gunicorn) pointed at it, and a real Celery worker for background jobs.

Module-scoped: populating a graph and starting a server take a few seconds, and most tests
only read, so each test module shares one graph and one server. Tests that change the graph
use a database of their own (``graph_with_server``).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lookalike import stack
from lookalike.graph import GraphStore
from lookalike.settings import Settings
from lookalike.thumbcache import ThumbnailCache
from lookalike_cli import children
from tests.support import REPO, child_env, isolated_graph
from workers.app import worker_command

from .data import Collection, jpeg, make_collection

own_graph = isolated_graph
_names = itertools.count()


def load_collection(store: GraphStore, settings: Settings, col: Collection) -> None:
    store.upsert_images(col.images)
    store.upsert_edges(col.edges, seen=1_700_000_000_000)
    cache = ThumbnailCache(settings.thumbnail_dir, 50_000_000)
    for image_id, color in col.thumbs.items():
        cache.put(image_id, jpeg(color))


@dataclass
class ApiServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.url + path, timeout=60, **kw)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def signal_stop(self) -> None:
        children.signal_stop(self.proc, signal.SIGINT)  # gunicorn: quick shutdown

    def wait_stopped(self) -> None:
        children.wait_stopped(self.proc, timeout=20)

    def stop(self) -> None:
        self.signal_stop()
        self.wait_stopped()


def start_server(
    local: Settings, log: Path, workers: int = 1, threads: int = 8, **env: str
) -> ApiServer:
    """``lookalike serve`` on a free port, waited for until /health answers."""
    options = ("--workers", str(workers), "--threads", str(threads))
    try:
        url, proc = children.serve(
            child_env(local, **env), log, stack.free_port(), *options, cwd=REPO
        )
    except children.ChildFailed as e:
        raise RuntimeError(f"{e}:\n{log.read_text(errors='replace')[-6000:]}") from None
    return ApiServer(url, proc, log)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ApiServer]]:
    """Start API servers for this module; all are stopped at its end."""
    started: list[ApiServer] = []
    logs = tmp_path_factory.mktemp("api-logs")

    def make(local: Settings, **env: str) -> ApiServer:
        server = start_server(local, logs / f"server{len(started)}.log", **env)
        started.append(server)
        return server

    yield make
    for server in started:  # all at once: each takes a couple of seconds to wind down
        server.signal_stop()
    for server in started:
        server.wait_stopped()


@pytest.fixture(scope="module")
def collection() -> Collection:
    return make_collection()


@pytest.fixture(scope="module")
def known_graph(
    settings: Settings, embedded: bool, collection: Collection
) -> Iterator[tuple[Settings, GraphStore]]:
    """The known collection in a graph of this module's own."""
    with own_graph(settings, embedded) as (local, store):
        load_collection(store, local, collection)
        yield local, store


@pytest.fixture(scope="module")
def api(known_graph: tuple[Settings, GraphStore], servers: Callable[..., ApiServer]) -> ApiServer:
    """The API serving the known collection."""
    local, _ = known_graph
    return servers(local)


# ---------------------------------------------------------------- Celery worker


@dataclass
class CeleryWorker:
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        children.stop(self.proc, timeout=20)


def start_worker(local: Settings, log: Path, **env: str) -> CeleryWorker:
    """A real Celery worker (solo pool) consuming the lookalike queue, waited for until ready."""
    out = log.open("ab")
    proc = subprocess.Popen(
        worker_command(name=f"api{next(_names)}-{os.getpid()}@%h", heartbeat=False),
        env=child_env(local, **env),
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = CeleryWorker(proc, log)
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the Celery worker did not start:\n{worker.log_text()}")
        time.sleep(0.2)
    return worker


@pytest.fixture(scope="module")
def celery_worker(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    """A worker for background jobs. Jobs name their database in their arguments, so this one
    worker serves every test graph."""
    worker = start_worker(settings, tmp_path_factory.mktemp("celery") / "worker.log")
    yield worker
    worker.stop()
