"""Which subgraph an analysis or export is about: a seed and depth, a list of ids, a crawl,
or (exports only) the whole graph. Shared by the analysis and export endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from lookalike.graph import Subgraph
from services.api.context import ApiContext
from services.api.contract import Body, ExactlyOne, Query, Rule
from services.api.errors import ApiError, not_found
from services.api.fields import CrawlId, Depth, ImageId, OnlyTrue, comma_list, id_list

WHICH = "seed (with depth), ids or crawl"
ONE_SUBGRAPH = ExactlyOne(("seed", "ids", "crawl"), only_with={"depth": "seed"}, words=WHICH)


class Chosen(BaseModel):
    """The fields every way of naming a subgraph shares (``ids`` differs by transport)."""

    rules: ClassVar[tuple[Rule, ...]] = (ONE_SUBGRAPH,)
    seed: ImageId | None = Field(None, description="image whose neighbourhood to take")
    depth: Depth | None = Field(None, description="hops from the seed (only with seed; default 1)")
    crawl: CrawlId | None = Field(None, description="the images that crawl stored")


class SelectionQuery(Chosen, Query):
    """A subgraph named in the query string: ``ids`` comma-separated."""

    ids: comma_list(ImageId, max_items="api_max_nodes") | None = None


class SelectionBody(Chosen, Body):
    """A subgraph named in a JSON body: ``ids`` a list (for long lists)."""

    ids: id_list("api_max_nodes") | None = None


class WholeGraphQuery(SelectionQuery):
    """As SelectionQuery, or ``all=true`` for the whole graph (exports)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        ExactlyOne(
            ("seed", "ids", "crawl", "all"),
            only_with={"depth": "seed"},
            words=WHICH + ", or all=true",
        ),
    )
    all: OnlyTrue | None = Field(None, description="the whole graph")


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


def chosen(given: Chosen) -> Selection:
    """The subgraph a validated request names (its rules already checked)."""
    if given.seed is not None:
        return Selection("seed", seed=given.seed, depth=given.depth or 1)
    ids = getattr(given, "ids", None)
    if ids is not None:
        return Selection("ids", ids=tuple(ids))
    if given.crawl is not None:
        return Selection("crawl", crawl=given.crawl)
    return Selection("all")


def load(
    ctx: ApiContext, sel: Selection, *, max_nodes: int | None, properties: bool = True
) -> Subgraph:
    """Fetch the selected subgraph; refuse (413) one larger than ``max_nodes``. Without
    ``properties`` the nodes are only ``{"id": ...}`` (for analysis: cheaper to read)."""
    store = ctx.store
    if sel.kind == "seed":
        assert sel.seed is not None and sel.depth is not None
        limit = None if max_nodes is None else max_nodes + 1
        try:
            sub = store.neighborhood(sel.seed, sel.depth, limit=limit, properties=properties)
        except KeyError:
            raise not_found(f"no image with id {sel.seed!r} in the graph", "seed") from None
        if sub.truncated:
            _too_big(f"the {sel.depth}-hop neighbourhood of {sel.seed!r}", None, max_nodes, "depth")
        return sub
    if sel.kind == "ids":
        sub = store.export_subgraph(list(sel.ids), properties=properties)
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
        return store.export_subgraph(ids, properties=properties)
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
