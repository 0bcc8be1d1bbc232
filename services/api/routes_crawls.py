"""Crawl endpoints: start, list, read and cancel crawls through the crawler's Python API
(``workers.control``). Starting and cancelling change things, so they need the bearer token
when one is configured.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify
from pydantic import Field

from services.api import answers
from services.api.context import ctx
from services.api.contract import Body, Path, Query, endpoint
from services.api.crawls import control
from services.api.errors import bad_request, not_found
from services.api.fields import CrawlDepth, CrawlId, how_many, id_list

bp = Blueprint("crawls", __name__)


class CrawlBody(Body):
    seeds: id_list("max_seeds") = Field(description="images to start from")
    depth: CrawlDepth = 2
    max_images: int | None = Field(None, ge=1, description="stop after this many images")


class CrawlsQuery(Query):
    limit: how_many(500, "how many") = 50
    offset: int = Field(0, ge=0, le=1_000_000, description="how many newer crawls to skip")


class CrawlArg(Path):
    id: CrawlId


NO_CRAWL = "no such crawl"


@endpoint(
    bp,
    "POST",
    "/crawls",
    body=CrawlBody,
    mutating=True,
    tags=["crawls"],
    summary="Start a breadth-first crawl from seed images",
    responses={201: ("queued", answers.Crawl)},
)
def start(body: CrawlBody) -> Response:
    try:
        record = control().start_crawl(ctx().settings, body.seeds, body.depth, body.max_images)
    except ValueError as exc:  # what only the crawler knows (the models checked the rest)
        message = str(exc)
        field = next((f for f in CrawlBody.model_fields if message.startswith(f)), "seeds")
        raise bad_request(message, field) from None
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = f"/crawls/{record['id']}"
    return response


@endpoint(
    bp,
    "GET",
    "/crawls",
    query=CrawlsQuery,
    tags=["crawls"],
    summary="Recent crawls, newest first, a page at a time",
    responses={200: ("crawls, newest first", answers.CrawlList)},
)
def list_crawls(query: CrawlsQuery) -> Response:
    settings = ctx().settings
    crawls = control().list_crawls(settings, limit=query.limit, offset=query.offset)
    return jsonify(
        {
            "crawls": crawls,
            "total": control().count_crawls(settings),
            "offset": query.offset,
            "limit": query.limit,
        }
    )


@endpoint(
    bp,
    "GET",
    "/crawls/<id>",
    path=CrawlArg,
    tags=["crawls"],
    summary="One crawl: status and counts",
    responses={200: ("the crawl", answers.Crawl), 404: NO_CRAWL},
)
def get(id: str) -> Response:  # the route's own name for it
    record = control().get_crawl(ctx().settings, id)
    if record is None:
        # Redis forgets crawls after a while; the graph keeps a finished crawl's summary.
        rows = ctx().store.read("api_get_crawl", id=id)
        if not rows:
            raise not_found(f"no crawl with id {id!r}", "id")
        record = dict(rows[0]["crawl"])
        if isinstance(record.get("counts"), str):
            record["counts"] = json.loads(record["counts"])
        record["source"] = "graph"
    return jsonify(record)


@endpoint(
    bp,
    "DELETE",
    "/crawls/<id>",
    path=CrawlArg,
    mutating=True,
    tags=["crawls"],
    summary="Cancel a crawl",
    responses={200: ("cancelled", answers.Crawl), 404: NO_CRAWL},
)
def cancel(id: str) -> Response:
    record = control().cancel_crawl(ctx().settings, id)
    if record is None:
        raise not_found(f"no crawl with id {id!r}", "id")
    return jsonify(record)
