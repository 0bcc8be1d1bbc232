"""Analysis endpoints.

- ``GET|POST /analysis``: measures of one bounded subgraph, computed while you wait.
- ``GET /analysis/compare``: several seeds and depths side by side, with their overlap.
- ``POST /analysis/jobs`` (token), ``GET /analysis/jobs[/{id}]``, ``GET /analysis/latest``,
  ``GET /analysis/communities/{n}``: whole-graph analysis as a background job whose results
  are written onto the images and read back here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from lookalike.analysis import AnalysisOptions, build_graph, compare, summarize
from services.api import params, selection
from services.api.auth import mutating
from services.api.context import ctx
from services.api.errors import ApiError, bad_request, not_found

bp = Blueprint("analysis", __name__)

MAX_TOP_K = 100
MAX_COMPARE = 12
JOB_ID = re.compile(r"^[0-9a-f]{1,64}$")
OPTION_KEYS = ("top_k", "communities", "membership")


def _options(source: Mapping[str, Any]) -> AnalysisOptions:
    return AnalysisOptions(
        top_k=params.integer(source.get("top_k"), "top_k", 1, MAX_TOP_K, 10),
        communities=params.boolean(source.get("communities"), "communities", True),
        membership=params.boolean(source.get("membership"), "membership", False),
    )


def _analyse(source: Mapping[str, Any]) -> Response:
    params.reject_unknown(source, (*selection.SELECTION_KEYS, *OPTION_KEYS), "parameter")
    sel = selection.parse(source, ctx())
    options = _options(source)
    sub = selection.load(ctx(), sel, max_nodes=ctx().settings.api_max_nodes)
    result = summarize(build_graph(sub.nodes, sub.edges), options)
    return jsonify({"subgraph": sel.describe(), **result})


@bp.get("/analysis")
def analyse_get() -> Response:
    return _analyse(request.args)


@bp.post("/analysis")
def analyse_post() -> Response:
    return _analyse(params.json_object(request.get_json(silent=True), "request body (JSON)"))


@bp.get("/analysis/compare")
def analyse_compare() -> Response:
    params.reject_unknown(request.args, ("seeds", "depths", "top_k", "communities"),
                          "query parameter")
    settings = ctx().settings
    seeds = params.id_list(request.args.get("seeds"), "seeds", MAX_COMPARE)
    depths = params.int_list(request.args.get("depths", "1"), "depths", 1,
                             settings.api_max_depth, settings.api_max_depth)
    if len(seeds) * len(depths) > MAX_COMPARE:
        raise bad_request(
            f"{len(seeds)} seeds x {len(depths)} depths = {len(seeds) * len(depths)} subgraphs; "
            f"at most {MAX_COMPARE} can be compared at once", "seeds",
        )
    options = AnalysisOptions(
        top_k=params.integer(request.args.get("top_k"), "top_k", 1, MAX_TOP_K, 5),
        communities=params.boolean(request.args.get("communities"), "communities", True),
    )
    labelled = []
    for seed in seeds:
        for depth in depths:
            sel = selection.Selection("seed", seed=seed, depth=depth)
            sub = selection.load(ctx(), sel, max_nodes=settings.api_max_nodes)
            labelled.append((f"{seed}@{depth}", build_graph(sub.nodes, sub.edges)))
    result = compare(labelled, options)
    result["subgraphs"] = [{"seed": s, "depth": d} for s in seeds for d in depths]
    return jsonify(result)


# ------------------------------------------------------------------ background jobs


def _jobs() -> Any:
    try:
        from workers import analysis as jobs
    except ImportError as exc:
        raise ApiError(503, f"background analysis is not available here ({exc})") from exc
    return jobs


def _job_id(raw: str) -> str:
    if not JOB_ID.match(raw or ""):
        raise bad_request(f"{raw[:40]!r} is not an analysis job id (lowercase hex)", "id")
    return raw


@bp.post("/analysis/jobs")
@mutating
def start_job() -> Response:
    body = (params.json_object(request.get_json(silent=True), "request body (JSON)")
            if request.get_data() else {})
    params.reject_unknown(body, ("top_k",), "field")
    top_k = params.integer(body.get("top_k"), "top_k", 1, MAX_TOP_K, 20)
    job = _jobs().submit(ctx().settings, ctx().store, top_k=top_k)
    response = jsonify(job)
    response.status_code = 202
    response.headers["Location"] = f"/analysis/jobs/{job['id']}"
    return response


@bp.get("/analysis/jobs")
def list_jobs() -> Response:
    params.reject_unknown(request.args, ("limit",), "query parameter")
    limit = params.integer(request.args.get("limit"), "limit", 1, 100, 20)
    return jsonify({"jobs": _jobs().list_jobs(ctx().store, limit)})


@bp.get("/analysis/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    params.reject_unknown(request.args, (), "query parameter")
    job = _jobs().get_job(ctx().store, _job_id(job_id))
    if job is None:
        raise not_found(f"no analysis job with id {job_id!r}", "id")
    return jsonify(job)


@bp.get("/analysis/latest")
def latest() -> Response:
    params.reject_unknown(request.args, (), "query parameter")
    job = _jobs().latest_done(ctx().store)
    if job is None:
        raise not_found(
            "no whole-graph analysis has finished yet; start one with POST /analysis/jobs"
        )
    return jsonify(job)


@bp.get("/analysis/communities/<community>")
def community_members(community: str) -> Response:
    params.reject_unknown(request.args, ("limit",), "query parameter")
    number = params.integer(community, "community", 0, 10_000_000)
    limit = params.integer(request.args.get("limit"), "limit", 1, ctx().settings.api_max_nodes,
                           100)
    job = _jobs().latest_done(ctx().store)
    if job is None:
        raise not_found(
            "no whole-graph analysis has finished yet; start one with POST /analysis/jobs"
        )
    rows = ctx().store.read("api_community_members", community=number, analysis_id=job["id"],
                            limit=limit)
    if not rows:
        raise not_found(f"community {number} does not exist in analysis {job['id']}",
                        "community")
    return jsonify({"community": number, "analysis_id": job["id"], "images": rows})
