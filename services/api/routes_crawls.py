"""Crawl endpoints: start, list, read and cancel crawls through the crawler's Python API
(``workers.control``). Starting and cancelling change things, so they need the bearer token
when one is configured.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from services.api import params
from services.api.auth import mutating
from services.api.context import ctx
from services.api.crawls import control, crawl_id
from services.api.errors import bad_request, not_found

bp = Blueprint("crawls", __name__)

CRAWL_FIELDS = ("seeds", "depth", "max_images")


@bp.post("/crawls")
@mutating
def start() -> Response:
    body = params.json_object(request.get_json(silent=True), "request body (JSON)")
    params.reject_unknown(body, CRAWL_FIELDS, "field")
    seeds = body.get("seeds")
    if not isinstance(seeds, list) or not seeds:
        raise bad_request("seeds must be a non-empty list of catalogue image ids", "seeds")
    for seed in seeds:
        params.image_id(seed, "seed")
    depth = 2 if body.get("depth") is None else body["depth"]
    max_images = body.get("max_images")
    try:
        record = control().start_crawl(ctx().settings, seeds, depth, max_images)
    except ValueError as exc:
        message = str(exc)
        field = next((f for f in CRAWL_FIELDS if message.startswith(f)), None)
        raise bad_request(message, field or "seed") from None
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = f"/crawls/{record['id']}"
    return response


@bp.get("/crawls")
def list_crawls() -> Response:
    params.reject_unknown(request.args, ("limit",), "query parameter")
    limit = params.integer(request.args.get("limit"), "limit", 1, 500, 50)
    crawls = control().list_crawls(ctx().settings, limit=limit)
    return jsonify({"crawls": crawls})


@bp.get("/crawls/<cid>")
def get(cid: str) -> Response:
    params.reject_unknown(request.args, (), "query parameter")
    cid = crawl_id(cid)
    record = control().get_crawl(ctx().settings, cid)
    if record is None:
        # Redis forgets crawls after a while; the graph keeps a finished crawl's summary.
        rows = ctx().store.read("api_get_crawl", id=cid)
        if not rows:
            raise not_found(f"no crawl with id {cid!r}", "id")
        record = dict(rows[0]["crawl"])
        if isinstance(record.get("counts"), str):
            record["counts"] = json.loads(record["counts"])
        record["source"] = "graph"
    return jsonify(record)


@bp.delete("/crawls/<cid>")
@mutating
def cancel(cid: str) -> Response:
    cid = crawl_id(cid)
    record = control().cancel_crawl(ctx().settings, cid)
    if record is None:
        raise not_found(f"no crawl with id {cid!r}", "id")
    return jsonify(record)
