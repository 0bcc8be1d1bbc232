"""Celery tasks of a crawl: fetch (and hash) a batch of images, hash one thumbnail, embed
thumbnails again, watch for dead workers.

A fetch task hashes the images it fetched itself, and embeds them when embeddings are on
(one decode of the thumbnail serves both). When an image is not hashed (or embedded by this
model) yet, that happens before the graph write, so the batch's nodes, edges, hashes and
embedding records are one transaction; the vectors go to Redis just before it
(``lookalike.vectors``).
Images the crawl stores but never fetches (past the depth limit, cut by the budget, failed)
get ``hash_image`` tasks.

Each task is idempotent on (crawl, image): it first checks that the image is still pending in
the crawl's frontier, so a task delivered twice (a worker died after finishing, Celery
redelivered it) does nothing the second time. Transient trouble (the catalogue unavailable
after the client's own retries, the graph server restarting) re-queues the image with a short
delay and an extended lease; after ``task_retries`` tries a catalogue failure is recorded with
its reason and the crawl goes on. An image whose write the graph server refuses is recorded
as ``graph_rejected`` with the server's message, and the rest of its batch is stored. Redis
away while a task hands vectors to the indexer is waited for like the graph server
(``REDIS_RESTARTS``), then recorded as ``redis_unavailable``; away anywhere else in a fetch
task, the images it holds keep their leases in the frontier (itself in Redis) and the
watchdog hands them out again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from neo4j.exceptions import ConstraintError, Neo4jError, TransientError

from lookalike import vectors
from lookalike.catalogue import CatalogueClient
from lookalike.errors import REDIS_AWAY, CatalogueError, unexpected_error
from lookalike.graph import GraphStore, GraphUnavailable, now_ms
from lookalike.hashing import ImageDecodeError, algorithm_version, decode_image
from lookalike.records import ImageWithSimilar
from lookalike.retry import GRAPH_RESTARTS, REDIS_RESTARTS, RetryPolicy, crawl_tasks
from lookalike.settings import Settings, load_settings
from lookalike.thumbcache import ThumbnailCache
from lookalike.viewstore import ViewStore
from workers import pipeline
from workers.app import app
from workers.frontier import Completion, CrawlState, FetchOutcome, FetchStart, hash_hint
from workers.pipeline import NOTHING, Embeds, Needs, Thumbnail

log = logging.getLogger(__name__)


class Resources:
    """Per-process connections: one Redis, one catalogue client, one graph driver, and the
    embedder (loaded once per process, on first use)."""

    def __init__(self) -> None:
        self.settings: Settings = load_settings()
        self.redis = redis.Redis.from_url(self.settings.redis())
        self.client = CatalogueClient(self.settings, self.redis)
        self._store: GraphStore | None = None
        self.cache = ThumbnailCache(
            self.settings.thumbnail_dir, self.settings.thumbnail_cache_mb * 1_000_000
        )
        self.views = (
            ViewStore(self.settings.view_dir, self.settings.view_store_mb * 1_000_000)
            if self.settings.view_store_mb > 0
            else None
        )
        self._embedder: Embeds | None = None
        self._embedder_loaded = False

    @property
    def embedder(self) -> Embeds | None:
        """The embedder, or None when embeddings are off."""
        if not self._embedder_loaded:
            self._embedder = vectors.embedder(self.settings)
            self._embedder_loaded = True
        return self._embedder

    @property
    def model(self) -> str | None:
        """The embedder's version, or None when embeddings are off."""
        embedder = self.embedder
        return embedder.version if embedder is not None else None

    def look(self, image_id: str, info_url: str, want: Needs) -> Thumbnail:
        """``pipeline.download_and_hash`` with this process's client, caches and embedder."""
        return pipeline.download_and_hash(
            self.client,
            self.cache,
            image_id,
            info_url,
            want=want,
            embedder=self.embedder,
            views=self.views,
        )

    @property
    def store(self) -> GraphStore:
        if self._store is None:
            self._store = GraphStore.connect(self.settings, retry_time=5)
        return self._store

    def reset_store(self) -> None:
        """Forget the driver: the next use reconnects (and re-reads where the server is)."""
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # closing a driver to a dead server may fail; we drop it anyway
                log.debug("closing the old graph driver failed", exc_info=True)
            self._store = None
        self.settings = load_settings()


@cache
def resources() -> Resources:
    return Resources()


def state_of(crawl_id: str) -> CrawlState:
    res = resources()
    return CrawlState(res.redis, crawl_id, lease_s=res.settings.crawl_lease_s)


def fetch_batches(image_ids: list[str], size: int, spread: int = 16) -> list[list[str]]:
    """Split a level's images, in order, into fetch tasks of at most ``size`` images. A small
    level is split finer, into at least ``spread`` tasks while it has that many images, so
    that it still spreads over all the worker processes."""
    per = max(1, min(size, len(image_ids) // spread))
    return [image_ids[i : i + per] for i in range(0, len(image_ids), per)]


def dispatch(state: CrawlState, outcome: FetchOutcome, depth: int) -> None:
    """Queue what a completed fetch made ready: hashes, and the next level if it opened."""
    for image_id in outcome.to_hash:
        url = state.thumbnail_url(image_id)
        if url:
            hash_image.delay(state.id, image_id, url)
    for batch in fetch_batches(outcome.next_level, resources().settings.crawl_batch):
        fetch_images.delay(state.id, batch, depth + 1)
    if outcome.finished:
        save_summary(state)


def finish_if_done(state: CrawlState, store: GraphStore | None = None) -> None:
    if state.maybe_finish():
        save_summary(state, store)


def save_summary(state: CrawlState, store: GraphStore | None = None) -> None:
    """Keep the crawl's summary in the graph, where users can query it later (through
    ``store``, or this process's task resources)."""
    import json

    summary = state.summary()
    props: dict[str, Any] = {
        "status": summary["status"],
        "kind": summary["kind"],
        "seeds": summary["seeds"],
        "depth": summary["depth"],
        "max_images": summary["max_images"],
        "created_at": summary["created_at"],
        "finished_at": summary["finished_at"],
        "counts": json.dumps(summary["counts"]),
    }
    try:
        (store or resources().store).write("save_crawl", id=state.id, props=props)
    except GraphUnavailable:
        log.warning("could not save the summary of crawl %s: graph unavailable", state.id)


def _retry_later(
    state: CrawlState,
    task: Any,
    args: tuple[Any, ...],
    image_id: str,
    depth: int | None,
    what: str,
    retry_after: float | None = None,
) -> int:
    attempt = state.attempt(image_id, what)
    delay = crawl_tasks(resources().settings).delay(attempt - 1, retry_after)
    state.extend_lease(image_id, depth, delay)
    task.apply_async(args, countdown=delay)
    return attempt


def _retry_catalogue(
    state: CrawlState,
    task: Any,
    args: tuple[Any, ...],
    image_id: str,
    depth: int | None,
    what: str,
    exc: CatalogueError,
) -> bool:
    """Re-queue after a retryable catalogue error while tries remain; False: give up."""
    tries = int(state.r.hget(state.p + "attempts", f"{what}:{image_id}") or 0)
    if exc.retryable and not crawl_tasks(resources().settings).gives_up(tries):
        _retry_later(state, task, args, image_id, depth, what, exc.retry_after)
        return True
    return False


def _retry_outage(
    state: CrawlState,
    task: Any,
    args: tuple[Any, ...],
    image_id: str,
    depth: int | None,
    away: str,
    policy: RetryPolicy,
) -> bool:
    """A server the task needs (``away``: "graph", "redis") is away: try the image again
    later; False when ``policy``'s tries are spent."""
    attempt = state.attempt(image_id, away) - 1
    if policy.gives_up(attempt):
        return False
    delay = policy.delay(attempt)
    state.extend_lease(image_id, depth, delay)
    task.apply_async(args, countdown=delay)
    return True


def _retry_graph(
    state: CrawlState, task: Any, args: tuple[Any, ...], image_id: str, depth: int | None
) -> bool:
    """The graph server is away (restarting?): reconnect later; False when the restart budget
    (``GRAPH_RESTARTS``) is spent."""
    resources().reset_store()
    return _retry_outage(state, task, args, image_id, depth, "graph", GRAPH_RESTARTS)


@app.task(name="lookalike.fetch_image")
def fetch_image(crawl_id: str, image_id: str, depth: int) -> str:
    """Fetch one image (a batch of one: see ``fetch_images``). Retries and re-dispatches
    after a dead worker's lease run one image at a time, through this task."""
    return fetch_batch(crawl_id, [image_id], depth)[0]


@app.task(name="lookalike.fetch_images")
def fetch_images(crawl_id: str, image_ids: list[str], depth: int) -> list[str]:
    """Fetch several images of one level: see ``fetch_batch``."""
    return fetch_batch(crawl_id, image_ids, depth)


@dataclass
class _Ready:
    """A fetched image waiting for its batch's graph write."""

    image_id: str
    result: ImageWithSimilar
    thumb: Thumbnail | None  # what a look at its thumbnail ahead of the write found
    hash_error: CatalogueError | ImageDecodeError | None


def fetch_batch(crawl_id: str, image_ids: list[str], depth: int) -> list[str]:
    """Fetch images with their similar images, hash their thumbnails (unless this crawl
    hashed them already, or the nodes have these hashes), store it all, and push unseen
    neighbours. Returns what happened to each image, in order.

    Why batches: per image, a task's own costs (the broker, the frontier's round trips, the
    graph transaction) are as large as fetching it. A batch claims its images in one round
    trip, fetches and hashes each, writes them all in one transaction and records them in
    one round trip. Each image still succeeds, retries or fails on its own: one that fails
    is retried (or recorded) alone, through ``fetch_image``.
    """
    res = resources()
    state = state_of(crawl_id)
    status = dict.fromkeys(image_ids, "skipped")
    ready: list[_Ready] = []
    started = [
        (i, s)
        for i, s in zip(image_ids, state.start_fetches(image_ids, depth), strict=True)
        if s is not None
    ]
    claimed_at = time.monotonic()
    try:
        for image_id, start in started:
            if time.monotonic() - claimed_at > res.settings.crawl_lease_s / 3:
                # A slow batch (a rate-limited catalogue): renew the leases of its images not
                # completed yet (those fetched wait for the batch's write), so the watchdog
                # does not hand them to another worker meanwhile.
                state.extend_leases([i for i, _ in started], depth, 0)
                claimed_at = time.monotonic()
            try:
                result = res.client.get_image(image_id)
                thumb, hash_error = _hash_ahead(res, start, image_id, result.image.thumbnail_url)
            except CatalogueError as exc:
                status[image_id] = _fetch_failed(state, image_id, depth, exc)
                continue
            except REDIS_AWAY:
                raise  # nothing can be recorded now: see below
            except Exception as exc:  # recorded with its reason, as catalogue failures are
                log.exception("crawl %s: unexpected error fetching %s", crawl_id, image_id)
                status[image_id] = _fetch_failed(state, image_id, depth, unexpected_error(exc))
                continue
            ready.append(_Ready(image_id, result, thumb, hash_error))
        if ready:
            status.update(_store_batch(state, ready, depth))
    except REDIS_AWAY:
        # Redis, where the frontier records outcomes, is away beyond the places that wait for
        # it: recording a failure now would fail too, or (Redis back) fail for good an image
        # that a later try would store. The images this task holds and has not settled keep
        # their leases, and the watchdog hands them out again once those expire.
        log.warning("crawl %s: Redis is away; unsettled images wait for their leases", crawl_id)
        raise
    except Exception as exc:
        # Whatever nothing foresaw still ends as a recorded failure of each image this task
        # holds and has not settled: otherwise its lease would expire, another worker would
        # meet the same error, and the crawl would never end.
        log.exception("crawl %s: unexpected error in a fetch batch", crawl_id)
        for image_id, _ in started:
            if status[image_id] == "skipped":
                status[image_id] = _fetch_failed(state, image_id, depth, unexpected_error(exc))
    return [status[i] for i in image_ids]


def _fetch_failed(state: CrawlState, image_id: str, depth: int, exc: CatalogueError) -> str:
    """The catalogue refused an image: retry it later while tries remain, else record it."""
    res = resources()
    args = (state.id, image_id, depth)
    if _retry_catalogue(state, fetch_image, args, image_id, depth, "fetch", exc):
        return "retry"
    log.warning("crawl %s: giving up on %s: %s", state.id, image_id, exc)
    try:
        pipeline.record_fetch_failure(res.store, image_id, exc)
    except GraphUnavailable:
        if _retry_graph(state, fetch_image, args, image_id, depth):
            return "retry"
    failed = state.fail_fetch(image_id, depth, exc.reason, exc.message, inline_hash=True)
    dispatch(state, failed, depth)
    return f"failed:{exc.reason}"


def _store_batch(state: CrawlState, ready: list[_Ready], depth: int) -> dict[str, str]:
    """Write a batch's images in one transaction, record them in the frontier, and hash
    those whose hashes did not ride with the write."""
    res = resources()
    thumbs = [r.thumb for r in ready if r.thumb is not None]
    try:
        # The vectors and the write's stamp go first (``lookalike.vectors`` and
        # ``lookalike.hashmark`` say why): Redis away here means nothing of the batch is
        # written yet.
        at = pipeline.publish_vectors(
            res.redis,
            thumbs,
            res.settings.embed_stream_max,
            database=res.settings.neo4j_database,
            fetched=True,
        )
        fetched = pipeline.store_fetched_many(
            res.store, [(r.result, r.thumb) for r in ready], at, model=res.model
        )
    except REDIS_AWAY as exc:
        log.warning("crawl %s: Redis did not take the vectors of a batch: %s", state.id, exc)
        return _outage(
            state,
            ready,
            depth,
            "redis",
            REDIS_RESTARTS,
            "redis_unavailable",
            f"Redis did not take the image's vector for the indexer: {exc}",
        )
    except (GraphUnavailable, TransientError, ConstraintError) as exc:
        # The server is away, or writes kept colliding past their retries.
        res.reset_store()
        return _outage(state, ready, depth, "graph", GRAPH_RESTARTS, "graph_unavailable", str(exc))
    except Exception as exc:
        # The graph refused the write (a value it cannot store, say), or something nothing
        # foresaw went wrong: find the image at fault by writing them one by one, so the
        # others are not held back with it.
        if len(ready) > 1:
            log.warning(
                "crawl %s: the graph refused a batch of %d images (%s); writing them one by one",
                state.id,
                len(ready),
                exc,
            )
            out = {}
            for r in ready:
                out.update(_store_batch(state, [r], depth))
            return out
        (r,) = ready
        if isinstance(exc, Neo4jError):
            reason = "graph_rejected"
            message = f"the graph server refused to store this image: {exc}"
        else:
            log.exception("crawl %s: unexpected error storing %s", state.id, r.image_id)
            reason, message = "unexpected_error", unexpected_error(exc).message
        log.warning("crawl %s: %s: %s", state.id, r.image_id, message)
        dispatch(
            state, state.fail_fetch(r.image_id, depth, reason, message, inline_hash=True), depth
        )
        return {r.image_id: f"failed:{reason}"}
    state.note_embed_failures({t.image_id: t.embed_error for t in thumbs if t.embed_error})
    remaining = [
        f.needs.minus(r.thumb.done if r.thumb else NOTHING)
        for r, f in zip(ready, fetched, strict=True)
    ]
    outcomes = state.complete_fetches(
        depth,
        [
            _completion(f, r.thumb, left, res.model)
            for r, f, left in zip(ready, fetched, remaining, strict=True)
        ],
        inline_hash=True,
    )
    out = {}
    for r, f, outcome, left in zip(ready, fetched, outcomes, remaining, strict=True):
        if outcome.duplicate:
            out[r.image_id] = "fetched"
            continue
        dispatch(state, outcome, depth)
        if outcome.hashed:
            out[r.image_id] = "fetched+hashed-with-fetch"
        elif outcome.hash_self:
            out[r.image_id] = "fetched+" + hash_for_crawl(
                state,
                r.image_id,
                f.thumbnail_url,
                needs=left,
                error=r.hash_error,
            )
        else:
            out[r.image_id] = "fetched"
    return out


def _outage(
    state: CrawlState,
    ready: list[_Ready],
    depth: int,
    away: str,
    policy: RetryPolicy,
    reason: str,
    message: str,
) -> dict[str, str]:
    """A server a batch's write needs is away: each image is tried again later on its own
    (``_retry_outage``), or recorded as failed with ``reason`` once its tries are spent."""
    out: dict[str, str] = {}
    for r in ready:
        args = (state.id, r.image_id, depth)
        if _retry_outage(state, fetch_image, args, r.image_id, depth, away, policy):
            out[r.image_id] = "retry"
            continue
        failed = state.fail_fetch(r.image_id, depth, reason, message, inline_hash=True)
        dispatch(state, failed, depth)
        out[r.image_id] = f"failed:{reason}"
    return out


def _completion(
    f: pipeline.Fetched, thumb: Thumbnail | None, left: Needs, model: str | None
) -> Completion:
    """The frontier's record of a stored image: "prehashed" (its thumbnail step is done,
    with the hints to remember) when a look ahead of the write left nothing to do."""
    if thumb is None or left:
        return Completion(f.image_id, f.neighbours, f.stored, f.edges)
    embed_current = model is not None and (thumb.vector is not None or not f.needs.embed)
    return Completion(
        f.image_id,
        f.neighbours,
        f.stored,
        f.edges,
        prehashed=hash_hint(algorithm_version(), f.thumbnail_url),
        embed_hint=hash_hint(model, f.thumbnail_url) if model and embed_current else None,
        embedded=thumb.vector is not None,
    )


def _hash_ahead(
    res: Resources, start: FetchStart, image_id: str, info_url: str | None
) -> tuple[Thumbnail | None, CatalogueError | ImageDecodeError | None]:
    """Hash (and embed) a fetched image before its graph write, so the results ride in the
    same transaction, when this fetch is expected to hash it and its hints say it is not
    hashed (or not embedded by this model) yet: ``(thumbnail, None)``. Otherwise ``(None,
    None)``, and the image is hashed (or found current) after the write as before; ``(None,
    error)`` when the thumbnail failed, for ``hash_for_crawl`` to handle (retry or record)
    without downloading it again."""
    if not start.will_hash or not info_url:
        return None, None
    model = res.model
    want = Needs(
        start.hint != hash_hint(algorithm_version(), info_url),
        model is not None and start.embed_hint != hash_hint(model, info_url),
    )
    if not want:
        return None, None
    try:
        return res.look(image_id, info_url, want), None
    except (CatalogueError, ImageDecodeError) as exc:
        return None, exc


@app.task(name="lookalike.hash_image")
def hash_image(crawl_id: str, image_id: str, info_url: str) -> str:
    """Download one thumbnail, hash it, store the hashes (once per thumbnail and version)."""
    state = state_of(crawl_id)
    if not state.claim(image_id, None):
        return "skipped"
    return hash_for_crawl(state, image_id, info_url)


def _completed(state: CrawlState, completion: int) -> None:
    """After ``complete_hash``/``fail_hash``: keep the summary if that ended the crawl."""
    if completion == 2:
        save_summary(state)


def hash_for_crawl(
    state: CrawlState,
    image_id: str,
    info_url: str,
    needs: Needs | None = None,
    error: CatalogueError | ImageDecodeError | None = None,
) -> str:
    """Hash (and embed) one image's thumbnail for a crawl whose lease on it this worker
    holds, and record the outcome. ``needs``: what the node lacks (None: read it).
    ``error``: the fetch task's own try at this thumbnail failed so; handled as if this try
    had failed, without downloading it again.

    Transient trouble hands the image to a ``hash_image`` task with a short delay, so a
    fetch task that hashes inline retries exactly like a hash task.
    """
    res = resources()
    args = (state.id, image_id, info_url)
    hint = hash_hint(algorithm_version(), info_url)
    model = res.model
    embed_hint = hash_hint(model, info_url) if model else ""
    try:
        if error is not None:
            raise error
        if needs is None:
            needs = pipeline.needs(res.store, image_id, info_url, model)
        if not needs:
            _completed(state, state.complete_hash(image_id, "hash_skipped", hint, embed_hint))
            return "unchanged"
        thumb = res.look(image_id, info_url, needs)
        at = pipeline.publish_vectors(
            res.redis, [thumb], res.settings.embed_stream_max, database=res.settings.neo4j_database
        )
        pipeline.store_thumbnails(res.store, [thumb], at)
    except GraphUnavailable:
        if _retry_graph(state, hash_image, args, image_id, None):
            return "retry"
        _completed(
            state,
            state.fail_hash(image_id, "graph_unavailable", "the graph server did not come back"),
        )
        return "failed"
    except REDIS_AWAY as exc:
        if _retry_outage(state, hash_image, args, image_id, None, "redis", REDIS_RESTARTS):
            return "retry"
        return _hash_failed(
            state,
            image_id,
            "redis_unavailable",
            f"Redis stayed away while this thumbnail was hashed: {exc}",
        )
    except CatalogueError as exc:
        if _retry_catalogue(state, hash_image, args, image_id, None, "hash", exc):
            return "retry"
        return _hash_failed(state, image_id, exc.reason, exc.message)
    except ImageDecodeError as exc:
        return _hash_failed(state, image_id, "not_an_image", str(exc))
    except Exception as exc:  # recorded, so the image is neither lost nor retried forever
        log.exception("crawl %s: unexpected error hashing %s", state.id, image_id)
        return _hash_failed(state, image_id, "unexpected_error", unexpected_error(exc).message)
    if thumb.embed_error:
        state.note_embed_failures({image_id: thumb.embed_error})
        embed_hint = ""
    _completed(
        state,
        state.complete_hash(
            image_id, "hashed", hint, embed_hint, embedded=thumb.vector is not None
        ),
    )
    return "hashed" if needs.hash else "embedded"


def _hash_failed(state: CrawlState, image_id: str, reason: str, message: str) -> str:
    log.warning("crawl %s: thumbnail of %s failed: %s: %s", state.id, image_id, reason, message)
    res = resources()
    try:
        pipeline.record_hash_failure(res.store, image_id, reason, message)
    except GraphUnavailable:
        res.reset_store()
    _completed(state, state.fail_hash(image_id, reason, message))
    return f"failed:{reason}"


def requeue_stale(state: CrawlState, store: GraphStore | None = None) -> int:
    """Dispatch again the images whose worker died (lease expired). Returns how many."""
    if not state.is_active():
        return 0
    queue = state.r.llen(app.conf.task_default_queue)
    level, fetches, hashes = state.stale(queue_empty=queue == 0)
    for image_id in fetches:
        log.warning("crawl %s: re-dispatching %s (lease expired)", state.id, image_id)
        fetch_image.delay(state.id, image_id, level)
    for image_id in hashes:
        url = state.thumbnail_url(image_id)
        if url:
            hash_image.delay(state.id, image_id, url)
    finish_if_done(state, store)
    return len(fetches) + len(hashes)


@app.task(name="lookalike.watch_crawl")
def watch_crawl(crawl_id: str) -> str:
    """Re-dispatch images of dead workers; repeats itself while the crawl runs."""
    state = state_of(crawl_id)
    requeue_stale(state)
    if state.is_active():
        period = max(1.0, min(10.0, resources().settings.crawl_lease_s / 3))
        watch_crawl.apply_async((crawl_id,), countdown=period)
        return "watching"
    return state.status() or "gone"


@app.task(name="lookalike.embed_images")
def embed_images(items: list[list[str]]) -> dict[str, int]:
    """Embed images again, outside any crawl: ``items`` are ``[image id, thumbnail info
    URL]`` pairs whose vectors the index sidecar found missing (Redis was flushed, or the
    stream capped while the indexer was away) or made by another model. The thumbnail comes
    from the cache when it is there. A failure is recorded on the node like a crawl's; a
    transient one is left for the indexer to ask again."""
    res = resources()
    embedder = res.embedder
    if embedder is None:
        return {"skipped": len(items)}
    thumbs: list[Thumbnail] = []
    deferred = 0
    want = Needs(False, True)
    for image_id, info_url in items:
        try:
            data = res.cache.get(image_id)
            if data is None:
                thumb = res.look(image_id, info_url, want)
            else:
                image = decode_image(data, max_pixels=res.settings.max_thumbnail_pixels)
                thumb = pipeline.examine(
                    image, image_id, info_url, want=want, embedder=embedder, views=res.views
                )
        except CatalogueError as exc:
            if exc.retryable:
                deferred += 1
                continue
            thumb = Thumbnail(
                image_id, info_url, embed_error=f"{exc.reason}: {exc.message}", at=now_ms()
            )
        except ImageDecodeError as exc:
            thumb = Thumbnail(image_id, info_url, embed_error=f"not_an_image: {exc}", at=now_ms())
        thumbs.append(thumb)
    at = pipeline.publish_vectors(
        res.redis, thumbs, res.settings.embed_stream_max, database=res.settings.neo4j_database
    )
    try:
        pipeline.store_thumbnails(res.store, thumbs, at)
    except GraphUnavailable:
        res.reset_store()
        embed_images.apply_async((items,), countdown=GRAPH_RESTARTS.delay(2))
        return {"retry": len(items)}
    embedded = sum(t.vector is not None for t in thumbs)
    return {"embedded": embedded, "failed": len(thumbs) - embedded, "deferred": deferred}
