"""``GET /export``: a subgraph (seed and depth, ids, crawl, or the whole graph) as GraphML,
GEXF, node-link JSON or Cytoscape JSON, as a download."""

from __future__ import annotations

from flask import Blueprint, Response, request

from services.api import params, selection
from services.api.context import ctx
from services.api.exports import FORMATS, render

bp = Blueprint("export", __name__)


@bp.get("/export")
def export() -> Response:
    params.reject_unknown(
        request.args, ("format", "seed", "depth", "ids", "crawl", "all"), "query parameter"
    )
    fmt = params.choice(request.args.get("format"), "format", FORMATS, "graphml")
    sel = selection.parse(request.args, ctx(), allow_all=True)
    # The whole graph is allowed here (exports are downloads, not answers to wait on).
    sub = selection.load(ctx(), sel, max_nodes=None if sel.kind == "all" else
                         ctx().settings.api_max_nodes)
    media, ext = FORMATS[fmt]
    name = {"seed": f"neighborhood-{sel.seed}-d{sel.depth}", "ids": "subgraph",
            "crawl": f"crawl-{sel.crawl}", "all": "lookalike-graph"}[sel.kind]
    return Response(
        render(sub, fmt), mimetype=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"'},
    )
