"""The indexer's edge to the graph: read hashes (and what the graph says of embeddings),
titles and SIMILAR_TO edges, count new hashes, write near-duplicates and lookalikes.

All statements are the ``cypher/index_*``, ``cypher/near_duplicates_*`` and
``cypher/looks_like_*`` files, run through ``GraphStore`` (read transactions for reads,
managed write transactions for writes).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import redis

from lookalike.hashing import HASH_KINDS, algorithm_version
from lookalike.hashmark import RedisMarks
from lookalike.settings import Settings, SettingsError
from lookalike.vectors import current_model
from lookalike.viewstore import ViewStore
from services.indexer.reader import IndexReader
from services.indexer.recent import StreamVectors
from services.indexer.table import HashTable
from services.indexer.titles import TitleTable
from services.indexer.verify import VerifyConfig

if TYPE_CHECKING:  # the graph driver is imported only by who connects (lookalike.graph)
    from lookalike.graph import GraphStore
    from services.indexer.duplicates import Duplicate
    from services.indexer.lookslike import Diff, LooksLike

log = logging.getLogger(__name__)


def read_index_rows(store: GraphStore, page: int = 5000) -> list[dict[str, Any]]:
    """Every hashed image's index row (hashes, embedding state, colour), a page at a time
    in id order."""
    rows: list[dict[str, Any]] = []
    after = ""
    while True:
        chunk = store.read("index_hashes_page", after=after, limit=page)
        rows.extend(chunk)
        if len(chunk) < page:
            return rows
        after = chunk[-1]["id"]


def hash_table(rows: list[dict[str, Any]], kinds: tuple[str, ...] = HASH_KINDS) -> HashTable:
    table = HashTable.from_rows(rows, kinds, hash_version=algorithm_version())
    for message in table.rejected:
        log.warning("not indexed: %s", message)
    return table


def read_all_titles(store: GraphStore, page: int = 5000) -> tuple[TitleTable, int]:
    """Every titled image's title, read a page at a time in id order, as the title index;
    and the time the read began (titles written later are the reader's fresh ones)."""
    read_at = int(time.time() * 1000)
    rows: list[tuple[str, str | None]] = []
    after = ""
    while True:
        chunk = store.read("index_titles_page", after=after, limit=page)
        rows.extend((r["id"], r["title"]) for r in chunk)
        if len(chunk) < page:
            break
        after = chunk[-1]["id"]
    return TitleTable.build(rows), read_at


def count_new_titles(store: GraphStore, since_ms: int) -> int:
    """Images fetched after ``since_ms``: their titles may be new or changed."""
    return int(store.read("index_count_fetched_since", since=int(since_ms))[0]["new"])


def read_all_hashes(
    store: GraphStore, kinds: tuple[str, ...] = HASH_KINDS, page: int = 5000
) -> HashTable:
    """Every hashed image, read a page at a time in id order."""
    return hash_table(read_index_rows(store, page), kinds)


def read_edges(store: GraphStore, page: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every SIMILAR_TO edge as (source ids, target ids, ranks)."""
    source: list[str] = []
    target: list[str] = []
    rank: list[int] = []
    after = ""
    while True:
        chunk = store.read("index_edges_page", after=after, limit=page)
        for row in chunk:
            for edge in row["edges"]:
                source.append(row["source"])
                target.append(edge["target"])
                rank.append(int(edge["rank"]) if isinstance(edge["rank"], int) else 0)
        if len(chunk) < page:
            break
        after = chunk[-1]["source"]
    return (
        np.asarray(source, dtype=str),
        np.asarray(target, dtype=str),
        np.asarray(rank, dtype=np.int16),
    )


def count_new(store: GraphStore, since_ms: int) -> int:
    return int(store.read("index_count_since", since=int(since_ms))[0]["new"])


def count_hashed(store: GraphStore) -> int:
    return int(store.read("index_count_hashed")[0]["hashed"])


class GraphReads(Protocol):
    """What the readers' sources need of the graph: ``GraphStore``, or a connection opened
    at its first read (the CLI's, which imports the driver only then)."""

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]: ...


class GraphHashSource:
    """The reader's ``HashSource``: hashes written since a time, straight from the graph.

    ``limit`` bounds one delta read; past it the reader would scan a truncated delta, so it
    logs loudly (the indexer rebuilds long before, at ``index_rebuild_min_new`` hashes).
    """

    def __init__(
        self, store: GraphReads, kinds: tuple[str, ...] = HASH_KINDS, limit: int = 200_000
    ) -> None:
        self.store = store
        self.kinds = kinds
        self.limit = limit

    def hashes_since(self, since_ms: int) -> HashTable:
        rows = self.store.read("index_hashes_since", since=int(since_ms), limit=self.limit)
        if len(rows) >= self.limit:
            log.error(
                "%d or more hashes newer than the index: is the indexer running? Recent "
                "hashes past the first %d are not searched until it rebuilds",
                self.limit,
                self.limit,
            )
        return HashTable.from_rows(rows, self.kinds, hash_version=algorithm_version())


class GraphTitleSource:
    """The title reader's ``TitleSource``: titles of images fetched or hashed since a time
    (every image the crawler stores is one or the other soon after), from the graph.
    ``limit`` bounds one read, as for hashes."""

    def __init__(self, store: GraphReads, limit: int = 200_000) -> None:
        self.store = store
        self.limit = limit

    def titles_since(self, since_ms: int) -> list[tuple[str, str | None]]:
        rows = self.store.read("index_titles_since", since=int(since_ms), limit=self.limit)
        if len(rows) >= self.limit:
            log.error("%d or more titles newer than the index: is the indexer running?", self.limit)
        return [(r["id"], r["title"]) for r in rows]


def open_reader(settings: Settings, store: GraphReads, **options: Any) -> IndexReader:
    """The reader the API and the CLI use: the settings' index folder, fresh hashes from
    the graph (unless the workers' write mark in Redis shows there are none:
    lookalike.hashmark), fresh vectors from Redis (when it is reachable), the settings'
    Annoy search_k, the workers' views."""
    options.setdefault("search_k", settings.index_search_k)
    options.setdefault("max_pixels", settings.api_max_upload_pixels)
    options.setdefault("model", functools.partial(current_model, settings))
    options.setdefault("verify", VerifyConfig.from_settings(settings))
    if "views" not in options and settings.view_store_mb > 0:
        options["views"] = ViewStore(settings.view_dir, max_bytes=0).get  # read only
    if "vectors" not in options or "marks" not in options:
        try:
            client = redis.Redis.from_url(settings.redis())
        except SettingsError as exc:
            log.warning(
                "%s: vectors embedded since the last index build are not searched, and the "
                "graph is asked for what is newer than the index",
                exc,
            )
        else:
            options.setdefault("vectors", StreamVectors(client))
            options.setdefault("marks", RedisMarks(client, settings.neo4j_database))
    return IndexReader(settings.index_dir, GraphHashSource(store), **options)


@dataclass(frozen=True)
class WriteReport:
    relationships: int
    removed: int
    grouped: int
    cleared: int


def write_near_duplicates(
    store: GraphStore,
    pairs: Sequence[Duplicate],
    groups: dict[str, tuple[str, int]],
    run: int,
    batch: int = 2000,
) -> WriteReport:
    """Store verified pairs as NEAR_DUPLICATE relationships (one per pair, with its evidence)
    and groups as ``dup_group`` on images, then remove what an earlier run wrote and this
    one did not find again."""
    rows = [
        {
            "a": p.a,
            "b": p.b,
            "kind": p.kind,
            "distance": p.distance,
            "mirrored": p.mirrored,
            "weighted": p.weighted,
            "distances": dict(p.distances),
            "color": p.color if p.color >= 0 else None,
            "cosine": None if math.isnan(p.cosine) else p.cosine,
            "local": p.local,
            "inliers": p.inliers if p.inliers >= 0 else None,
            "local_score": p.local_score if p.local else None,
            "layout": None if math.isnan(p.layout) else p.layout,
            "local_color": None if math.isnan(p.local_color) else p.local_color,
        }
        for p in pairs
    ]
    written = sum(
        r["written"] for r in store.write("near_duplicates_write", rows, batch=batch, run=run)
    )
    removed = 0
    while True:
        n = store.write("near_duplicates_prune", run=run, limit=batch)[0]["removed"]
        removed += n
        if n < batch:
            break
    group_rows = [{"id": i, "group": g, "size": size} for i, (g, size) in groups.items()]
    grouped = sum(
        r["images"]
        for r in store.write("near_duplicates_set_groups", group_rows, batch=batch, run=run)
    )
    cleared = 0
    while True:
        n = store.write("near_duplicates_clear_groups", run=run, limit=batch)[0]["cleared"]
        cleared += n
        if n < batch:
            break
    return WriteReport(written, removed, grouped, cleared)


@dataclass(frozen=True)
class LooksLikeReport:
    written: int
    removed: int
    full: bool


def count_looks_like(store: GraphStore) -> int:
    return int(store.read("looks_like_count")[0]["n"])


def write_looks_like(
    store: GraphStore, table: LooksLike, diff: Diff, run: int, batch: int = 2000
) -> LooksLikeReport:
    """Store a build's LOOKS_LIKE pairs: only what changed (``diff``), or everything with
    a prune of what this run did not write (``diff.full``)."""
    written = sum(
        r["written"]
        for r in store.write(
            "looks_like_write", table.rows(diff.write), batch=batch, model=table.model, run=run
        )
    )
    removed = 0
    if diff.full:
        while True:
            n = store.write("looks_like_prune", run=run, limit=batch)[0]["removed"]
            removed += n
            if n < batch:
                break
    elif diff.delete:
        rows = [{"a": a, "b": b, "refined": refined} for a, b, refined in diff.delete]
        removed = sum(r["removed"] for r in store.write("looks_like_delete", rows, batch=batch))
    return LooksLikeReport(written, removed, diff.full)
