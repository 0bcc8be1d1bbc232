"""Which subgraph an analysis or export is about: a seed and depth, a list of ids, a crawl,
or (exports only) the whole graph. Shared by the analysis and export endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lookalike.graph import Subgraph
from services.api import params
from services.api.context import ApiContext
from services.api.errors import ApiError, bad_request, not_found

SELECTION_KEYS = ("seed", "depth", "ids", "crawl")


@dataclass(frozen=True)
class Selection:
    kind: str  # "seed" | "ids" | "crawl" | "all"
    seed: str | None = None
    depth: int | None = None
    ids: tuple[str, ...] = ()
    crawl: str | None = None

    def describe(self) -> dict[str, Any]:
        if self.kind == "seed":
            return {"seed": self.seed, "depth": self.depth}
        if self.kind == "ids":
            return {"ids": len(self.ids)}
        if self.kind == "crawl":
            return {"crawl": self.crawl}
        return {"all": True}


def parse(source: Mapping[str, Any], ctx: ApiContext, *, allow_all: bool = False) -> Selection:
    """Exactly one of seed (+depth), ids, crawl (or ``all=true`` where allowed)."""
    settings = ctx.settings
    given = [k for k in ("seed", "ids", "crawl") if source.get(k) is not None]
    everything = allow_all and params.boolean(source.get("all"), "all", False)
    if everything:
        given.append("all")
    if len(given) != 1:
        options = "seed (with depth), ids or crawl" + (", or all=true" if allow_all else "")
        raise bad_request(
            f"name exactly one subgraph: {options}"
            + (f" (got {', '.join(given)})" if given else ""),
            given[1] if len(given) > 1 else "seed",
        )
    if source.get("depth") is not None and given[0] != "seed":
        raise bad_request("depth only applies to a seed", "depth")
    if given[0] == "seed":
        seed = params.image_id(source.get("seed"), "seed")
        depth = params.integer(source.get("depth"), "depth", 1, settings.api_max_depth, 1)
        return Selection("seed", seed=seed, depth=depth)
    if given[0] == "ids":
        ids = params.id_list(source.get("ids"), "ids", settings.api_max_nodes)
        return Selection("ids", ids=tuple(ids))
    if given[0] == "crawl":
        crawl = source.get("crawl")
        if not isinstance(crawl, str) or not crawl.isalnum() or len(crawl) > 64:
            raise bad_request(f"crawl must be a crawl id (got {crawl!r})", "crawl")
        return Selection("crawl", crawl=crawl)
    return Selection("all")


def load(ctx: ApiContext, sel: Selection, *, max_nodes: int | None) -> Subgraph:
    """Fetch the selected subgraph; refuse (413) one larger than ``max_nodes``."""
    store = ctx.store
    if sel.kind == "seed":
        assert sel.seed is not None and sel.depth is not None
        limit = None if max_nodes is None else max_nodes + 1
        try:
            sub = store.neighborhood(sel.seed, sel.depth, limit=limit)
        except KeyError:
            raise not_found(f"no image with id {sel.seed!r} in the graph", "seed") from None
        if sub.truncated:
            _too_big(f"the {sel.depth}-hop neighbourhood of {sel.seed!r}", None, max_nodes,
                     "depth")
        return sub
    if sel.kind == "ids":
        sub = store.export_subgraph(list(sel.ids))
        missing = [i for i in sel.ids if i not in sub.nodes]
        if missing:
            raise not_found(
                f"{len(missing)} of the ids are not in the graph, e.g. {missing[0]!r}", "ids"
            )
        return sub
    if sel.kind == "crawl":
        ids = crawl_ids(ctx, sel.crawl or "")
        if max_nodes is not None and len(ids) > max_nodes:
            _too_big(f"crawl {sel.crawl}", len(ids), max_nodes, "crawl")
        return store.export_subgraph(ids)
    counts = store.counts()
    if max_nodes is not None and counts["images"] > max_nodes:
        _too_big("the whole graph", counts["images"], max_nodes, "all")
    return store.export_all()


def crawl_ids(ctx: ApiContext, crawl: str) -> list[str]:
    from services.api.crawls import control

    ctl = control()
    if ctl.get_crawl(ctx.settings, crawl) is None:
        raise not_found(f"no crawl with id {crawl!r}", "crawl")
    return list(ctl.crawl_image_ids(ctx.settings, crawl))


def _too_big(what: str, size: int | None, max_nodes: int | None, parameter: str) -> None:
    count = f"{size} images" if size is not None else f"more than {max_nodes} images"
    raise ApiError(
        400,
        f"{what} has {count}, over the limit of {max_nodes} for an answer while you wait; "
        "choose a smaller depth or fewer ids, or start a whole-graph analysis job with "
        "POST /analysis/jobs and read its results later",
        parameter=parameter,
    )
