"""Start, watch, list and cancel crawls: the Python API the CLI and the Flask service call.

Crawl bookkeeping lives in Redis while a crawl runs (``frontier.CrawlState``); a finished
crawl's summary is also written to the graph as a (:Crawl) node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import redis

from lookalike import ids
from lookalike.settings import Settings
from workers.frontier import FINAL, CrawlState, crawl_count, crawl_ids

if TYPE_CHECKING:
    from lookalike.catalogue import CatalogueClient


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis())


def validate_request(
    settings: Settings, seeds: list[str], depth: int, max_images: int | None
) -> list[str]:
    """Check a crawl request; raise ValueError saying what to fix. Returns the seeds, deduped."""
    if not isinstance(seeds, list) or not seeds:
        raise ValueError("seeds must be a non-empty list of catalogue image ids")
    if len(seeds) > settings.max_seeds:
        raise ValueError(f"at most {settings.max_seeds} seeds per crawl (got {len(seeds)})")
    bad = [s for s in seeds if not ids.is_image_id(s)]
    if bad:
        raise ValueError(f"seed {bad[0]!r} is not a catalogue image id ({ids.IMAGE_ID_WORDS})")
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or not (0 <= depth <= settings.max_depth)
    ):
        raise ValueError(f"depth must be an integer from 0 to {settings.max_depth} (got {depth!r})")
    if max_images is not None and (
        isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1
    ):
        raise ValueError(f"max_images must be a positive integer (got {max_images!r})")
    return list(dict.fromkeys(seeds))


def parse_seed_lines(lines: Iterable[str], name: str = "the seeds file") -> list[str]:
    """The catalogue ids of a seeds file: one per line, blank lines and ``#`` comments
    ignored, duplicates dropped (first kept); ValueError names the first bad line."""
    seeds: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not ids.is_image_id(text):
            raise ValueError(
                f"{name} line {number}: {text[:40]!r} is not a catalogue image id "
                f"({ids.IMAGE_ID_WORDS}); one id per line, '#' starts a comment"
            )
        seeds.append(text)
    return list(dict.fromkeys(seeds))


def collection_ids(client: CatalogueClient, source: str = "") -> Iterator[str]:
    """The id of every image of the catalogue: from its bulk snapshot (``source``: a URL or a
    file) or, without one, from its list pages (which reach only the first 10,000)."""
    records = client.iter_snapshot(source) if source else client.iter_list(page_size=100)
    for record in records:
        yield record.id


def in_parts(seeds: list[str], size: int) -> list[list[str]]:
    """More seeds than one crawl takes (``max_seeds``) become consecutive crawls of at most
    ``size`` seeds: each crawl's record (its seeds among it) stays small enough to read."""
    return [seeds[i : i + size] for i in range(0, len(seeds), max(1, size))]


def start_crawl(
    settings: Settings,
    seeds: list[str],
    depth: int,
    max_images: int | None = None,
    kind: str = "crawl",
) -> dict[str, Any]:
    """Queue a breadth-first crawl from ``seeds``; returns its record (with ``id``)."""
    from workers.tasks import fetch_batches, fetch_images, watch_crawl

    seeds = validate_request(settings, seeds, depth, max_images)
    crawl_id = ids.new_crawl_id()
    state = CrawlState(_redis(settings), crawl_id, lease_s=settings.crawl_lease_s)
    state.create(seeds, depth, max_images, kind=kind)
    # Send through the broker these settings name (not whatever this process's Celery app
    # was configured with), so the API and tests can drive any stack. (celery-types leaves
    # `connection` out of apply_async's options; Celery's send_task takes it.)
    from workers.app import app

    with app.connection_for_write(settings.redis()) as conn:
        for batch in fetch_batches(seeds, settings.crawl_batch):
            fetch_images.apply_async(
                (crawl_id, batch, 0),
                connection=conn,  # type: ignore[call-arg]
            )
        watch_crawl.apply_async(
            (crawl_id,),
            countdown=max(1.0, min(10.0, settings.crawl_lease_s / 3)),
            connection=conn,  # type: ignore[call-arg]
        )
    return state.summary()


def get_crawl(settings: Settings, crawl_id: str) -> dict[str, Any] | None:
    if not ids.is_crawl_id(crawl_id):
        return None
    state = CrawlState(_redis(settings), crawl_id)
    return state.summary() or None


def crawl_failures(settings: Settings, crawl_id: str) -> dict[str, str]:
    return CrawlState(_redis(settings), crawl_id).failures()


def list_crawls(settings: Settings, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    client = _redis(settings)
    return [
        s for cid in crawl_ids(client, limit, offset) if (s := CrawlState(client, cid).summary())
    ]


def count_crawls(settings: Settings) -> int:
    return crawl_count(_redis(settings))


def cancel_crawl(settings: Settings, crawl_id: str) -> dict[str, Any] | None:
    if not ids.is_crawl_id(crawl_id):
        return None
    state = CrawlState(_redis(settings), crawl_id)
    if not state.exists():
        return None
    state.cancel()
    return state.summary()


def crawl_image_ids(settings: Settings, crawl_id: str) -> list[str]:
    """Every image a crawl stored: the fetched ones and the neighbours they listed."""
    return CrawlState(_redis(settings), crawl_id).image_ids()


def requeue_stale(settings: Settings, crawl_id: str) -> int:
    from workers.tasks import requeue_stale as requeue

    return requeue(CrawlState(_redis(settings), crawl_id, lease_s=settings.crawl_lease_s))


def wait_for(
    settings: Settings,
    crawl_id: str,
    timeout: float | None = None,
    poll: float = 0.5,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Block until the crawl ends (or ``timeout``); also acts as a watchdog meanwhile."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_watch = 0.0
    while True:
        summary = get_crawl(settings, crawl_id)
        if summary is None:
            raise KeyError(crawl_id)
        if on_progress:
            on_progress(summary)
        if summary["status"] in FINAL:
            return summary
        if time.monotonic() - last_watch > max(1.0, settings.crawl_lease_s / 4):
            requeue_stale(settings, crawl_id)
            last_watch = time.monotonic()
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"crawl {crawl_id} still {summary['status']} after {timeout}s")
        time.sleep(poll)
