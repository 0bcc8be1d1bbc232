"""Continuous crawling: the beat schedule's tasks.

The catalogue changes: similar lists are recomputed, images are withdrawn, new ones arrive.
``refresh_stale`` re-fetches images fetched longer ago than the TTL (edges no longer listed are
removed, ``last_seen`` moves on the rest, withdrawn images are marked gone); ``discover_new``
reads the catalogue's bulk snapshot (or its list pages) and crawls images the graph has never
fetched. Both start ordinary crawls, so they share the frontier, rate limit and bookkeeping.
"""

from __future__ import annotations

import logging
import time
from itertools import islice

from lookalike.catalogue import CatalogueClient
from lookalike.settings import Settings
from workers import control
from workers.app import app
from workers.frontier import CrawlState, as_text
from workers.tasks import resources
from workers.watchdog import watch_running

log = logging.getLogger(__name__)

ACTIVE_KEY = "lk:continuous:{}"


def _already_running(settings: Settings, kind: str) -> str | None:
    """The id of a refresh/discover crawl still running, so runs do not pile up."""
    r = resources().redis
    current = r.get(ACTIVE_KEY.format(kind))
    if current:
        state = CrawlState(r, as_text(current))
        if state.is_active():
            return state.id
    return None


def _start(settings: Settings, kind: str, ids: list[str], depth: int) -> list[str]:
    started = []
    for part in control.in_parts(ids, settings.max_seeds):
        record = control.start_crawl(settings, part, depth, kind=kind)
        started.append(record["id"])
    if started:
        resources().redis.set(ACTIVE_KEY.format(kind), started[-1])
    return started


def refresh_stale_ids(settings: Settings, now_ms: int | None = None) -> list[str]:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    before = now - int(settings.crawl_ttl_hours * 3600 * 1000)
    rows = resources().store.read("stale_images", before=before, limit=settings.refresh_batch)
    return [r["id"] for r in rows]


@app.task(name="lookalike.refresh_stale")
def refresh_stale() -> list[str]:
    """Re-fetch the oldest images past the TTL (a depth-0 crawl over them)."""
    settings = resources().settings
    if _already_running(settings, "refresh"):
        return []
    ids = refresh_stale_ids(settings)
    if ids:
        log.info(
            "refreshing %d images fetched more than %sh ago", len(ids), settings.crawl_ttl_hours
        )
    return _start(settings, "refresh", ids, 0)


def unknown_ids(ids: list[str]) -> list[str]:
    return [r["id"] for r in resources().store.read("unknown_ids", ids=ids)]


def discover_ids(settings: Settings, client: CatalogueClient, limit: int) -> list[str]:
    """Up to ``limit`` catalogue ids the graph has never fetched, in catalogue order."""
    found: list[str] = []
    ids = control.collection_ids(client, settings.discover_source)
    while len(found) < limit:
        batch = list(islice(ids, 1000))
        if not batch:
            break
        found.extend(unknown_ids(batch))
    return found[:limit]


@app.task(name="lookalike.discover_new")
def discover_new() -> list[str]:
    """Crawl images the catalogue has and the graph has never fetched."""
    res = resources()
    if _already_running(res.settings, "discover"):
        return []
    ids = discover_ids(res.settings, res.client, res.settings.refresh_batch)
    if ids:
        log.info("discovered %d new images", len(ids))
    return _start(res.settings, "discover", ids, res.settings.discover_depth)


@app.task(name="lookalike.watch_all")
def watch_all() -> int:
    """Safety net behind each crawl's own watcher: re-dispatch work of dead workers."""
    res = resources()
    return watch_running(res.redis, res.settings.crawl_lease_s)
