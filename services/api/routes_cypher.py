"""``POST /cypher``: read-only ad-hoc Cypher with a time limit and a row limit.

The statement is vetted by ``cypher_guard`` (writes refused however they are dressed up) and
run by ``adhoc`` in a READ transaction that is always rolled back, stopped on the server at
the time limit, one at a time per client.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import Field

from services.api import answers
from services.api.adhoc import QueryBusy, QueryFailed, QueryLimited, QueryTimeout, QueryWrote
from services.api.context import ctx
from services.api.contract import Body, endpoint
from services.api.cypher_guard import CypherRefused, vet_read_only
from services.api.errors import ApiError, bad_request
from services.api.fields import how_many_by

bp = Blueprint("cypher", __name__)

MAX_PARAMS_DEPTH = 5


class CypherBody(Body):
    query: str = Field(
        min_length=1, max_length=20_000, pattern=r"\S", description="one read-only Cypher statement"
    )
    params: dict[str, Any] | None = Field(None, description="its parameters ($name)")
    max_rows: how_many_by(
        "cypher_max_rows", "at most this many rows (default: the limit)", default_is_limit=True
    )


def _check_params(value: Any, depth: int = 0) -> None:
    """Parameters are data: JSON scalars, lists and maps, not too deeply nested."""
    if depth > MAX_PARAMS_DEPTH:
        raise bad_request(f"params are nested deeper than {MAX_PARAMS_DEPTH} levels", "params")
    if isinstance(value, dict):
        for item in value.values():
            _check_params(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_params(item, depth + 1)


@endpoint(
    bp,
    "POST",
    "/cypher",
    body=CypherBody,
    tags=["cypher"],
    summary="Read-only ad-hoc Cypher (writes are refused)",
    responses={
        200: ("rows (truncated at max_rows)", answers.CypherResult),
        400: "malformed query, or the graph server rejected it",
        403: "the statement would write; refused",
        408: "ran longer than LOOKALIKE_CYPHER_TIMEOUT_S; stopped",
        429: "this client already has a query running",
        503: "every query slot is busy, or the graph is not reachable",
    },
)
def run_cypher(body: CypherBody) -> Response:
    settings = ctx().settings
    try:
        query = vet_read_only(body.query)
    except CypherRefused as exc:
        raise ApiError(exc.status, str(exc), parameter="query") from None
    query_params = body.params or {}
    _check_params(query_params)
    try:
        result = ctx().adhoc.run(
            query,
            query_params,
            settings.cypher_timeout_s,
            body.max_rows,
            client=request.remote_addr or "",
        )
    except QueryFailed as exc:
        raise ApiError(
            400, f"the graph server rejected the query: {exc}", parameter="query"
        ) from None
    except QueryWrote as exc:
        raise ApiError(403, str(exc), parameter="query") from None
    except QueryTimeout as exc:
        raise ApiError(408, str(exc), parameter="query") from None
    except QueryLimited as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": "1"}) from None
    except QueryBusy as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    return jsonify(
        {
            "columns": result.columns,
            "rows": result.rows,
            "row_count": len(result.rows),
            "truncated": result.truncated,
            "max_rows": body.max_rows,
        }
    )
