"""Whole-graph analysis as a background job: communities and centralities of every image.

Why a job: Louvain, PageRank and (sampled) betweenness over the whole collection take
minutes, far longer than an HTTP request should wait. The API records an ``(:Analysis)`` node
(status ``queued``) and queues ``lookalike.analyse_graph``; a worker exports the graph, runs
``lookalike.analysis``, writes ``community``, ``pagerank``, ``degree`` and ``analysis_id`` onto
every image in batches, and stores the summary on the Analysis node (``done`` or ``failed``
with the error), where the API reads it later.

Idempotent: with ``acks_late`` a job may run twice after a worker dies; the second run
recomputes the same deterministic result (fixed seeds) and overwrites it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from lookalike import ids
from lookalike.analysis import AnalysisOptions, build_graph, whole_graph_scores
from lookalike.graph import GraphStore, now_ms
from lookalike.settings import Settings, load_settings
from workers.app import app

log = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "done", "failed")
WRITE_BATCH = 5000


def _decode(job: dict[str, Any]) -> dict[str, Any]:
    """A job node as the API shows it: JSON text properties parsed."""
    out = dict(job)
    for key in ("summary", "params"):
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
            connection=conn,
        )
    return job


def run_analysis(store: GraphStore, job_id: str, top_k: int = 20) -> dict[str, Any]:
    """Do the work of one job against ``store``: compute, write back, record the summary."""
    started = now_ms()
    update_job(store, job_id, status="running", started_at=started)
    nodes: list[str] = []
    edges: list[tuple[str, str, Any]] = []
    for image, out in store.iter_export():
        nodes.append(image["id"])
        edges.extend((image["id"], e["target"], e["rank"]) for e in out)
    graph = build_graph(nodes, edges)
    scores, summary = whole_graph_scores(graph, AnalysisOptions(top_k=top_k))
    rows = [{"id": node, **values} for node, values in scores.items()]
    written = sum(
        r["images"] for r in store.write(
            "analysis_write_scores", rows, batch=WRITE_BATCH, analysis_id=job_id
        )
    )
    summary["images_scored"] = written
    summary["seconds"] = round((now_ms() - started) / 1000, 3)
    job = update_job(
        store, job_id, status="done", finished_at=now_ms(),
        summary=json.dumps(summary, sort_keys=True),
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
            log.warning("analysis job %s does not exist in database %s; skipped", job_id,
                        database)
            return "missing"
        try:
            run_analysis(store, job_id, top_k=top_k)
        except Exception as exc:
            log.exception("analysis job %s failed", job_id)
            update_job(store, job_id, status="failed", finished_at=now_ms(),
                       error=f"{type(exc).__name__}: {exc}")
            return "failed"
    return "done"
