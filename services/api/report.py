"""An HTML report a person can open: what was collected, how the crawl went, the graph's
measures, its degree histogram, a neighbourhood drawn with thumbnails, near-duplicate groups,
and the audit of the catalogue's similar lists by the learned embeddings (the least supported
edges and the strongest unlisted lookalikes, thumbnails side by side).

Written as ``report.html`` with its pictures beside it (``degree_histogram.png``,
``neighborhood.png``) so the folder can be zipped or served as is; the small thumbnails of
near-duplicate groups are embedded as data URIs. Every section degrades to a sentence saying
what is missing (no crawl recorded, no near-duplicates found, no thumbnails cached) rather
than failing: the report is the end of the demo and must always be written.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

from lookalike.analysis import AnalysisOptions, build_graph, summarize
from lookalike.graph import GraphStore, Subgraph
from lookalike.settings import Settings
from lookalike.thumbcache import ThumbnailCache
from services.api.picture import draw_degree_histogram, draw_neighborhood, load_thumbnail

log = logging.getLogger(__name__)

# Up to this many images the report analyses the whole graph itself; beyond, it uses the
# latest whole-graph analysis job (or the seed's neighbourhood when there is none).
WHOLE_GRAPH_LIMIT = 20_000
DUP_GROUPS_SHOWN = 20
AUDIT_PAIRS_SHOWN = 12
NEIGHBORHOOD_DEPTH = 2
NEIGHBORHOOD_NODES = 80


def _when(ms: Any) -> str:
    if not isinstance(ms, int | float) or not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _esc(value: Any) -> str:
    return html.escape("—" if value is None else str(value))


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def _crawl_record(
    settings: Settings, store: GraphStore, crawl_id: str | None
) -> dict[str, Any] | None:
    """The crawl from Redis (live) or from the graph (kept after it finished)."""
    record: dict[str, Any] | None = None
    try:
        from workers import control

        if crawl_id:
            record = control.get_crawl(settings, crawl_id)
        else:
            crawls = control.list_crawls(settings, limit=1)
            record = crawls[0] if crawls else None
    except Exception as exc:  # Redis may be gone; the graph keeps finished crawls
        log.info("crawl state not readable from Redis (%s); using the graph", exc)
    if record is None:
        rows = (
            store.read("api_get_crawl", id=crawl_id)
            if crawl_id
            else store.read("api_latest_crawls", limit=1)
        )
        if rows:
            record = dict(rows[0]["crawl"])
            if isinstance(record.get("counts"), str):
                record["counts"] = json.loads(record["counts"])
    return record


def _crawl_section(record: dict[str, Any] | None, crawl_id: str | None) -> str:
    if record is None:
        wanted = f"crawl {crawl_id}" if crawl_id else "any crawl"
        return (
            f"<p class='none'>No record of {_esc(wanted)} (crawl with <code>lookalike crawl"
            "</code> or <code>POST /crawls</code>).</p>"
        )
    counts = record.get("counts") or {}
    failed = counts.get("failed") or {}
    rows = [
        ("crawl", record.get("id")),
        ("status", record.get("status")),
        ("seeds", ", ".join(record.get("seeds") or [])),
        ("depth", record.get("depth")),
        ("max images", record.get("max_images")),
        ("started", _when(record.get("created_at"))),
        ("finished", _when(record.get("finished_at"))),
        ("images fetched", counts.get("fetched")),
        ("thumbnails hashed", counts.get("hashed")),
        ("images stored", counts.get("nodes")),
        ("edges", counts.get("edges")),
        ("depth reached", counts.get("depth_reached")),
        ("failures", ", ".join(f"{k}: {v}" for k, v in sorted(failed.items())) or "none"),
    ]
    return _table(rows)


def _metrics_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    comps = summary.get("components", {})
    clustering = summary.get("clustering", {})
    diameter = summary.get("diameter", {})
    communities = summary.get("communities") or {}
    rows = [
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
        rows += [
            ("Leiden communities", communities.get("count")),
            ("modularity", f"{communities.get('modularity', 0):.4f}"),
            ("largest communities", ", ".join(map(str, communities.get("sizes", [])[:10]))),
        ]
    return rows


def _ranked(summary: dict[str, Any], titles: dict[str, str]) -> str:
    cent = summary.get("centrality", {})
    parts = []
    for key, label in (
        ("pagerank", "PageRank"),
        ("in_degree", "Listed as similar by"),
        ("betweenness", "Betweenness"),
    ):
        items = cent.get(key) or []
        if not items:
            continue
        lis = "".join(
            f"<li><code>{_esc(i['id'])}</code> {_esc(titles.get(i['id'], '')[:80])} "
            f"<span class='v'>{i['value']:.4g}</span></li>"
            for i in items[:10]
        )
        parts.append(f"<div class='col'><h4>{label}</h4><ol>{lis}</ol></div>")
    return f"<div class='cols'>{''.join(parts)}</div>" if parts else ""


def _thumb_uri(cache: ThumbnailCache, image_id: str, px: int = 96) -> str | None:
    arr = load_thumbnail(cache.path(image_id), px)
    if arr is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _dup_section(store: GraphStore, cache: ThumbnailCache) -> str:
    groups = store.read("api_dup_groups", limit=DUP_GROUPS_SHOWN)
    if not groups:
        return (
            "<p class='none'>No near-duplicate groups found (none yet, or the index "
            "sidecar has not run: <code>lookalike index</code>).</p>"
        )
    out = []
    for group in groups:
        cells = []
        for member in group["members"][:12]:
            uri = _thumb_uri(cache, member["id"])
            pic = (
                f"<img src='{uri}' alt='{_esc(member['id'])}'>"
                if uri
                else "<div class='nothumb'>no thumbnail</div>"
            )
            cells.append(
                f"<figure>{pic}<figcaption><code>{_esc(member['id'])}</code><br>"
                f"{_esc((member.get('title') or '')[:60])}</figcaption></figure>"
            )
        more = group["size"] - len(group["members"][:12])
        extra = f"<p>and {more} more</p>" if more > 0 else ""
        out.append(
            f"<div class='group'><h4>group {_esc(group['dup_group'])} "
            f"({group['size']} images)</h4><div class='row'>{''.join(cells)}</div>"
            f"{extra}</div>"
        )
    return "".join(out)


def _pair_row(cache: ThumbnailCache, a: str, b: str, titles: dict[str, str], facts: str) -> str:
    cells = []
    for image_id in (a, b):
        uri = _thumb_uri(cache, image_id)
        pic = (
            f"<img src='{uri}' alt='{_esc(image_id)}'>"
            if uri
            else "<div class='nothumb'>no thumbnail</div>"
        )
        cells.append(
            f"<figure>{pic}<figcaption><code>{_esc(image_id)}</code><br>"
            f"{_esc(titles.get(image_id, '')[:60])}</figcaption></figure>"
        )
    return f"<div class='pair'>{''.join(cells)}<div class='facts'>{facts}</div></div>"


def _fmt(x: Any, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _audit_section(settings: Settings, store: GraphStore, cache: ThumbnailCache) -> str:
    """The catalogue's edges the embeddings support least, and the strong lookalikes it does
    not list; a sentence saying why when there is no audit."""
    from services.indexer import audit
    from services.indexer.graph_io import open_reader

    try:
        view = open_reader(settings, store).vectors()
        found = view.gen.audit() if view.gen is not None else None
    except Exception as exc:  # the report must always be written
        log.info("no audit for the report: %s", exc)
        found = None
    if found is None:
        return (
            "<p class='none'>No audit: no index generation with embeddings yet (crawl with "
            "embeddings on, then <code>lookalike indexer --once</code>).</p>"
        )
    info = audit.summary(found)
    _, weak = audit.page(found, "least_supported", 0, AUDIT_PAIRS_SHOWN)
    weak = [e for e in weak if e["cos_raw"] is not None]
    _, unlisted = audit.page(found, "unlisted", 0, AUDIT_PAIRS_SHOWN)
    ids = [x for e in weak for x in (e["source"], e["target"])]
    ids += [x for u in unlisted for x in (u["a"], u["b"])]
    nodes = store.get_images(sorted(set(ids))) if ids else {}
    titles = {k: v.get("title") or "" for k, v in nodes.items()}
    quantiles = info["cos_raw"] if isinstance(info["cos_raw"], dict) else {}
    head = _table(
        [
            ("model", info["model"]),
            ("SIMILAR_TO edges", info["edges"]),
            ("with both ends embedded", info["with_vectors"]),
            ("reciprocal", info["reciprocal"]),
            (
                "embedding cosine p10 / p50 / p90",
                " / ".join(_fmt(quantiles.get(q)) for q in ("p10", "p50", "p90")),
            ),
            (
                f"strong lookalikes (cosine >= {info['strong']}) the catalogue does not list",
                info["unlisted"],
            ),
        ]
    )
    weak_html = "".join(
        _pair_row(
            cache,
            e["source"],
            e["target"],
            titles,
            f"rank {e['rank']}<br>cosine {_fmt(e['cos_raw'])} (refined "
            f"{_fmt(e['cos_refined'])})<br>phash {e['hash_distance'].get('phash', '—')} bits"
            f"<br>colour &Delta;E {_fmt(e['colour_distance'], 0)}"
            f"<br>{'reciprocal' if e['reciprocal'] else 'one way'}",
        )
        for e in weak
    )
    unlisted_html = (
        "".join(
            _pair_row(
                cache,
                u["a"],
                u["b"],
                titles,
                f"cosine {_fmt(u['cos_raw'])}<br>(refined {_fmt(u['cos_refined'])})",
            )
            for u in unlisted
        )
        or "<p class='none'>None: every strong lookalike is listed.</p>"
    )
    return (
        f"{head}<h3>Least supported similar-list entries</h3><p>The catalogue lists the "
        "right-hand image among the left-hand one's similar images; Lookalike's model sees "
        f"little resemblance.</p>{weak_html or '<p class=none>No edge has vectors.</p>'}"
        "<h3>Strong lookalikes the catalogue does not list</h3>" + unlisted_html
    )


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table.kv th{text-align:left;padding:.15em 1.2em .15em 0;font-weight:600;color:#555}
table.kv td{padding:.15em 0} .none{color:#777;font-style:italic}
.cols{display:flex;gap:2em;flex-wrap:wrap} .col{flex:1;min-width:260px}
.v{color:#777;font-size:90%} img.plot{max-width:100%;border:1px solid #eee}
.row{display:flex;gap:.8em;flex-wrap:wrap} figure{margin:0;width:110px;font-size:80%}
figure img{width:100px;height:100px;object-fit:contain;background:#f4f4f4}
.nothumb{width:100px;height:100px;background:#eee;color:#999;display:flex;
align-items:center;justify-content:center;font-size:80%}
.group{margin-bottom:1em} code{font-size:90%}
.pair{display:flex;gap:.8em;align-items:flex-start;margin-bottom:.8em;
border-bottom:1px solid #eee;padding-bottom:.5em} .facts{font-size:85%;color:#444}
"""


def write_report(
    settings: Settings,
    out_dir: Path,
    *,
    crawl_id: str | None = None,
    seed: str | None = None,
    store: GraphStore | None = None,
) -> Path:
    """Write ``out_dir/report.html`` (and its PNGs); returns the path of the HTML file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    own = store is None
    store = store or GraphStore.connect(settings)
    try:
        return _write(settings, store, out_dir, crawl_id, seed)
    finally:
        if own:
            store.close()


def _write(
    settings: Settings, store: GraphStore, out_dir: Path, crawl_id: str | None, seed: str | None
) -> Path:
    cache = ThumbnailCache(settings.thumbnail_dir, settings.thumbnail_cache_mb * 1_000_000)
    counts = store.counts()
    licenses = store.read("api_license_counts", limit=8)
    crawl = _crawl_record(settings, store, crawl_id)

    # Metrics: the whole graph when small enough, else the latest background analysis.
    summary: dict[str, Any] | None = None
    scope = ""
    whole: Subgraph | None = None
    if counts["images"] <= WHOLE_GRAPH_LIMIT:
        whole = store.export_all()
        summary = summarize(build_graph(whole.nodes, whole.edges), AnalysisOptions(top_k=10))
        scope = "the whole graph"
    else:
        from workers.analysis import latest_done

        job = latest_done(store)
        if job and isinstance(job.get("summary"), dict):
            summary = job["summary"]
            finished = _when(job.get("finished_at"))
            scope = f"the whole graph, from analysis job {job['id']} ({finished})"

    # The neighbourhood to draw: the given seed, else the crawl's first seed, else the most
    # linked image.
    if seed is None and crawl and crawl.get("seeds"):
        first = crawl["seeds"][0]
        seed = first if store.get_images([first]) else None
    if seed is None:
        top = store.read("api_most_linked", limit=1)
        seed = top[0]["id"] if top and top[0]["degree"] else None
    neighborhood_html = "<p class='none'>The graph is empty: nothing to draw.</p>"
    if seed is not None:
        try:
            sub = store.neighborhood(seed, NEIGHBORHOOD_DEPTH, limit=NEIGHBORHOOD_NODES)
        except KeyError:
            sub = None
            neighborhood_html = f"<p class='none'>No image {_esc(seed)} in the graph.</p>"
        if sub is not None:
            title = sub.nodes.get(seed, {}).get("title") or seed
            png = draw_neighborhood(
                sub,
                seed,
                cache.path,
                size_px=1000,
                title=f"{title} ({seed}): {NEIGHBORHOOD_DEPTH}-hop "
                f"neighbourhood, {len(sub.nodes)} images",
            )
            (out_dir / "neighborhood.png").write_bytes(png)
            cached = sum(1 for n in sub.nodes if cache.path(n) is not None)
            neighborhood_html = (
                f"<p>Seed <code>{_esc(seed)}</code> — {_esc(title)}; {len(sub.nodes)} images, "
                f"{len(sub.edges)} edges{' (truncated)' if sub.truncated else ''}; "
                f"{cached} drawn with their thumbnails, the rest as dots. The seed is framed "
                "in red.</p><img class='plot' src='neighborhood.png' alt='neighbourhood'>"
            )
            if summary is None:
                summary = summarize(build_graph(sub.nodes, sub.edges), AnalysisOptions())
                scope = (
                    f"the {NEIGHBORHOOD_DEPTH}-hop neighbourhood of {seed} (the graph is "
                    "too large to analyse here; run POST /analysis/jobs for all of it)"
                )

    histogram_html = "<p class='none'>No metrics: the graph is empty.</p>"
    metrics_html = histogram_html
    if summary is not None and summary.get("nodes"):
        (out_dir / "degree_histogram.png").write_bytes(
            draw_degree_histogram(
                summary["degree_histogram"], title=f"Degree histogram ({summary['nodes']} images)"
            )
        )
        histogram_html = "<img class='plot' src='degree_histogram.png' alt='degree histogram'>"
        titles = {}
        if whole is not None:
            titles = {k: v.get("title") or "" for k, v in whole.nodes.items()}
        metrics_html = (
            f"<p>Measured on {_esc(scope)}.</p>"
            + _table(_metrics_rows(summary))
            + _ranked(summary, titles)
        )

    collection = _table(
        [
            ("images", counts["images"]),
            ("hashed", counts["hashed"]),
            ("broken thumbnails", counts["hash_failed"]),
            ("SIMILAR_TO edges", counts["edges"]),
            (
                "licences",
                ", ".join(f"{r['license'] or 'unknown'}: {r['images']}" for r in licenses) or "—",
            ),
            ("graph server", store.uri),
        ]
    )
    generated = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lookalike report</title>
<style>{_CSS}</style></head><body>
<h1>Lookalike report</h1><p>Generated {generated}.</p>
<h2>Collection</h2>{collection}
<h2>Crawl</h2>{_crawl_section(crawl, crawl_id)}
<h2>Graph metrics</h2>{metrics_html}
<h2>Degree histogram</h2>{histogram_html}
<h2>A neighbourhood</h2>{neighborhood_html}
<h2>Near-duplicate groups</h2>{_dup_section(store, cache)}
<h2>Audit of the similar lists</h2>{_audit_section(settings, store, cache)}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
