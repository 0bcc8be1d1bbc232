"""Any exception nothing foresaw, anywhere in a crawl task, ends as a recorded failure of the
image concerned, with its reason; the other images of the batch are stored, and the crawl
goes on. Run in this process against the real Redis, graph server and replica, with the
fault planted by replacing one step of the pipeline (a bug, for the test's purpose)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import worker_env
from tests.crawl.test_fetch_task import as_worker, batch_crawl  # noqa: F401 - fixture
from workers import pipeline, tasks
from workers.frontier import HINTS, CrawlState
from workers.pipeline import HASH_ONLY

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def batch(
    small_collection: Collection,
    fresh_graph,
    as_worker,  # noqa: F811
) -> Iterator[tuple[list[str], CrawlState, object]]:
    """A depth-0 crawl of four images (a seed and images it lists), with this process as its
    worker; yields (ids, crawl state, store)."""
    local, store, _, ids, state = batch_crawl(
        small_collection.path, fresh_graph, f"unexpected-{uuid.uuid4().hex[:8]}", 4, 60
    )
    state.r.hdel(HINTS, *ids)
    with run_replica(small_collection) as replica:
        as_worker(worker_env(local, replica.env()))
        try:
            yield ids, state, store
        finally:
            state.cancel()


def test_a_bug_hashing_one_image_fails_that_image_alone(batch, monkeypatch) -> None:
    ids, state, store = batch
    real = pipeline.download_and_hash

    def buggy(client, cache, image_id, info_url, **options):
        if image_id == ids[1]:
            raise ZeroDivisionError("division by zero")
        return real(client, cache, image_id, info_url, **options)

    monkeypatch.setattr(pipeline, "download_and_hash", buggy)
    statuses = tasks.fetch_images(state.id, ids, 0)
    assert statuses[1] == "failed:unexpected_error"
    assert all(s.startswith("fetched") for i, s in enumerate(statuses) if i != 1)
    why = state.failures()[ids[1]]
    assert why.startswith("unexpected_error: ZeroDivisionError: division by zero")
    assert store.get_image(ids[1])["fetch_error"] == why
    assert state.summary()["counts"]["failed"] == {"unexpected_error": 1}
    assert all(store.get_image(i).get("phash") for i in ids if i != ids[1])


def test_a_bug_storing_one_image_fails_that_image_alone(batch, monkeypatch) -> None:
    ids, state, store = batch
    real = pipeline.store_fetched_many

    def buggy(graph, items, seen_at=None, **options):
        if any(result.image.id == ids[2] for result, _ in items):
            raise TypeError("unsupported value")
        return real(graph, items, seen_at, **options)

    monkeypatch.setattr(pipeline, "store_fetched_many", buggy)
    statuses = tasks.fetch_images(state.id, ids, 0)
    assert statuses[2] == "failed:unexpected_error"
    assert all(s.startswith("fetched") for i, s in enumerate(statuses) if i != 2)
    assert state.failures()[ids[2]].startswith("unexpected_error: TypeError: unsupported value")
    stored = store.get_images(ids)
    assert all(stored[i].get("fetched_at") for i in ids if i != ids[2])


def test_a_bug_anywhere_else_in_the_task_fails_its_unsettled_images(batch, monkeypatch) -> None:
    ids, state, _ = batch

    def broken(state, ready, depth):
        raise KeyError("nobody expected this")

    monkeypatch.setattr(tasks, "_store_batch", broken)
    assert tasks.fetch_images(state.id, ids, 0) == ["failed:unexpected_error"] * len(ids)
    assert state.summary()["counts"]["failed"] == {"unexpected_error": len(ids)}
    assert state.summary()["status"] == "done"  # nothing is left to wait for


def test_a_bug_in_a_hash_task_is_recorded(batch, monkeypatch) -> None:
    ids, state, store = batch
    assert all(s.startswith("fetched") for s in tasks.fetch_images(state.id, ids[:1], 0))
    listed = ids[0]
    monkeypatch.setattr(
        pipeline,
        "store_thumbnails",
        lambda *a, **k: (_ for _ in ()).throw(MemoryError("out of memory")),
    )
    state.r.hset(state.p + "hashing", listed, 0)  # as if this image waited for its hash task
    result = tasks.hash_for_crawl(
        state, listed, store.get_image(listed)["thumbnail_url"], needs=HASH_ONLY
    )
    assert result == "failed:unexpected_error"
    assert state.failures()[f"{listed}:thumbnail"].startswith(
        "unexpected_error: MemoryError: out of memory"
    )
