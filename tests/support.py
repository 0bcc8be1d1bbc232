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
from lookalike_cli.children import child_env

REPO = Path(__file__).resolve().parents[1]
__all__ = ["REPO", "child_env", "isolated_graph", "own_state"]
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
