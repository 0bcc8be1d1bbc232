"""``GET /images/{id}/lookalikes`` and ``GET /audit``: learned lookalikes, and the evidence
for (and against) the catalogue's own similar lists. The logic is in ``lookalikes.py``."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify
from pydantic import Field

from services.api import answers
from services.api.context import ctx
from services.api.contract import Query, endpoint
from services.api.fields import how_many
from services.api.lookalikes import audit_page, lookalikes_of
from services.api.routes_images import NO_IMAGE, ImageArg
from services.indexer.audit import SECTIONS

bp = Blueprint("lookalikes", __name__)

MAX_K = 100
MAX_PAGE = 500
Section = Literal[SECTIONS]  # type: ignore[valid-type]


class LookalikesQuery(Query):
    k: how_many(MAX_K, "how many") = 10
    refined: bool = Field(
        False, description="compare the graph-refined embeddings instead of the raw ones"
    )


class AuditQuery(Query):
    section: Section = Field(
        "least_supported",
        description=(
            "least_supported: SIMILAR_TO edges by raw cosine, lowest first; edges: every edge by "
            "(source, rank); unlisted: strong lookalikes the catalogue does not list"
        ),
    )
    offset: int = Field(0, ge=0, le=1_000_000_000, description="skip this many")
    limit: how_many(MAX_PAGE, "page size") = 50


@endpoint(
    bp,
    "GET",
    "/images/<id>/lookalikes",
    path=ImageArg,
    query=LookalikesQuery,
    summary="The images that look most like this one, by embedding cosine",
    tags=["search"],
    responses={
        200: ("lookalikes, best first", answers.Lookalikes),
        404: NO_IMAGE,
        409: "the image has no vector (yet)",
    },
)
def lookalikes(id: str, query: LookalikesQuery) -> Response:
    return jsonify(lookalikes_of(ctx(), id, query.k, query.refined))


@endpoint(
    bp,
    "GET",
    "/audit",
    query=AuditQuery,
    tags=["search"],
    summary="The evidence for each SIMILAR_TO edge, the least supported edges, and "
    "strong lookalikes the catalogue does not list",
    responses={200: ("one page", answers.Audit), 404: "no audit yet (no indexed embeddings)"},
)
def audit(query: AuditQuery) -> Response:
    return jsonify(audit_page(ctx(), query.section, query.offset, query.limit))
