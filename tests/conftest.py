"""Session fixtures: the real servers every test talks to.

By default the embedded stack (our own redis-server and ArcadeDB with Bolt) is started on free
loopback ports in a temporary state folder and stopped at the end. Set ``NEO4J_URI`` (with
NEO4J_USER/NEO4J_PASSWORD/NEO4J_DATABASE) and ``REDIS_URL`` to run the same tests against a
real Neo4j and Redis instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_lib

from lookalike import stack
from lookalike.graph import GraphStore
from lookalike.settings import Settings, load_settings
from lookalike_cli.main import child_command
from tests.support import isolated_graph


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state = tmp_path_factory.mktemp("state")
    # Like a user who ran `lookalike up`: every in-process load_settings() (the Celery app's
    # lazy configuration among them) finds this stack.
    previous = os.environ.get("LOOKALIKE_STATE_DIR")
    os.environ["LOOKALIKE_STATE_DIR"] = str(state)
    base = load_settings(state_dir=state)
    stack.up(base)
    try:
        yield base
    finally:
        stack.down(base)
        if previous is None:
            os.environ.pop("LOOKALIKE_STATE_DIR", None)
        else:
            os.environ["LOOKALIKE_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def graph_store(settings: Settings) -> Iterator[GraphStore]:
    store = GraphStore.connect(settings)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(scope="session")
def embedded(settings: Settings) -> bool:
    """True when the tests run on the embedded ArcadeDB server rather than a real Neo4j."""
    return not settings.neo4j_uri


@pytest.fixture
def fresh_graph(settings: Settings, embedded: bool) -> Iterator[tuple[Settings, GraphStore]]:
    """An empty graph of its own, as ``(settings pointing at it, store)``."""
    with isolated_graph(settings, embedded) as pair:
        yield pair


@pytest.fixture
def redis_url(settings: Settings) -> str:
    """The test Redis, emptied for each test that asks for it."""
    url = settings.redis()
    redis_lib.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The catalogue API's spec folder from ../shared (a setting); skip when absent."""
    path = load_settings().catalogue_spec_dir
    if not (path / "SPEC.md").exists():
        pytest.skip(
            f"catalogue spec folder {path} is absent (set LOOKALIKE_CATALOGUE_SPEC_DIR to "
            "the shared catalogue-api folder to run these tests)"
        )
    return path


@pytest.fixture(scope="session")
def demo_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The replica's default demo collection (Met paintings + planted variants), built once."""
    from services.replica.builder import build_demo_collection

    return build_demo_collection(tmp_path_factory.mktemp("demo") / "collection")


@dataclass(frozen=True)
class DemoRun:
    state: Path
    output: str


@pytest.fixture(scope="session")
def demo_run(demo_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`lookalike demo --no-serve --depth 2` on a fresh state folder, as a user runs it; its
    stack stays up for the tests that look at the result (the explorer's among them)."""
    state = tmp_path_factory.mktemp("demo-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["LOOKALIKE_STATE_DIR"] = str(state)
    try:
        proc = subprocess.run(
            child_command(
                "demo",
                "--no-serve",
                "--port",
                "0",
                "--depth",
                "2",
                "--collection",
                str(demo_collection),
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield DemoRun(state, proc.stdout)
    finally:
        stack.down(load_settings(state_dir=state))
