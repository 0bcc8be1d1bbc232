"""What the report shows, as plain data: each section's rows, ranked lists and pictures, made
by pure functions from what ``write.py`` read (the graph's counts, the crawl record, the
analysis summary, near-duplicate groups, the audit). No markup here: the templates hold it
all, and Jinja2 escapes every value put into them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GROUP_MEMBERS_SHOWN = 12
RANKED_SHOWN = 10
RANKED_TITLE_CHARS = 80
CAPTION_TITLE_CHARS = 60
MISSING = "—"

Row = tuple[str, str]
# Image id -> the data URI of its small thumbnail, or None when none is cached.
Thumbnails = Mapping[str, str | None]


@dataclass(frozen=True)
class Crawl:
    wanted: str  # "crawl ID" or "any crawl"
    rows: list[Row] | None  # None: no record of it


@dataclass(frozen=True)
class RankedItem:
    id: str
    title: str
    value: str


@dataclass(frozen=True)
class Ranking:
    label: str
    items: list[RankedItem]


@dataclass(frozen=True)
class Metrics:
    scope: str  # what was measured: the whole graph, an analysis job's, a neighbourhood
    rows: list[Row]
    rankings: list[Ranking]
    histogram: str  # file name of the degree histogram beside the page


@dataclass(frozen=True)
class Neighborhood:
    seed: str
    title: str
    nodes: int
    edges: int
    truncated: bool
    drawn: int  # images drawn with their thumbnails
    picture: str  # file name beside the page


@dataclass(frozen=True)
class Thumb:
    id: str
    title: str
    uri: str | None  # None: no cached thumbnail


@dataclass(frozen=True)
class DupGroup:
    name: str
    size: int
    members: list[Thumb]
    more: int  # members not shown


@dataclass(frozen=True)
class Pair:
    left: Thumb
    right: Thumb
    facts: list[str]  # one line each


@dataclass(frozen=True)
class Audit:
    rows: list[Row]
    least_supported: list[Pair]
    unlisted: list[Pair]


@dataclass(frozen=True)
class Page:
    generated: str
    collection: list[Row]
    crawl: Crawl
    metrics: Metrics | None  # None: the graph is empty
    seed: str | None  # the image whose neighbourhood was asked for; None: the graph is empty
    neighborhood: Neighborhood | None  # None with a seed: no such image
    dup_groups: list[DupGroup]
    audit: Audit | None  # None: no index generation with embeddings


def when(ms: Any) -> str:
    """A time in epoch milliseconds, in UTC."""
    if not isinstance(ms, int | float) or not ms:
        return MISSING
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def text(value: Any) -> str:
    return MISSING if value is None else str(value)


def number(x: float | None, digits: int = 3) -> str:
    return MISSING if x is None else f"{x:.{digits}f}"


def rows(pairs: list[tuple[str, Any]]) -> list[Row]:
    return [(label, text(value)) for label, value in pairs]


def collection_rows(
    counts: Mapping[str, Any], licenses: Sequence[Mapping[str, Any]], graph_uri: str
) -> list[Row]:
    return rows(
        [
            ("images", counts["images"]),
            ("hashed", counts["hashed"]),
            ("broken thumbnails", counts["hash_failed"]),
            ("SIMILAR_TO edges", counts["edges"]),
            (
                "licences",
                ", ".join(f"{r['license'] or 'unknown'}: {r['images']}" for r in licenses)
                or MISSING,
            ),
            ("graph server", graph_uri),
        ]
    )


def crawl(record: Mapping[str, Any] | None, crawl_id: str | None) -> Crawl:
    wanted = f"crawl {crawl_id}" if crawl_id else "any crawl"
    if record is None:
        return Crawl(wanted, None)
    counts = record.get("counts") or {}
    failed = counts.get("failed") or {}
    return Crawl(
        wanted,
        rows(
            [
                ("crawl", record.get("id")),
                ("status", record.get("status")),
                ("seeds", ", ".join(record.get("seeds") or [])),
                ("depth", record.get("depth")),
                ("max images", record.get("max_images")),
                ("started", when(record.get("created_at"))),
                ("finished", when(record.get("finished_at"))),
                ("images fetched", counts.get("fetched")),
                ("thumbnails hashed", counts.get("hashed")),
                ("images stored", counts.get("nodes")),
                ("edges", counts.get("edges")),
                ("depth reached", counts.get("depth_reached")),
                ("failures", ", ".join(f"{k}: {v}" for k, v in sorted(failed.items())) or "none"),
            ]
        ),
    )


def metrics_rows(summary: Mapping[str, Any]) -> list[Row]:
    comps = summary.get("components", {})
    clustering = summary.get("clustering", {})
    diameter = summary.get("diameter", {})
    communities = summary.get("communities") or {}
    found: list[tuple[str, Any]] = [
        ("images (nodes)", summary.get("nodes")),
        ("SIMILAR_TO edges (directed)", summary.get("edges")),
        ("resemblance links (undirected)", summary.get("undirected_edges")),
        ("reciprocal pairs", summary.get("reciprocal_edges")),
        ("density (undirected)", f"{summary.get('density', 0):.6f}"),
        ("mean degree", f"{summary.get('mean_degree', 0):.2f}"),
        ("connected components", comps.get("count")),
        ("largest component", comps.get("largest")),
        ("isolated images", comps.get("isolated")),
        ("average clustering", f"{clustering.get('average', 0):.4f}"),
        ("transitivity", f"{clustering.get('transitivity', 0):.4f}"),
        (
            "diameter of the largest component",
            f"{diameter.get('value')}" + ("" if diameter.get("exact", True) else " (lower bound)"),
        ),
    ]
    if communities:
        found += [
            ("Leiden communities", communities.get("count")),
            ("modularity", f"{communities.get('modularity', 0):.4f}"),
            ("largest communities", ", ".join(map(str, communities.get("sizes", [])[:10]))),
        ]
    return rows(found)


def rankings(summary: Mapping[str, Any], titles: Mapping[str, str]) -> list[Ranking]:
    """The most central images by each measure the summary has."""
    cent = summary.get("centrality", {})
    found = []
    for key, label in (
        ("pagerank", "PageRank"),
        ("in_degree", "Listed as similar by"),
        ("betweenness", "Betweenness"),
    ):
        items = [
            RankedItem(i["id"], titles.get(i["id"], "")[:RANKED_TITLE_CHARS], f"{i['value']:.4g}")
            for i in (cent.get(key) or [])[:RANKED_SHOWN]
        ]
        if items:
            found.append(Ranking(label, items))
    return found


def metrics(
    summary: Mapping[str, Any] | None, scope: str, titles: Mapping[str, str], histogram: str
) -> Metrics | None:
    if summary is None or not summary.get("nodes"):
        return None
    return Metrics(scope, metrics_rows(summary), rankings(summary, titles), histogram)


def thumb(image_id: str, title: str | None, thumbs: Thumbnails) -> Thumb:
    return Thumb(image_id, (title or "")[:CAPTION_TITLE_CHARS], thumbs.get(image_id))


def shown_members(group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(group["members"][:GROUP_MEMBERS_SHOWN])


def dup_groups(groups: Sequence[Mapping[str, Any]], thumbs: Thumbnails) -> list[DupGroup]:
    out = []
    for group in groups:
        members = [thumb(m["id"], m.get("title"), thumbs) for m in shown_members(group)]
        out.append(
            DupGroup(text(group["dup_group"]), group["size"], members, group["size"] - len(members))
        )
    return out


def with_vectors(least_supported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audited edges that have a cosine (both ends embedded)."""
    return [e for e in least_supported if e["cos_raw"] is not None]


def audit_ids(least_supported: list[dict[str, Any]], unlisted: list[dict[str, Any]]) -> list[str]:
    """Every image the audit section shows, once, sorted."""
    ids = {x for e in least_supported for x in (e["source"], e["target"])}
    ids |= {x for u in unlisted for x in (u["a"], u["b"])}
    return sorted(ids)


def audit(
    info: Mapping[str, Any],
    least_supported: list[dict[str, Any]],
    unlisted: list[dict[str, Any]],
    titles: Mapping[str, str],
    thumbs: Thumbnails,
) -> Audit:
    """The audit's totals, and the pairs side by side: ``least_supported`` as
    ``with_vectors`` leaves it, ``unlisted`` as ``audit.page`` gives it."""

    def pair(a: str, b: str, facts: list[str]) -> Pair:
        return Pair(thumb(a, titles.get(a), thumbs), thumb(b, titles.get(b), thumbs), facts)

    quantiles = info["cos_raw"] if isinstance(info["cos_raw"], dict) else {}
    head = rows(
        [
            ("model", info["model"]),
            ("SIMILAR_TO edges", info["edges"]),
            ("with both ends embedded", info["with_vectors"]),
            ("reciprocal", info["reciprocal"]),
            (
                "embedding cosine p10 / p50 / p90",
                " / ".join(number(quantiles.get(q)) for q in ("p10", "p50", "p90")),
            ),
            (
                f"strong lookalikes (cosine >= {info['strong']}) the catalogue does not list",
                info["unlisted"],
            ),
        ]
    )
    weak = [
        pair(
            e["source"],
            e["target"],
            [
                f"rank {e['rank']}",
                f"cosine {number(e['cos_raw'])} (refined {number(e['cos_refined'])})",
                f"phash {e['hash_distance'].get('phash', MISSING)} bits",
                f"colour ΔE {number(e['colour_distance'], 0)}",
                "reciprocal" if e["reciprocal"] else "one way",
            ],
        )
        for e in least_supported
    ]
    strong = [
        pair(
            u["a"],
            u["b"],
            [f"cosine {number(u['cos_raw'])}", f"(refined {number(u['cos_refined'])})"],
        )
        for u in unlisted
    ]
    return Audit(head, weak, strong)
