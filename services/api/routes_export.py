"""``GET /export``: a subgraph (seed and depth, ids, crawl, or the whole graph) as GraphML,
GEXF, node-link JSON or Cytoscape JSON, as a download."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response
from pydantic import Field

from services.api import selection
from services.api.context import ctx
from services.api.contract import endpoint
from services.api.exports import FORMATS, render

bp = Blueprint("export", __name__)

Format = Literal[tuple(FORMATS)]  # type: ignore[valid-type]


class ExportQuery(selection.WholeGraphQuery):
    format: Format = Field("graphml", description="file format")


_FILES = {
    media: {"type": "object"} if media == "application/json" else {"type": "string"}
    for media, _ in FORMATS.values()
}


@endpoint(
    bp,
    "GET",
    "/export",
    query=ExportQuery,
    tags=["export"],
    summary="A subgraph (or the whole graph) as GraphML, GEXF, node-link or Cytoscape JSON",
    responses={200: ("the file", _FILES), 404: "an image, id or crawl that is not in the graph"},
)
def export(query: ExportQuery) -> Response:
    sel = selection.chosen(query)
    # The whole graph is allowed here (exports are downloads, not answers to wait on).
    sub = selection.load(
        ctx(), sel, max_nodes=None if sel.kind == "all" else ctx().settings.api_max_nodes
    )
    media, ext = FORMATS[query.format]
    name = {
        "seed": f"neighborhood-{sel.seed}-d{sel.depth}",
        "ids": "subgraph",
        "crawl": f"crawl-{sel.crawl}",
        "all": "lookalike-graph",
    }[sel.kind]
    return Response(
        render(sub, query.format),
        mimetype=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"'},
    )
