"""Running vetted ad-hoc Cypher: time limit, row limit, never committed, fair to clients.

The statement runs through ``GraphStore.read_rolled_back``: an explicit READ transaction
that is ALWAYS rolled back, whose result summary is checked for updates, so on ArcadeDB
(which ignores the read access mode) a write that slipped past ``cypher_guard`` would still
leave nothing behind.

The time limit stops the work on the graph server, not only the wait for it: the server gets
the limit as the transaction timeout (Neo4j enforces it), and when the API stops waiting it
tells the server to end the statement (``GraphStore.terminate_tagged``: ArcadeDB ignores the
timeout and would otherwise keep computing for minutes after the client gave up).

A few query slots bound the work running at once, and each client (remote address) may hold
only one of them, so one client cannot lock the others out: its second query meanwhile is
answered 429, and when every slot is busy the endpoint answers 503.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import threading
import uuid
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
    """Every query slot is taken."""


class QueryLimited(RuntimeError):
    """This client already has a query running."""


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


# Query slots per API process, and how many of them one client may hold.
SLOTS = 4
SLOTS_PER_CLIENT = 1
# How long a terminated statement may take to give its connection back.
TERMINATE_GRACE_S = 10.0


class AdhocRunner:
    """Runs read-only statements for the API in a few slots, at most one per client."""

    def __init__(
        self, store: GraphStore, slots: int = SLOTS, per_client: int = SLOTS_PER_CLIENT
    ) -> None:
        self.store = store
        self.slots = slots
        self.per_client = per_client
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # client -> queries holding a slot

    def _run(
        self, text: str, params: dict[str, Any], timeout: float, max_rows: int, tag: str
    ) -> QueryResult:
        store = self.store

        def work() -> QueryResult:
            columns, rows, truncated, wrote = store.read_rolled_back(
                text, params, timeout, max_rows, convert=jsonable, tag=tag
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
                raise _timeout(timeout) from exc
            raise QueryFailed(exc.message or str(exc)) from exc
        except RecursionError:
            # Reading (or converting) a value nested hundreds of levels deep, which a query
            # can build (reduce(acc = [], i IN range(1, 1000) | [acc])).
            raise QueryFailed(
                "the result holds lists or maps nested too deeply to return; return something "
                "flatter"
            ) from None

    def _take_slot(self, client: str) -> None:
        with self._lock:
            if self._running.get(client, 0) >= self.per_client:
                raise QueryLimited(
                    "you already have an ad-hoc query running (one at a time per client); "
                    "wait for its answer before sending the next"
                )
            if sum(self._running.values()) >= self.slots:
                raise QueryBusy(
                    "every ad-hoc query slot is busy with other clients' queries; try again shortly"
                )
            self._running[client] = self._running.get(client, 0) + 1

    def _free_slot(self, client: str) -> None:
        with self._lock:
            self._running[client] -= 1
            if not self._running[client]:
                del self._running[client]

    def run(
        self,
        text: str,
        params: dict[str, Any],
        timeout: float,
        max_rows: int,
        client: str = "",
    ) -> QueryResult:
        self._take_slot(client)
        tag = f"lookalike-adhoc-{uuid.uuid4().hex}"
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["result"] = self._run(text, params, timeout, max_rows, tag)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                # Freed when the statement has really ended, not when the API stops waiting.
                self._free_slot(client)
                done.set()

        # A daemon thread, not an executor: should the server not end a statement, it must
        # not hold up the process when it exits (executors join their threads at exit).
        threading.Thread(target=work, name="adhoc-cypher", daemon=True).start()
        if not done.wait(timeout + 0.5):
            if self.store.terminate_tagged(tag):
                done.wait(TERMINATE_GRACE_S)  # so the answer comes after the work ended
            raise _timeout(timeout)
        if "error" in outcome:
            raise outcome["error"]
        return cast(QueryResult, outcome["result"])


def _timeout(limit: float) -> QueryTimeout:
    return QueryTimeout(
        f"the query ran longer than the {limit:g} s limit and was stopped; narrow the MATCH "
        "or add a LIMIT"
    )
