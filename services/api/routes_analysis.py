"""Analysis endpoints.

- ``GET|POST /analysis``: measures of one bounded subgraph, computed while you wait.
- ``GET /analysis/compare``: several seeds and depths side by side, with their overlap.
- ``POST /analysis/jobs`` (token), ``GET /analysis/jobs[/{id}]``, ``GET /analysis/latest``,
  ``GET /analysis/communities/{n}``: whole-graph analysis as a background job whose results
  are written onto the images and read back here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field

from lookalike.analysis import AnalysisOptions, build_graph, compare, summarize
from services.api import answers, selection
from services.api.context import ctx
from services.api.contract import Body, Path, Query, endpoint
from services.api.errors import ApiError, bad_request, not_found
from services.api.fields import Depth, ImageId, JobId, comma_list, how_many, how_many_by

bp = Blueprint("analysis", __name__)

MAX_TOP_K = 100
MAX_COMPARE = 12
NO_ANALYSIS = "no whole-graph analysis has finished yet; start one with POST /analysis/jobs"


class Measures(BaseModel):
    """What to compute, beside the subgraph (the query's and the body's alike)."""

    top_k: how_many(MAX_TOP_K, "how many top images per centrality") = 10
    communities: bool = Field(True, description="find Leiden communities")
    membership: bool = Field(False, description="include the community of every image")


class AnalysisQuery(Measures, selection.SelectionQuery):
    """A subgraph and what to compute, in the query string."""


class AnalysisBody(Measures, selection.SelectionBody):
    """A subgraph and what to compute, as a JSON body."""


class CompareQuery(Query):
    seeds: comma_list(ImageId, max_items=MAX_COMPARE) = Field(
        description=f"images to compare (seeds x depths: at most {MAX_COMPARE} subgraphs)"
    )
    depths: comma_list(Depth, max_items="api_max_depth") = Field(
        [1], description="the depths to take each seed's neighbourhood at"
    )
    top_k: how_many(MAX_TOP_K, "top images per centrality") = 5
    communities: bool = Field(True, description="find Leiden communities")


class JobBody(Body):
    top_k: how_many(MAX_TOP_K, "how many top images per centrality") = 20


class JobsQuery(Query):
    limit: how_many(100, "how many") = 20


class JobArg(Path):
    id: JobId


class CommunityArg(Path):
    community: int = Field(ge=0, le=10_000_000, description="community number")


class MembersQuery(Query):
    limit: how_many_by("api_max_nodes", "how many") = 100


def _analyse(given: AnalysisQuery | AnalysisBody) -> Response:
    sel = selection.chosen(given)
    options = AnalysisOptions(
        top_k=given.top_k, communities=given.communities, membership=given.membership
    )
    sub = selection.load(ctx(), sel, max_nodes=ctx().settings.api_max_nodes, properties=False)
    result = summarize(build_graph(sub.nodes, sub.edges), options)
    return jsonify({"subgraph": sel.describe(), **result})


_ANALYSED = {
    200: ("the measures", answers.Analysis),
    404: "an image, id or crawl that is not in the graph",
}


@endpoint(
    bp,
    "GET",
    "/analysis",
    query=AnalysisQuery,
    tags=["analysis"],
    summary="Measures of one bounded subgraph (seed+depth, ids or crawl)",
    responses=_ANALYSED,
)
def analyse_get(query: AnalysisQuery) -> Response:
    return _analyse(query)


@endpoint(
    bp,
    "POST",
    "/analysis",
    body=AnalysisBody,
    tags=["analysis"],
    summary="Same as GET, with the selection as a JSON body (long id lists)",
    responses=_ANALYSED,
)
def analyse_post(body: AnalysisBody) -> Response:
    return _analyse(body)


@endpoint(
    bp,
    "GET",
    "/analysis/compare",
    query=CompareQuery,
    tags=["analysis"],
    summary=f"Several seeds and depths side by side (at most {MAX_COMPARE} subgraphs)",
    responses={
        200: ("one analysis per seed x depth", answers.Comparison),
        404: "a seed that is not in the graph",
    },
)
def analyse_compare(query: CompareQuery) -> Response:
    settings = ctx().settings
    seeds, depths = query.seeds, query.depths
    if len(seeds) * len(depths) > MAX_COMPARE:
        raise bad_request(
            f"{len(seeds)} seeds x {len(depths)} depths = {len(seeds) * len(depths)} subgraphs; "
            f"at most {MAX_COMPARE} can be compared at once",
            "seeds",
        )
    options = AnalysisOptions(top_k=query.top_k, communities=query.communities)
    labelled = []
    for seed in seeds:
        for depth in depths:
            sel = selection.Selection("seed", seed=seed, depth=depth)
            sub = selection.load(ctx(), sel, max_nodes=settings.api_max_nodes, properties=False)
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


@endpoint(
    bp,
    "POST",
    "/analysis/jobs",
    body=JobBody,
    body_required=False,
    mutating=True,
    summary="Start a whole-graph analysis in the background",
    tags=["analysis"],
    responses={202: ("queued", answers.Job)},
)
def start_job(body: JobBody) -> Response:
    job = _jobs().submit(ctx().settings, ctx().store, top_k=body.top_k)
    response = jsonify(job)
    response.status_code = 202
    response.headers["Location"] = f"/analysis/jobs/{job['id']}"
    return response


@endpoint(
    bp,
    "GET",
    "/analysis/jobs",
    query=JobsQuery,
    tags=["analysis"],
    summary="Recent analysis jobs",
    responses={200: ("jobs, newest first", answers.JobList)},
)
def list_jobs(query: JobsQuery) -> Response:
    return jsonify({"jobs": _jobs().list_jobs(ctx().store, query.limit)})


@endpoint(
    bp,
    "GET",
    "/analysis/jobs/<id>",
    path=JobArg,
    tags=["analysis"],
    summary="One analysis job, with its summary when done",
    responses={200: ("the job", answers.Job), 404: "no such job"},
)
def get_job(id: str) -> Response:  # the route's own name for it
    job = _jobs().get_job(ctx().store, id)
    if job is None:
        raise not_found(f"no analysis job with id {id!r}", "id")
    return jsonify(job)


@endpoint(
    bp,
    "GET",
    "/analysis/latest",
    tags=["analysis"],
    summary="The newest finished whole-graph analysis",
    responses={200: ("the job", answers.Job), 404: NO_ANALYSIS},
)
def latest() -> Response:
    job = _jobs().latest_done(ctx().store)
    if job is None:
        raise not_found(NO_ANALYSIS)
    return jsonify(job)


@endpoint(
    bp,
    "GET",
    "/analysis/communities/<community>",
    path=CommunityArg,
    query=MembersQuery,
    tags=["analysis"],
    summary="Images of one community of the latest whole-graph analysis",
    responses={
        200: ("members, most central first", answers.CommunityMembers),
        404: "no finished analysis, or no such community in it",
    },
)
def community_members(community: int, query: MembersQuery) -> Response:
    job = _jobs().latest_done(ctx().store)
    if job is None:
        raise not_found(NO_ANALYSIS)
    rows = ctx().store.read(
        "api_community_members", community=community, analysis_id=job["id"], limit=query.limit
    )
    if not rows:
        raise not_found(
            f"community {community} does not exist in analysis {job['id']}", "community"
        )
    return jsonify({"community": community, "analysis_id": job["id"], "images": rows})
