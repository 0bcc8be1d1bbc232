"""The report's edge: reads the graph, the crawl records in Redis, the index's audit and the
thumbnail cache, draws the pictures, and writes ``report.html`` with its pictures beside it
(``degree_histogram.png``, ``neighborhood.png``) so the folder can be zipped or served as is;
the small thumbnails of near-duplicate groups and audited pairs are embedded as data URIs.

Every section degrades to a sentence saying what is missing (no crawl recorded, no
near-duplicates found, no thumbnails cached) rather than failing: the report is the end of
the demo and must always be written.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lookalike.analysis import AnalysisOptions, build_graph, summarize
from lookalike.graph import GraphStore, Subgraph
from lookalike.settings import Settings
from lookalike.thumbcache import ThumbnailCache
from services.api.picture import draw_degree_histogram, draw_neighborhood, load_thumbnail
from services.api.report import view
from services.api.report.render import render

log = logging.getLogger(__name__)

# Up to this many images the report analyses the whole graph itself; beyond, it uses the
# latest whole-graph analysis job (or the seed's neighbourhood when there is none).
WHOLE_GRAPH_LIMIT = 20_000
DUP_GROUPS_SHOWN = 20
AUDIT_PAIRS_SHOWN = 12
NEIGHBORHOOD_DEPTH = 2
NEIGHBORHOOD_NODES = 80
HISTOGRAM_PNG = "degree_histogram.png"
NEIGHBORHOOD_PNG = "neighborhood.png"


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


def _thumb_uri(cache: ThumbnailCache, image_id: str, px: int = 96) -> str | None:
    arr = load_thumbnail(cache.path(image_id), px)
    if arr is None:
        return None
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumbnails(cache: ThumbnailCache, ids: Iterable[str]) -> dict[str, str | None]:
    return {image_id: _thumb_uri(cache, image_id) for image_id in ids}


def _dup_groups(store: GraphStore, cache: ThumbnailCache) -> list[view.DupGroup]:
    groups = store.read("api_dup_groups", limit=DUP_GROUPS_SHOWN)
    shown = {m["id"] for group in groups for m in view.shown_members(group)}
    return view.dup_groups(groups, _thumbnails(cache, shown))


def _audit(settings: Settings, store: GraphStore, cache: ThumbnailCache) -> view.Audit | None:
    """The catalogue's edges the embeddings support least, and the strong lookalikes it does
    not list; None when there is no audit."""
    from services.indexer import audit
    from services.indexer.graph_io import open_reader

    try:
        vectors = open_reader(settings, store).vectors()
        found = vectors.gen.audit() if vectors.gen is not None else None
    except Exception as exc:  # the report must always be written
        log.info("no audit for the report: %s", exc)
        found = None
    if found is None:
        return None
    _, weak = audit.page(found, "least_supported", 0, AUDIT_PAIRS_SHOWN)
    weak = view.with_vectors(weak)
    _, unlisted = audit.page(found, "unlisted", 0, AUDIT_PAIRS_SHOWN)
    ids = view.audit_ids(weak, unlisted)
    nodes = store.get_images(ids) if ids else {}
    titles = {k: v.get("title") or "" for k, v in nodes.items()}
    return view.audit(audit.summary(found), weak, unlisted, titles, _thumbnails(cache, ids))


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
            finished = view.when(job.get("finished_at"))
            scope = f"the whole graph, from analysis job {job['id']} ({finished})"

    # The neighbourhood to draw: the given seed, else the crawl's first seed, else the most
    # linked image.
    if seed is None and crawl and crawl.get("seeds"):
        first = crawl["seeds"][0]
        seed = first if store.get_images([first]) else None
    if seed is None:
        top = store.read("api_most_linked", limit=1)
        seed = top[0]["id"] if top and top[0]["degree"] else None
    neighborhood: view.Neighborhood | None = None
    if seed is not None:
        try:
            sub = store.neighborhood(seed, NEIGHBORHOOD_DEPTH, limit=NEIGHBORHOOD_NODES)
        except KeyError:
            sub = None
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
            (out_dir / NEIGHBORHOOD_PNG).write_bytes(png)
            neighborhood = view.Neighborhood(
                seed=seed,
                title=title,
                nodes=len(sub.nodes),
                edges=len(sub.edges),
                truncated=sub.truncated,
                drawn=sum(1 for n in sub.nodes if cache.path(n) is not None),
                picture=NEIGHBORHOOD_PNG,
            )
            if summary is None:
                summary = summarize(build_graph(sub.nodes, sub.edges), AnalysisOptions())
                scope = (
                    f"the {NEIGHBORHOOD_DEPTH}-hop neighbourhood of {seed} (the graph is "
                    "too large to analyse here; run POST /analysis/jobs for all of it)"
                )

    titles = {k: v.get("title") or "" for k, v in whole.nodes.items()} if whole else {}
    metrics = view.metrics(summary, scope, titles, HISTOGRAM_PNG)
    if metrics is not None and summary is not None:
        (out_dir / HISTOGRAM_PNG).write_bytes(
            draw_degree_histogram(
                summary["degree_histogram"], title=f"Degree histogram ({summary['nodes']} images)"
            )
        )
    page = view.Page(
        generated=dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        collection=view.collection_rows(counts, licenses, store.uri),
        crawl=view.crawl(crawl, crawl_id),
        metrics=metrics,
        seed=seed,
        neighborhood=neighborhood,
        dup_groups=_dup_groups(store, cache),
        audit=_audit(settings, store, cache),
    )
    path = out_dir / "report.html"
    path.write_text(render(page), encoding="utf-8")
    return path
