"""Helpers shared by the test packages: isolated graphs and the environment of the server
and worker processes that tests start."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from lookalike import stack
from lookalike.graph import GraphStore
from lookalike.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
_names = itertools.count()


@contextlib.contextmanager
def isolated_graph(settings: Settings, embedded: bool) -> Iterator[tuple[Settings, GraphStore]]:
    """An empty graph of its own: a new database on ArcadeDB; a cleared graph on Neo4j.

    Yields the settings that point at it (pass them on to subprocesses with ``child_env``)
    and a store connected to it.
    """
    if embedded:
        name = f"t{os.getpid()}x{next(_names)}"
        stack.create_database(settings, name)
        local = load_settings(state_dir=settings.state_dir, neo4j_database=name)
    else:
        local = settings
    store = GraphStore.connect(local)
    if not embedded:
        store.clear()
    store.ensure_schema()
    try:
        yield local, store
    finally:
        store.close()
        if embedded:
            stack.drop_database(settings, local.neo4j_database or "")


def child_env(local: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server or worker process that must see the same graph and Redis
    as ``local``: this process's environment without our settings, then theirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))}
    env.update(
        {
            "LOOKALIKE_STATE_DIR": str(local.state_dir),
            "REDIS_URL": local.redis(),
            "PYTHONPATH": str(REPO),
        }
    )
    if local.neo4j_uri:
        graph = local.graph()
        env.update(
            {"NEO4J_URI": graph.uri, "NEO4J_USER": graph.user, "NEO4J_PASSWORD": graph.password}
        )
    if local.neo4j_database:
        env["NEO4J_DATABASE"] = local.neo4j_database
    env.update(extra)
    return env


def own_state(local: Settings, folder: Path) -> Settings:
    """Settings for the same graph and Redis as ``local`` with a state folder of their own:
    an index or thumbnails written there do not reach the other tests' servers."""
    graph = local.graph()
    return local.replace(
        state_dir=folder,
        neo4j_uri=graph.uri,
        neo4j_user=graph.user,
        neo4j_password=graph.password,
        neo4j_database=graph.database,
        redis_url=local.redis(),
    )
