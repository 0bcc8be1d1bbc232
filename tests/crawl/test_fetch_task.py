"""The fetch task's two ways of hashing, run in this process against the real Redis, graph
server and replica: before its graph write (the hashes ride in the fetch's transaction) when
the image's hint says it is not hashed yet, and after the write when the hint says it is (the
graph then decides). Either way the node ends with imagehash's own hashes of its thumbnail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import worker_env
from tests.crawl.test_crawl_e2e import assert_hashes_match, pick_seed
from workers import tasks
from workers.frontier import HINTS, CrawlState

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def as_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Give this process a worker's settings (environment), with fresh task resources."""

    def become(env: dict[str, str]) -> None:
        for key in list(os.environ):
            if key.startswith(("LOOKALIKE_", "NEO4J_")) and key not in env:
                monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith(("LOOKALIKE_", "NEO4J_", "REDIS_URL")):
                monkeypatch.setenv(key, value)
        tasks.resources.cache_clear()

    yield become
    tasks.resources.cache_clear()


def test_fetch_hashes_with_its_write_unless_the_hint_says_hashed(
    demo_collection: Path, fresh_graph, as_worker
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    r = redis.Redis.from_url(local.redis())
    crawls: list[CrawlState] = []

    def fetch_seed() -> str:
        state = CrawlState(r, f"fetch-task-{len(crawls)}-{os.getpid()}", lease_s=60)
        state.create([seed], 0, None)
        crawls.append(state)
        return tasks.fetch_image(state.id, seed, 0)

    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env()))
        try:
            r.hdel(HINTS, seed)
            assert fetch_seed() == "fetched+hashed-with-fetch"  # new image: one transaction
            assert_hashes_match(store, collection, [seed])
            hint = r.hget(HINTS, seed)
            assert hint and hint.decode().endswith("/info.json")
            assert crawls[-1].summary()["counts"]["hashed"] == 1

            # Hinted and current in the graph: nothing to hash.
            assert fetch_seed() == "fetched+unchanged"
            assert crawls[-1].summary()["counts"]["hash_skipped"] == 1

            # Hinted, but the graph lost the hashes (emptied, say): hashed after the write.
            store.clear()
            assert fetch_seed() == "fetched+hashed"
            assert_hashes_match(store, collection, [seed])

            # A stale hint (another algorithm version) is not trusted.
            r.hset(HINTS, seed, "0.0-old " + hint.decode().split(" ", 1)[1])
            assert fetch_seed() == "fetched+hashed-with-fetch"
            assert_hashes_match(store, collection, [seed])
            assert r.hget(HINTS, seed) == hint
        finally:
            for state in crawls:  # hash tasks for the seed's neighbours wait in the broker
                state.cancel()
