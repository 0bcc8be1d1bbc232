"""The graph store: the only module that talks to the graph database.

It runs the statements of ``cypher/`` by name through the official ``neo4j`` driver, the same
code path on Neo4j 5 and on the embedded ArcadeDB Bolt server. Rules it enforces (see
GRAPH_BACKENDS.md for why):

- every write runs in a managed transaction (``execute_write``), batched with ``UNWIND``:
  ArcadeDB's auto-commit writes are not atomic;
- transient errors are retried by the driver; the ``ConstraintError`` that a concurrent
  ``MERGE`` of the same id, or of the same SIMILAR_TO edge (unique by an index of
  ``cypher/schema_arcadedb.sql``), raises on ArcadeDB (Neo4j locks instead) is retried here;
  both on the write budget of ``lookalike.retry`` (``GRAPH_WRITES``);
- reads run in read transactions, so a read path cannot write;
- hot queries return ids and maps, never Path objects.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j import GraphDatabase, ManagedTransaction
from neo4j.exceptions import (
    AuthError,
    ConstraintError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from lookalike import cypher
from lookalike.retry import BACKOFF_FACTOR, GRAPH_WRITES
from lookalike.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


def _run_to_end(session: neo4j.Session, statement: LiteralString) -> None:
    """Run one statement and wait for its end, so that its errors are raised here."""
    session.run(statement).consume()


class GraphUnavailable(RuntimeError):
    """The graph server does not answer; the message says where we looked and what to do."""


@dataclass
class Subgraph:
    """Nodes (id -> properties) and directed SIMILAR_TO edges (source, target, rank)."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[tuple[str, str, int | None]] = field(default_factory=list)
    depth: dict[str, int] = field(default_factory=dict)
    truncated: bool = False


def now_ms() -> int:
    return int(time.time() * 1000)


def _tag_comment(tag: str) -> str:
    """The comment that marks a statement as ``tag``'s, first in its text, where the server's
    list of running queries shows it."""
    return f"/* {tag} */"


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# A ring size no graph here reaches: the ring statements need a number for LIMIT when the
# caller sets none, and ArcadeDB rejects 2**31 - 1 there.
_NO_LIMIT = 1 << 30

# One image of a neighbourhood ring as the statements return it:
# [id, elementId, properties or None, [[target elementId, rank], ...]].
_RingImage = list[Any]


class _Walk:
    """The state of one breadth-first neighbourhood walk (pure: the statements are run by
    ``GraphStore.neighborhood``).

    Keeps each admitted image's properties and out-edges as they arrive with its ring, and
    joins the out-edges to the admitted images by element id at the end, so the edges among
    the admitted images need no query of their own.
    """

    def __init__(self, start: _RingImage, limit: int | None) -> None:
        self.limit = limit
        self.sub = Subgraph()
        self.found: list[_RingImage] = []
        self.previous: list[str] = []
        self._add(start, 0)
        self.frontier: list[str] = [start[0]]

    def _add(self, image: _RingImage, hop: int) -> None:
        self.sub.depth[image[0]] = hop
        self.found.append(image)

    def known(self) -> list[str]:
        """The images the next ring must exclude. A breadth-first ring's neighbours lie at
        most one hop nearer, so the previous ring and the frontier suffice, which keeps the
        statement's ``IN`` list short at depth 3."""
        return self.previous + self.frontier

    def admit(self, ring: list[_RingImage], hop: int) -> bool:
        """Admit one ring (sorted by id, at most one more than there is room for); False
        when the walk must stop because the limit cut this ring."""
        admitted = len(self.sub.depth)
        if self.limit is not None and admitted + len(ring) > self.limit:
            ring = ring[: max(0, self.limit - admitted)]
            self.sub.truncated = True
        for image in ring:
            self._add(image, hop)
        self.previous, self.frontier = self.frontier, [image[0] for image in ring]
        return not self.sub.truncated

    def finish(self, properties: bool) -> Subgraph:
        sub = self.sub
        ids = {image[1]: image[0] for image in self.found}
        for node, _, props, out in self.found:
            sub.nodes[node] = props if properties else {"id": node}
            sub.edges.extend((node, ids[t], rank) for t, rank in out if t in ids)
        sub.edges.sort()
        return sub


# An index declared on a graph that already holds its edges is built there and then, once:
# ~50-60 s for 1M SIMILAR_TO edges on 2 cores (bench/README.md): the wait is bounded generously.
SCHEMA_SECONDS = 1800.0


class GraphStore:
    """Named Cypher statements over one driver and database."""

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str | None,
        uri: str = "?",
        server_admin: dict[str, Any] | None = None,
    ) -> None:
        self.driver = driver
        self.database = database
        self.uri = uri
        # The embedded server's record (``lookalike up``): its HTTP API can stop queries.
        self.server_admin = server_admin
        self._agent: str | None = None

    @classmethod
    def connect(cls, settings: Settings, *, retry_time: float = 15.0) -> GraphStore:
        """Open a driver to the configured graph (``NEO4J_URI`` or the embedded server)."""
        conn = settings.graph()
        admin = None if settings.neo4j_uri else settings.embedded().get("graph")
        driver = GraphDatabase.driver(
            conn.uri,
            auth=conn.auth,
            connection_timeout=5.0,
            max_transaction_retry_time=retry_time,
            connection_acquisition_timeout=30.0,
            max_connection_pool_size=50,
            # Colliding writes retry on the write budget, not the driver's default first wait
            # of 1 s that left the workers idle (the jitter: half the step either way).
            initial_retry_delay=GRAPH_WRITES.base,
            retry_delay_multiplier=BACKOFF_FACTOR,
            retry_delay_jitter_factor=0.5,
        )
        return cls(driver, conn.database, uri=conn.uri, server_admin=admin)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def server_agent(self) -> str:
        if self._agent is None:
            self._agent = self._call(lambda: self.driver.get_server_info().agent)
        return self._agent

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (ServiceUnavailable, SessionExpired) as exc:
            raise GraphUnavailable(
                f"the graph server at {self.uri} is not answering ({exc}). Is it running? "
                "Check `lookalike status`, or NEO4J_URI if you use your own Neo4j."
            ) from exc
        except AuthError as exc:
            raise GraphUnavailable(
                f"the graph server at {self.uri} refused our credentials ({exc}); "
                "check NEO4J_USER/NEO4J_PASSWORD"
            ) from exc

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run ``cypher/<name>.cypher`` in a read transaction; rows as dicts."""
        query = cypher.load(name)

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(query, params)]

        with self.driver.session(database=self.database) as session:
            return self._call(lambda: session.execute_read(work))

    def stream(
        self, name: str, fetch_size: int = 10_000, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Run ``cypher/<name>.cypher`` in one read transaction and yield its rows as they
        arrive, ``fetch_size`` at a time: for reading a whole large graph with bounded memory.

        One statement instead of keyset pages because ArcadeDB answers ``WHERE id > $after
        ORDER BY id LIMIT n`` by sorting every image again for each page (200k images: ~5 s
        per page of 10k), while one streamed statement reads them all in seconds. Unlike
        ``read``, a failure part-way is not retried: the caller sees it.
        """
        query = cypher.load(name)
        with self.driver.session(
            database=self.database,
            default_access_mode=neo4j.READ_ACCESS,
            fetch_size=fetch_size,
        ) as session:
            tx = self._call(session.begin_transaction)
            try:
                result = self._call(lambda: tx.run(query, params))
                while True:
                    record = self._call(lambda: next(result, None))
                    if record is None:
                        return
                    yield record.data()
            finally:
                if not tx.closed():
                    tx.rollback()

    def read_rolled_back(
        self,
        text: str,
        params: dict[str, Any],
        timeout: float,
        max_rows: int,
        convert: Any = None,
        tag: str | None = None,
    ) -> tuple[list[str], list[dict[str, Any]], bool, bool]:
        """Run caller-supplied Cypher in a READ transaction that is always rolled back.

        For the read-only ad-hoc endpoint only. Neo4j refuses writes in read mode and enforces
        the transaction timeout; ArcadeDB does neither, so the transaction is never committed
        and the result's counters tell the caller whether the statement tried to write, and
        a statement run with ``tag`` can be stopped with ``terminate_tagged``.
        Callers must still vet the text. Returns (columns, rows, truncated, wrote); ``convert``
        maps each value (e.g. to JSON).
        """
        conv = convert or (lambda v: v)
        if tag is not None:
            text = f"{_tag_comment(tag)} {text}"

        def work() -> tuple[list[str], list[dict[str, Any]], bool, bool]:
            with self.driver.session(
                database=self.database,
                default_access_mode=neo4j.READ_ACCESS,
                fetch_size=max_rows + 1,
            ) as session:
                tx = session.begin_transaction(timeout=timeout)
                try:
                    # The one statement not from cypher/: vetted by the caller, run read-only
                    # and rolled back.
                    result = tx.run(text, params)
                    columns = list(result.keys())
                    rows: list[dict[str, Any]] = []
                    truncated = False
                    for record in result:
                        if len(rows) >= max_rows:
                            truncated = True
                            break
                        fields = zip(record.keys(), record.values(), strict=True)
                        rows.append({k: conv(v) for k, v in fields})
                    counters = result.consume().counters
                    wrote = counters.contains_updates or counters.contains_system_updates
                    return columns, rows, truncated, wrote
                finally:
                    if not tx.closed():
                        tx.rollback()

        return self._call(work)

    def terminate_tagged(self, tag: str) -> int:
        """Stop, on the server, the statements ``read_rolled_back`` runs with ``tag``; returns
        how many were stopped.

        Why: ArcadeDB ignores the transaction timeout, and a client that stops waiting (or
        closes its connection) leaves the statement running, so the server itself is told to
        end it, through its HTTP API (``terminate query``). Neo4j ends such a transaction at
        its timeout by itself; without the embedded server's HTTP API this does nothing.
        """
        if self.server_admin is None:
            return 0
        from lookalike.stack import StackError, server_command

        prefix = _tag_comment(tag)
        listing = "list queries" + (f" database {self.database}" if self.database else "")
        stopped = 0
        try:
            for query in server_command(self.server_admin, listing, timeout=10) or []:
                if str(query.get("text", "")).startswith(prefix):
                    server_command(self.server_admin, f"terminate query {query['id']}", timeout=10)
                    stopped += 1
        except StackError as exc:
            log.warning("could not stop the query tagged %s on the graph server: %s", tag, exc)
        return stopped

    def write(
        self,
        name: str,
        rows: Sequence[dict[str, Any]] | None = None,
        *,
        batch: int = 1000,
        **params: Any,
    ) -> list[dict[str, Any]]:
        """Run ``cypher/<name>.cypher`` in managed write transactions.

        With ``rows``, the statement receives ``$rows`` in batches of ``batch`` (one transaction
        each); the result rows of every batch are concatenated.
        """
        query = cypher.load(name)
        if rows is None:
            return self._write_once(query, params)
        out: list[dict[str, Any]] = []
        for chunk in _chunks(rows, batch):
            out.extend(self._write_once(query, {**params, "rows": list(chunk)}))
        return out

    def _write_once(self, query: LiteralString, params: dict[str, Any]) -> list[dict[str, Any]]:
        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(query, params)]

        return self._retrying_write(work)

    def write_together(
        self, steps: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        """Run several named statements in ONE managed transaction: all or nothing.

        The crawler stores an image, its similar images, their edges and the pruning of edges
        no longer listed together, so a crash never leaves half an update.
        """
        queries = [(cypher.load(name), params) for name, params in steps]

        def work(tx: ManagedTransaction) -> list[list[dict[str, Any]]]:
            return [[r.data() for r in tx.run(q, p)] for q, p in queries]

        return self._retrying_write(work)

    def _retrying_write(self, work: Callable[[ManagedTransaction], T]) -> T:
        attempt = 0
        while True:
            try:
                with self.driver.session(database=self.database) as session:
                    return self._call(lambda: session.execute_write(work))
            except (ConstraintError, TransientError) as exc:
                # ArcadeDB: two writers MERGE-ing the same new id (or SIMILAR_TO edge) both
                # try to create it and the loser gets ConstraintError. Retrying turns its
                # MERGE into a match.
                if GRAPH_WRITES.gives_up(attempt):
                    raise
                delay = GRAPH_WRITES.delay(attempt)
                log.debug("write conflict (%s); retry %d in %.2fs", exc, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1

    # ------------------------------------------------------------------ schema

    def ensure_schema(self) -> None:
        for statement in cypher.load_many("schema"):
            with self.driver.session(database=self.database) as session:
                self._call(partial(_run_to_end, session, statement))
        if self.server_admin is not None:
            self._ensure_embedded_schema(self.server_admin)

    def _ensure_embedded_schema(self, admin: dict[str, Any]) -> None:
        """The embedded ArcadeDB's own schema (``cypher/schema_arcadedb.sql``), through its HTTP
        API. A graph written before SIMILAR_TO's unique index holds some pairs twice, and the
        server refuses to build the index over them: they are merged first."""
        from lookalike.stack import StackError, database_command

        database = self.database or admin.get("database") or ""
        for statement in cypher.load_many("schema_arcadedb", ".sql"):
            try:
                result = database_command(admin, database, statement, timeout=SCHEMA_SECONDS)
            except StackError as exc:
                if "Duplicated key" not in str(exc):
                    raise
                removed = self.merge_duplicate_edges()
                log.warning("merged %d SIMILAR_TO edges stored twice, to build its index", removed)
                result = database_command(admin, database, statement, timeout=SCHEMA_SECONDS)
            for done in result or []:
                if done.get("created") and done.get("totalIndexed"):
                    log.info("built index %s over %d records", done["name"], done["totalIndexed"])

    def merge_duplicate_edges(self) -> int:
        """Make every pair stored as several SIMILAR_TO edges one edge; returns how many copies
        were removed. The pairs are found while streaming the whole graph, a source at a time,
        so a large graph needs no more memory on the server than a read of it."""
        pairs = [
            {"source": row["id"], "target": target}
            for row in self.stream("analysis_graph")
            for target, copies in Counter(row["targets"]).items()
            if copies > 1
        ]
        return sum(r["removed"] for r in self.write("merge_duplicate_edges", pairs))

    def clear(self, batch: int = 2000) -> None:
        """Delete everything, in batches. For tests and `lookalike reset` only."""
        while self.write("clear_graph", limit=batch)[0]["deleted"]:
            pass

    # ------------------------------------------------------------------ writes

    def upsert_images(self, rows: Iterable[dict[str, Any]], batch: int = 1000) -> int:
        """Create or update images. Each row: ``{"id": ..., **properties}``; None values are
        left out so a partial record never erases what is stored."""
        payload = [
            {"id": r["id"], "props": {k: v for k, v in r.items() if k != "id" and v is not None}}
            for r in rows
        ]
        return sum(r["images"] for r in self.write("upsert_images", payload, batch=batch))

    def upsert_edges(
        self, edges: Iterable[tuple[str, str, int]], seen: int | None = None, batch: int = 1000
    ) -> int:
        """Create or refresh SIMILAR_TO edges (source, target, rank); both nodes must exist."""
        ts = seen if seen is not None else now_ms()
        payload = [{"source": s, "target": t, "rank": r, "seen": ts} for s, t, r in edges]
        return sum(r["edges"] for r in self.write("upsert_edges", payload, batch=batch))

    def prune_edges(self, listed: dict[str, list[str]]) -> int:
        """Remove edges from each source to targets it no longer lists."""
        payload = [{"source": s, "targets": t} for s, t in listed.items()]
        return sum(r["removed"] for r in self.write("prune_edges", payload))

    # ------------------------------------------------------------------ reads

    def counts(self) -> dict[str, int]:
        return self.read("counts")[0]

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        rows = self.read("get_image", id=image_id)
        if not rows:
            return None
        row = rows[0]
        return {**row["image"], "out_degree": row["out_degree"], "in_degree": row["in_degree"]}

    def get_images(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {r["image"]["id"]: r["image"] for r in self.read("get_images", ids=list(ids))}

    def similar(self, image_id: str) -> list[dict[str, Any]]:
        return self.read("similar_of", id=image_id)

    def neighborhood(
        self, image_id: str, depth: int, limit: int | None = None, properties: bool = True
    ) -> Subgraph:
        """Images within ``depth`` hops of ``image_id`` (either direction) and the edges among them.

        Expanded one hop at a time so each node's hop distance is exact, and so ``limit`` stops
        the walk early instead of materialising a huge neighbourhood first. With a limit, nodes
        are admitted in breadth-first order (ties by id) until the limit is reached. Raises
        ``KeyError`` when the image does not exist.

        One read transaction (the element-id join of ``_Walk`` relies on it: element ids are
        only stable within a transaction) and one statement per hop, the first also proving
        the image exists: each ring comes with its images' properties and out-edges as one
        record, so no statement fetches nodes or edges again afterwards. That keeps both the
        round trips and the driver's decoding, the bulk of the cost, to a minimum.
        """
        start_q = cypher.load("neighborhood_start")
        ring_q = cypher.load("neighborhood_ring")

        def room(admitted: int) -> int:
            # One more than can be admitted, so a full ring shows it was cut.
            return _NO_LIMIT if limit is None else max(0, limit - admitted) + 1

        def work(tx: ManagedTransaction) -> Subgraph | None:
            first = tx.run(start_q, id=image_id, properties=properties, room=room(1)).single()
            if first is None:
                return None
            walk = _Walk(first["start"], limit)
            ring = first["ring"]
            for hop in range(1, depth + 1):
                if not walk.frontier:
                    break
                if hop > 1:
                    ring = tx.run(
                        ring_q,
                        frontier=walk.frontier,
                        known=walk.known(),
                        properties=properties,
                        room=room(len(walk.sub.depth)),
                    ).single(strict=True)["ring"]
                if not walk.admit(ring, hop):
                    break
            return walk.finish(properties)

        with self.driver.session(database=self.database) as session:
            sub = self._call(lambda: session.execute_read(work))
        if sub is None:
            raise KeyError(image_id)
        return sub

    def shortest_path(
        self, source: str, target: str, max_hops: int
    ) -> tuple[list[str], list[dict[str, Any]]] | None:
        """The ids along a shortest undirected SIMILAR_TO path, and its edges; None if none."""
        if source == target:
            return ([source], []) if self.get_images([source]) else None
        rows = self.read("shortest_path", source=source, target=target, max_hops=max_hops)
        if not rows:
            return None
        return rows[0]["ids"], rows[0]["edges"]

    def export_subgraph(self, ids: Sequence[str], properties: bool = True) -> Subgraph:
        """The given images (those that exist) and every SIMILAR_TO edge between two of them.

        ``properties=False`` leaves the nodes as ``{"id": ...}``: the edge statement already
        tells which images exist, so their properties are not read at all (analysis needs
        none, and decoding 5,000 property maps costs more than the analysis of their graph).
        """
        wanted = sorted(set(ids))
        rows = self.read("edges_among", ids=wanted)
        nodes = (
            self.get_images(wanted)
            if properties
            else {r["source"]: {"id": r["source"]} for r in rows}
        )
        sub = Subgraph(nodes=nodes)
        sub.edges = sorted(
            (r["source"], target, rank)
            for r in rows
            for target, rank in r["out"]
            if target in nodes
        )
        return sub

    def iter_export(
        self, page: int = 2000
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every image with its outgoing edges, in id order, a page at a time."""
        after = ""
        while True:
            rows = self.read("export_page", after=after, limit=page)
            if not rows:
                return
            for row in rows:
                yield row["image"], row["edges"]
            after = rows[-1]["image"]["id"]

    def export_all(self) -> Subgraph:
        sub = Subgraph()
        for image, edges in self.iter_export():
            sub.nodes[image["id"]] = image
            sub.edges.extend((image["id"], e["target"], e["rank"]) for e in edges)
        return sub
