"""Whole-graph analysis as a background job: communities and centralities of every image.

Why a job: reading ~200k images and 1M edges, Leiden, PageRank and sampled betweenness over
them and writing the scores back take most of a minute, far longer than an HTTP request
should wait. The API records an ``(:Analysis)`` node (status ``queued``) and queues
``lookalike.analyse_graph``; a worker reads the graph's ids in pages, runs
``lookalike.analysis``, writes ``community``, ``pagerank``, ``degree`` and ``analysis_id`` onto
every image in batches, and stores the summary on the Analysis node (``done`` or ``failed``
with the error), where the API reads it later. While it runs, the node's ``progress`` says
which phase (export, compute, write) and how far.

Idempotent: with ``acks_late`` a job may run twice after a worker dies; the second run
recomputes the same deterministic result (fixed seeds) and overwrites it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from lookalike import ids
from lookalike.analysis import (
    AnalysisOptions,
    SimilarityGraph,
    WholeGraphScores,
    whole_graph_scores,
)
from lookalike.graph import GraphStore, now_ms
from lookalike.settings import Settings, load_settings
from workers.app import app

log = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "done", "failed")
# Images per page of the read (rows the driver fetches at a time) and per write transaction:
# large enough that per-round-trip costs vanish at 200k images, small enough that one page's
# records stay a few MB.
READ_PAGE = 10_000
WRITE_BATCH = 10_000
PROGRESS_INTERVAL_S = 2.0


def _decode(job: dict[str, Any]) -> dict[str, Any]:
    """A job node as the API shows it: JSON text properties parsed."""
    out = dict(job)
    for key in ("summary", "params", "progress"):
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):  # keep text that is not JSON as it is
                out[key] = json.loads(out[key])
    return out


def create_job(store: GraphStore, params: dict[str, Any]) -> dict[str, Any]:
    job_id = ids.new_job_id()
    rows = store.write(
        "analysis_create_job", id=job_id, now=now_ms(), params=json.dumps(params, sort_keys=True)
    )
    return _decode(rows[0]["job"])


def get_job(store: GraphStore, job_id: str) -> dict[str, Any] | None:
    rows = store.read("analysis_get_job", id=job_id)
    return _decode(rows[0]["job"]) if rows else None


def list_jobs(store: GraphStore, limit: int = 20) -> list[dict[str, Any]]:
    return [_decode(r["job"]) for r in store.read("analysis_list_jobs", limit=limit)]


def latest_done(store: GraphStore) -> dict[str, Any] | None:
    rows = store.read("analysis_latest_done")
    return _decode(rows[0]["job"]) if rows else None


def update_job(store: GraphStore, job_id: str, **props: Any) -> dict[str, Any] | None:
    rows = store.write("analysis_update_job", id=job_id, props=props)
    return _decode(rows[0]["job"]) if rows else None


def submit(settings: Settings, store: GraphStore, top_k: int = 20) -> dict[str, Any]:
    """Record a job and queue it on the broker of ``settings``; returns the job record."""
    job = create_job(store, {"top_k": top_k})
    with app.connection_for_write(settings.redis()) as conn:
        analyse_graph.apply_async(
            kwargs={"job_id": job["id"], "database": settings.neo4j_database, "top_k": top_k},
            connection=conn,  # type: ignore[call-arg]  # see workers/control.py
        )
    return job


class Progress:
    """Where a running job is, on its node (``progress``: phase, done, total), written at
    most every ``interval`` seconds and at every change of phase, so it costs the graph
    almost nothing while ``GET /analysis/jobs/{id}`` shows the job moving."""

    def __init__(
        self, store: GraphStore, job_id: str, interval: float = PROGRESS_INTERVAL_S
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.interval = interval
        self._phase = ""
        self._last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self._phase and now - self._last < self.interval and done < total:
            return
        self._phase, self._last = phase, now
        update_job(
            self.store,
            self.job_id,
            progress=json.dumps({"phase": phase, "done": done, "total": total}),
        )
        log.info("analysis %s: %s %d/%d", self.job_id, phase, done, total)


def read_graph(
    store: GraphStore,
    page: int = READ_PAGE,
    progress: Callable[[str, int, int], None] | None = None,
) -> SimilarityGraph:
    """The whole graph, streamed ``page`` rows at a time (``cypher/analysis_graph``).

    Memory stays near what the graph itself needs: ids become vertex numbers as they arrive
    (one dict entry per image, edges in two integer arrays), and no row outlives its page.
    Images are numbered as first met (a listed image may come later) and renumbered in id
    order at the end.
    """
    total = store.read("analysis_count_images")[0]["images"]
    index: dict[str, int] = {}
    sources: array[int] = array("q")
    targets: array[int] = array("q")
    read = 0
    for row in store.stream("analysis_graph", fetch_size=page):
        source = index.setdefault(row["id"], len(index))
        for target in row["targets"]:
            sources.append(source)
            targets.append(index.setdefault(target, len(index)))
        read += 1
        if progress and read % page == 0:
            progress("export", read, max(total, read))
    if progress:
        progress("export", read, read)
    names = np.array(list(index), dtype=object)
    order = np.argsort(names, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return SimilarityGraph.from_arrays(
        names[order].tolist(),
        position[np.frombuffer(sources, dtype=np.int64)],
        position[np.frombuffer(targets, dtype=np.int64)],
    )


def write_scores(
    store: GraphStore,
    job_id: str,
    scores: WholeGraphScores,
    batch: int = WRITE_BATCH,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Write the scores onto the images, one transaction per ``batch`` rows."""
    written = 0
    for rows in scores.rows(batch):
        written += sum(
            r["images"]
            for r in store.write("analysis_write_scores", rows, batch=batch, analysis_id=job_id)
        )
        if progress:
            progress("write", written, len(scores))
    return written


def run_analysis(
    store: GraphStore,
    job_id: str,
    top_k: int = 20,
    *,
    page: int = READ_PAGE,
    batch: int = WRITE_BATCH,
) -> dict[str, Any]:
    """Do the work of one job against ``store``: read, compute, write back, record the
    summary (with the seconds each phase took)."""
    started = now_ms()
    update_job(store, job_id, status="running", started_at=started)
    progress = Progress(store, job_id)
    clock = time.perf_counter()
    graph = read_graph(store, page, progress)
    read_s = time.perf_counter() - clock
    progress("compute", 0, graph.n)
    clock = time.perf_counter()
    scores, summary = whole_graph_scores(graph, AnalysisOptions(top_k=top_k))
    compute_s = time.perf_counter() - clock
    clock = time.perf_counter()
    summary["images_scored"] = write_scores(store, job_id, scores, batch, progress)
    summary["phase_seconds"] = {
        "read": round(read_s, 3),
        "compute": round(compute_s, 3),
        "write": round(time.perf_counter() - clock, 3),
    }
    summary["seconds"] = round((now_ms() - started) / 1000, 3)
    job = update_job(
        store,
        job_id,
        status="done",
        finished_at=now_ms(),
        summary=json.dumps(summary, sort_keys=True),
        progress=json.dumps({"phase": "done", "done": graph.n, "total": graph.n}),
    )
    return job or {}


@app.task(name="lookalike.analyse_graph")
def analyse_graph(job_id: str, database: str | None = None, top_k: int = 20) -> str:
    """Celery entry point. ``database`` names the graph the API that queued the job reads
    (None: the worker's configured one), so one worker can serve several databases."""
    overrides: dict[str, Any] = {"neo4j_database": database} if database else {}
    settings = load_settings(**overrides)
    with GraphStore.connect(settings) as store:
        if get_job(store, job_id) is None:
            log.warning("analysis job %s does not exist in database %s; skipped", job_id, database)
            return "missing"
        try:
            run_analysis(store, job_id, top_k=top_k)
        except Exception as exc:
            log.exception("analysis job %s failed", job_id)
            update_job(
                store,
                job_id,
                status="failed",
                finished_at=now_ms(),
                error=f"{type(exc).__name__}: {exc}",
            )
            return "failed"
    return "done"
