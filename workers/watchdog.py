"""Every worker process also watches the running crawls, re-dispatching dead workers' images.

Why: each crawl's own watcher (``watch_crawl``) is a task that schedules itself again after a
few seconds. With a Redis broker a delayed task waits inside the worker that received it; when
that is the worker that dies, the watcher comes back only after the broker's visibility timeout
(an hour), and a crawl whose level waits on the dead worker's image stalls until then (beat's
``watch_all`` covers it only where beat runs). A timer thread in every worker closes the gap:
whichever worker dies, the survivors dispatch its images again within a lease.

The thread keeps its own Redis client and graph driver: with the prefork pool, children forked
later from this process must not inherit connections the parent is using.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from lookalike.graph import GraphStore
from lookalike.settings import load_settings
from workers.frontier import CrawlState, crawl_ids

log = logging.getLogger(__name__)
_stop = threading.Event()


def period_for(lease_s: float) -> float:
    """How often to look: a few times per lease, but not busier than once a second."""
    return max(1.0, min(10.0, lease_s / 3))


def watch_running(
    client: redis.Redis, lease_s: float, store: GraphStore | None = None, limit: int = 20
) -> int:
    """Re-dispatch the expired work of the ``limit`` newest running crawls; how many images."""
    from workers.tasks import requeue_stale

    total = 0
    for crawl_id in crawl_ids(client, limit):
        state = CrawlState(client, crawl_id, lease_s=lease_s)
        if state.is_active():
            total += requeue_stale(state, store)
    return total


def _run(stop: threading.Event) -> None:
    settings = load_settings()
    client = redis.Redis.from_url(settings.redis())
    store: GraphStore | None = None
    period = period_for(settings.crawl_lease_s)
    while not stop.wait(period):
        try:
            if store is None:
                store = GraphStore.connect(settings, retry_time=5)
            watch_running(client, settings.crawl_lease_s, store)
        except Exception:  # a watchdog that dies silently is worse than one that retries
            log.warning("crawl watchdog: check failed; again in %.0f s", period, exc_info=True)
            if store is not None:
                store.close()
            store = None
    if store is not None:
        store.close()


@worker_ready.connect
def start(sender: Any = None, **_: Any) -> None:
    _stop.clear()
    threading.Thread(target=_run, args=(_stop,), name="crawl-watchdog", daemon=True).start()


@worker_shutdown.connect
def stop(sender: Any = None, **_: Any) -> None:
    _stop.set()
