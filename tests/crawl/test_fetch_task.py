"""The fetch task's two ways of hashing, run in this process against the real Redis, graph
server and replica: before its graph write (the hashes ride in the fetch's transaction) when
the image's hint says it is not hashed yet, and after the write when the hint says it is (the
graph then decides). Either way the node ends with imagehash's own hashes of its thumbnail."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import worker_env
from tests.crawl.test_crawl_e2e import assert_hashes_match, pick_seed
from workers import pipeline, tasks
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


def test_a_batch_is_written_together_and_a_failing_image_fails_alone(
    demo_collection: Path, fresh_graph, as_worker
) -> None:
    """A fetch task of several images: the good ones are stored (nodes, ranked edges, the
    images they list) with imagehash's hashes, each hashed once by its own fetch even when
    the batch lists its own images; an image the catalogue does not have is recorded as such
    without holding the others back; a redelivered batch does nothing."""
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    good = [seed, *collection.similar_ids(seed)[:3]]
    batch = [*good[:2], "zzzzzzzz", *good[2:]]  # unknown to the catalogue
    r = redis.Redis.from_url(local.redis())
    r.hdel(HINTS, *batch)
    state = CrawlState(r, f"fetch-batch-{os.getpid()}", lease_s=60)
    state.create(batch, 0, None)
    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env()))
        try:
            statuses = tasks.fetch_images(state.id, batch, 0)
            assert statuses == [
                "fetched+hashed-with-fetch",
                "fetched+hashed-with-fetch",
                "failed:not_found",
                "fetched+hashed-with-fetch",
                "fetched+hashed-with-fetch",
            ]
            assert_hashes_match(store, collection, good)
            whole = store.export_all()
            listed = {n for i in good for n in collection.similar_ids(i) if n != i}
            assert set(whole.nodes) == set(good) | listed
            expected_edges = {
                (i, n, rank)
                for i in good
                for rank, n in enumerate(
                    dict.fromkeys(x for x in collection.similar_ids(i) if x != i), start=1
                )
            }
            assert set(whole.edges) == expected_edges
            summary = state.summary()
            assert summary["counts"]["hashed"] == len(good)
            assert summary["counts"]["failed"] == {"not_found": 1}
            assert state.failures()["zzzzzzzz"].startswith("not_found")
            # The listed images nobody fetches wait for hash tasks; the fetched ones don't.
            assert {k.decode() for k in r.hkeys(state.p + "hashing")} == listed - set(good)
            assert tasks.fetch_images(state.id, batch, 0) == ["skipped"] * len(batch)
        finally:
            state.cancel()


def test_fetch_batches_keep_order_and_spread_small_levels() -> None:
    ids = [f"i{k:03d}" for k in range(200)]
    assert tasks.fetch_batches(ids, 8) == [ids[k : k + 8] for k in range(0, 200, 8)]
    # A level too small to fill 16 batches goes out one image per task.
    assert tasks.fetch_batches(ids[:20], 8) == [[i] for i in ids[:20]]
    assert tasks.fetch_batches(ids[:40], 8) == [ids[k : k + 2] for k in range(0, 40, 2)]
    assert tasks.fetch_batches([], 8) == []
    assert tasks.fetch_batches(ids, 1) == [[i] for i in ids]


def batch_crawl(demo_collection: Path, fresh_graph, name: str, size: int, lease_s: float):
    """A crawl at depth 0 whose seeds are a batch: a painting and the first of the images
    it lists. Returns (settings, store, collection, batch, crawl state)."""
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    batch = [seed, *collection.similar_ids(seed)[: size - 1]]
    state = CrawlState(
        redis.Redis.from_url(local.redis()), f"{name}-{os.getpid()}", lease_s=lease_s
    )
    state.create(batch, 0, None)
    return local, store, collection, batch, state


def test_a_slow_batch_keeps_the_leases_of_the_images_it_has_not_reached(
    demo_collection: Path, fresh_graph, as_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch against a slow catalogue (a strict rate limit, say) outlasts the lease its
    images were claimed with: it renews the leases of the images still ahead, so the
    watchdog never hands them to another worker while this one is on its way to them."""
    local, _, collection, batch, state = batch_crawl(
        demo_collection, fresh_graph, "fetch-slow", 4, lease_s=0.6
    )
    expired: list[list[str]] = []
    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env(), LOOKALIKE_CRAWL_LEASE_S="0.6"))
        client = tasks.resources().client
        get_image = client.get_image

        def slow_get_image(image_id: str, **kwargs):
            expired.append(state.stale(queue_empty=False)[1])  # what the watchdog would see
            time.sleep(0.25)
            return get_image(image_id, **kwargs)

        monkeypatch.setattr(client, "get_image", slow_get_image)
        try:
            assert [s.startswith("fetched") for s in tasks.fetch_images(state.id, batch, 0)] == [
                True
            ] * len(batch)
        finally:
            state.cancel()
    assert expired == [[]] * len(batch)


def test_an_image_the_graph_refuses_fails_alone_with_its_reason(
    demo_collection: Path, fresh_graph, as_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph server refuses a batch's write because of one image (a value it cannot
    store): the batch is written image by image, the others are stored, and that one is
    recorded as failed with the server's message instead of holding the batch back."""
    local, store, collection, batch, state = batch_crawl(
        demo_collection, fresh_graph, "fetch-refused", 4, lease_s=60
    )
    poison = batch[1]
    real = pipeline.store_fetched_many

    def refusing(graph, items, seen_at=None, **options):
        if any(result.image.id == poison for result, _ in items):
            with graph.driver.session(database=graph.database) as session:
                session.run("THIS IS NOT CYPHER").consume()  # the server's own refusal
        return real(graph, items, seen_at, **options)

    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env()))
        monkeypatch.setattr(tasks.pipeline, "store_fetched_many", refusing)
        try:
            statuses = tasks.fetch_images(state.id, batch, 0)
        finally:
            state.cancel()
    assert statuses[1] == "failed:graph_rejected"
    assert all(s.startswith("fetched") for i, s in enumerate(statuses) if i != 1)
    assert state.summary()["counts"]["failed"] == {"graph_rejected": 1}
    assert "the graph server refused to store this image" in state.failures()[poison]
    assert set(state.fetched_ids()) == set(batch)  # done with, one way or the other
    fetched = {i for i, n in store.export_all().nodes.items() if n.get("fetched_at")}
    assert fetched == set(batch) - {poison}
    assert_hashes_match(store, collection, fetched)


def test_a_batch_whose_writes_keep_colliding_is_retried_image_by_image(
    demo_collection: Path, fresh_graph, as_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that still collide after the store's own retries are not a refusal: every
    image of the batch is re-queued on its own (a short delay, a longer lease), nothing is
    recorded as failed, and the re-queued fetches store them."""
    from neo4j.exceptions import ConstraintError

    local, store, collection, batch, state = batch_crawl(
        demo_collection, fresh_graph, "fetch-collide", 3, lease_s=60
    )
    real = pipeline.store_fetched_many
    calls: list[int] = []

    def colliding(graph, items, seen_at=None, **options):
        calls.append(len(items))
        if len(calls) == 1:
            raise ConstraintError("concurrent modification (still, after retries)")
        return real(graph, items, seen_at, **options)

    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env()))
        monkeypatch.setattr(tasks.pipeline, "store_fetched_many", colliding)
        try:
            assert tasks.fetch_images(state.id, batch, 0) == ["retry"] * len(batch)
            assert state.summary()["counts"]["failed"] == {}
            assert state.pending(0) == sorted(batch)  # still the crawl's, leases extended
            # What the re-queued single-image tasks then do:
            assert [tasks.fetch_image(state.id, i, 0).startswith("fetched") for i in batch] == [
                True
            ] * len(batch)
        finally:
            state.cancel()
    assert calls == [len(batch), 1, 1, 1]
    assert_hashes_match(store, collection, batch)
