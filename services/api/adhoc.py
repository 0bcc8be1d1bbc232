"""Running vetted ad-hoc Cypher: time limit, row limit, never committed.

The statement runs through ``GraphStore.read_rolled_back``: an explicit READ transaction
that is ALWAYS rolled back, whose result summary is checked for updates, so on ArcadeDB
(which ignores the read access mode) a write that slipped past ``cypher_guard`` would still
leave nothing behind.

The time limit is enforced twice: the server gets it as the transaction timeout (Neo4j
enforces it; ArcadeDB ignores it), and the API stops waiting after it. A query abandoned that
way keeps one of a few query slots until the server finishes it, so runaway queries cannot
pile up: when every slot is busy the endpoint answers 503 instead of starting another.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from neo4j.exceptions import Neo4jError
from neo4j.graph import Node, Path, Relationship

from lookalike.graph import GraphStore


class QueryFailed(ValueError):
    """The server rejected the statement (syntax, semantics); the message is the server's."""


class QueryTimeout(TimeoutError):
    pass


class QueryBusy(RuntimeError):
    pass


class QueryWrote(RuntimeError):
    """The statement changed the graph (and was rolled back)."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


def jsonable(value: Any) -> Any:
    """Graph values as plain JSON: nodes and relationships become maps, temporal values ISO
    strings, bytes base64, non-finite floats strings (JSON has no NaN)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Node):
        return {"labels": sorted(value.labels), "properties": jsonable(dict(value))}
    if isinstance(value, Relationship):
        return {
            "type": value.type,
            "start": jsonable(dict(value.start_node)) if value.start_node else None,
            "end": jsonable(dict(value.end_node)) if value.end_node else None,
            "properties": jsonable(dict(value)),
        }
    if isinstance(value, Path):
        return {
            "nodes": [jsonable(n) for n in value.nodes],
            "relationships": [jsonable(r) for r in value.relationships],
        }
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return value.isoformat()
    iso = getattr(value, "iso_format", None)  # neo4j.time types
    if callable(iso):
        return iso()
    if hasattr(value, "srid") and hasattr(value, "x"):  # neo4j.spatial points
        return {"srid": value.srid, "coordinates": list(value)}
    return str(value)


class AdhocRunner:
    """Runs read-only statements for the API with a few concurrent slots."""

    def __init__(self, store: GraphStore, slots: int = 2) -> None:
        self.store = store
        self.slots = threading.BoundedSemaphore(slots)

    def _run(
        self, text: str, params: dict[str, Any], timeout: float, max_rows: int
    ) -> QueryResult:
        store = self.store

        def work() -> QueryResult:
            columns, rows, truncated, wrote = store.read_rolled_back(
                text, params, timeout, max_rows, convert=jsonable
            )
            if wrote:
                raise QueryWrote("the statement tried to change the graph; it was rolled back")
            return QueryResult(columns, rows, truncated)

        try:
            # The store maps an unreachable server to GraphUnavailable (503), like every read.
            return work()
        except Neo4jError as exc:
            code = exc.code or ""
            if "TransactionTimedOut" in code or "Terminated" in code:
                raise QueryTimeout(
                    f"the query ran longer than the {timeout:g} s limit; narrow the MATCH or "
                    "add a LIMIT"
                ) from exc
            raise QueryFailed(exc.message or str(exc)) from exc

    def run(
        self, text: str, params: dict[str, Any], timeout: float, max_rows: int
    ) -> QueryResult:
        if not self.slots.acquire(blocking=False):
            raise QueryBusy(
                "every ad-hoc query slot is busy (a slow query is still running); try again "
                "shortly"
            )
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["result"] = self._run(text, params, timeout, max_rows)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                self.slots.release()
                done.set()

        # A daemon thread, not an executor: an abandoned query must not hold up the
        # process when it exits (executors join their threads at exit).
        threading.Thread(target=work, name="adhoc-cypher", daemon=True).start()
        if not done.wait(timeout + 0.5):
            raise QueryTimeout(
                f"the query ran longer than the {timeout:g} s limit; narrow the MATCH or add a "
                "LIMIT"
            )
        if "error" in outcome:
            raise outcome["error"]
        return cast(QueryResult, outcome["result"])
