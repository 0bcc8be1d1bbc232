"""``POST /cypher``: read-only ad-hoc Cypher with a time limit and a row limit.

The statement is vetted by ``cypher_guard`` (writes refused however they are dressed up) and
run by ``adhoc`` in a READ transaction that is always rolled back.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from services.api import params
from services.api.adhoc import QueryBusy, QueryFailed, QueryTimeout, QueryWrote
from services.api.context import ctx
from services.api.cypher_guard import CypherRefused, vet_read_only
from services.api.errors import ApiError, bad_request

bp = Blueprint("cypher", __name__)

MAX_PARAMS_DEPTH = 5


def _check_params(value: Any, depth: int = 0) -> None:
    """Parameters are data: JSON scalars, lists and maps, not too deeply nested."""
    if depth > MAX_PARAMS_DEPTH:
        raise bad_request(f"params are nested deeper than {MAX_PARAMS_DEPTH} levels", "params")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise bad_request("params keys must be strings", "params")
            _check_params(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_params(item, depth + 1)


@bp.post("/cypher")
def run_cypher() -> Response:
    body = params.json_object(
        request.get_json(silent=True), 'request body (JSON: {"query": "...", "params": {}})'
    )
    params.reject_unknown(body, ("query", "params", "max_rows"), "field")
    settings = ctx().settings
    try:
        query = vet_read_only(body.get("query"))
    except CypherRefused as exc:
        raise ApiError(exc.status, str(exc), parameter="query") from None
    query_params = body.get("params") or {}
    if not isinstance(query_params, dict):
        raise bad_request("params must be a JSON object of query parameters", "params")
    _check_params(query_params)
    max_rows = params.integer(
        body.get("max_rows"), "max_rows", 1, settings.cypher_max_rows, settings.cypher_max_rows
    )
    try:
        result = ctx().adhoc.run(query, query_params, settings.cypher_timeout_s, max_rows)
    except QueryFailed as exc:
        raise ApiError(400, f"the graph server rejected the query: {exc}", parameter="query"
                       ) from None
    except QueryWrote as exc:
        raise ApiError(403, str(exc), parameter="query") from None
    except QueryTimeout as exc:
        raise ApiError(408, str(exc), parameter="query") from None
    except QueryBusy as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    return jsonify({
        "columns": result.columns, "rows": result.rows, "row_count": len(result.rows),
        "truncated": result.truncated, "max_rows": max_rows,
    })
