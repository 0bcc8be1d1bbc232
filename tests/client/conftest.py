"""Fixtures for the catalogue client tests: a real Redis, and a small scripted HTTP server.

``client_redis_url`` starts its own redis-server (no persistence) on a free port, unless
``REDIS_URL`` is set, so these tests do not need the whole embedded stack. ``scripted`` is
the small scripted HTTP server of ``client_http_server``; the replica fixtures serve the
real replica (``services.replica``) over real HTTP.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib

from lookalike.settings import Settings, load_settings
from tests.client.client_http_server import ScriptedServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def client_redis_url() -> Iterator[str]:
    """A real Redis: ``REDIS_URL`` when set, else our own throwaway redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_lib.Redis.from_url(url, socket_timeout=1)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def client_redis(client_redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(client_redis_url)
    yield client
    client.close()


@pytest.fixture
def key_prefix(client_redis: redis_lib.Redis) -> Iterator[str]:
    """A rate-limit key prefix of this test's own, removed afterwards."""
    prefix = f"test-client:{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client_redis.scan_iter(f"{prefix}*"))
    if keys:
        client_redis.delete(*keys)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def scripted_settings(scripted: ScriptedServer) -> Callable[..., Settings]:
    """Settings pointing the client at the scripted server (catalogue and image host)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "catalogue_url": f"{scripted.base}/catalogue/v2",
            "image_hosts": (f"127.0.0.1:{scripted.port}",),
            "rate_limit": 200.0,
            "rate_burst": 20,
            "http_timeout": 5.0,
            "max_retries": 3,
            "backoff_base": 0.01,
            "backoff_max": 2.0,
        }
        values.update(overrides)
        return load_settings(environ={}, **values)

    return make


# --------------------------------------------------------------------------- the real replica


@pytest.fixture(scope="session")
def client_demo_collection(tmp_path_factory: pytest.TempPathFactory):
    """The replica's demo collection (real paintings), built once per session."""
    from services.replica.builder import build_demo_collection

    return build_demo_collection(tmp_path_factory.mktemp("client-demo") / "collection", families=4)


@pytest.fixture(scope="session")
def client_replica_server(client_demo_collection):
    from services.replica.server import run_replica

    with run_replica(client_demo_collection) as handle:
        yield handle


@pytest.fixture
def replica(client_replica_server):
    """The running replica with no faults and fresh counters."""
    client_replica_server.set_faults(None)
    client_replica_server.reset_stats()
    yield client_replica_server
    client_replica_server.set_faults(None)


@pytest.fixture
def replica_settings(replica) -> Callable[..., Settings]:
    """Settings pointing a client at the replica; quick backoff so faults cost little time."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "catalogue_url": replica.catalogue_url,
            "image_hosts": (replica.image_host,),
            "rate_limit": 100.0,
            "rate_burst": 20,
            "http_timeout": 10.0,
            "max_retries": 5,
            "backoff_base": 0.02,
            "backoff_max": 3.0,
        }
        values.update(overrides)
        return load_settings(environ={}, **values)

    return make
