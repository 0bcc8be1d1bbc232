"""Redis away while a fetch task hands its batch's vectors to the indexer (restarting,
failing over, a network blip): nothing of the batch is written, each image is tried again on
its own with the retry policy's backoff (``REDIS_RESTARTS``), and an image whose tries run
out is recorded as ``redis_unavailable`` while the others are stored. Redis away where no
step waits for it fails nothing: the images wait for their leases. The hand-off's client is a
small fake (failing while told Redis is away) or a real client pointed at a closed port; the
frontier, the broker, the graph server and the replica are the real ones, and in the
end-to-end test real Celery workers run the retries."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from lookalike import vectors as stream
from lookalike.ids import new_crawl_id
from lookalike.retry import RetryPolicy
from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import crawl_settings, worker_env
from tests.crawl.test_crawl_e2e import assert_hashes_match, pick_seed, wait
from tests.crawl.test_fetch_task import as_worker, batch_crawl  # noqa: F401 - fixture
from workers import pipeline, tasks
from workers.frontier import EMBED_HINTS, HINTS, CrawlState
from workers.pipeline import Needs

pytestmark = pytest.mark.timeout(300)


class AwayRedis:
    """The hand-off's Redis client: while ``away``, a pipeline's execute raises the
    ConnectionError of a Redis that is not there; otherwise the real client does the work."""

    def __init__(self, real: redis.Redis) -> None:
        self.real = real
        self.away = True
        self.refused = 0

    def pipeline(self, **options: Any) -> Any:
        pipe = self.real.pipeline(**options)
        if not self.away:
            return pipe
        outer = self

        class Refusing:
            def __getattr__(self, name: str) -> Any:
                return getattr(pipe, name)

            def execute(self) -> list[Any]:
                outer.refused += 1
                raise redis.exceptions.ConnectionError("Error 111 connecting: Connection refused.")

        return Refusing()


def hand_off_through(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    """Have the fetch tasks of this process hand their vectors to ``client`` (the frontier
    and the broker keep the real Redis)."""
    real = pipeline.publish_vectors
    monkeypatch.setattr(
        pipeline,
        "publish_vectors",
        lambda _redis, thumbs, maxlen, **options: real(client, thumbs, maxlen, **options),
    )


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _embedding(state: CrawlState) -> str:
    model = tasks.resources().model
    if model is None:
        state.cancel()
        pytest.skip("embeddings are off (LOOKALIKE_EMBEDDINGS=0): no vectors to hand over")
    return model


def _vectors_since(r: redis.Redis, after: str | None) -> set[str]:
    entries, _, bad = stream.read_all(r, after or "0-0")
    assert bad == 0
    return {e.image_id for e in entries}


@dataclass
class Batch:
    ids: list[str]
    state: CrawlState
    store: Any
    collection: Collection
    handoff: AwayRedis
    before: str | None  # the stream's last id before the test


@pytest.fixture
def away_batch(
    demo_collection: Path,
    fresh_graph,
    as_worker,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Batch]:
    """A depth-0 crawl of four images none of which is hashed or embedded yet, this process
    its worker, whose vector hand-off goes to an ``AwayRedis``."""
    local, store, collection, ids, state = batch_crawl(
        demo_collection, fresh_graph, f"handoff-{uuid.uuid4().hex[:8]}", 4, lease_s=60
    )
    state.r.hdel(HINTS, *ids)
    state.r.hdel(EMBED_HINTS, *ids)
    with run_replica(collection) as replica:
        as_worker(worker_env(local, replica.env()))
        _embedding(state)
        handoff = AwayRedis(tasks.resources().redis)
        hand_off_through(monkeypatch, handoff)
        try:
            yield Batch(ids, state, store, collection, handoff, stream.last_id(handoff.real))
        finally:
            state.cancel()


def test_redis_away_at_the_handoff_retries_each_image_then_stores_it(away_batch: Batch) -> None:
    ids, state, store, handoff = (
        away_batch.ids,
        away_batch.state,
        away_batch.store,
        away_batch.handoff,
    )
    assert tasks.fetch_images(state.id, ids, 0) == ["retry"] * len(ids)
    assert handoff.refused == 1
    assert state.summary()["counts"]["failed"] == {}
    assert state.pending(0) == sorted(ids)  # still the crawl's, their leases extended
    attempts = state.r.hgetall(state.p + "attempts")
    assert {k.decode(): int(v) for k, v in attempts.items()} == {f"redis:{i}": 1 for i in ids}
    nodes = store.get_images(ids)
    assert not any(n.get("fetched_at") for n in nodes.values())  # the write waits its turn

    handoff.away = False  # Redis is back: what the re-queued single-image tasks then do
    assert [tasks.fetch_image(state.id, i, 0) for i in ids] == ["fetched+hashed-with-fetch"] * len(
        ids
    )
    assert set(state.fetched_ids()) == set(ids)
    assert state.summary()["counts"]["failed"] == {}
    nodes = store.get_images(ids)
    assert all(nodes[i].get("fetched_at") and nodes[i].get("embed_model") for i in ids)
    assert _vectors_since(handoff.real, away_batch.before) == set(ids)


def test_redis_away_past_its_tries_fails_that_image_alone_with_its_reason(
    away_batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, state, store, handoff = (
        away_batch.ids,
        away_batch.state,
        away_batch.store,
        away_batch.handoff,
    )
    monkeypatch.setattr(tasks, "REDIS_RESTARTS", RetryPolicy(retries=2, base=0.01, cap=0.01))
    assert tasks.fetch_images(state.id, ids, 0) == ["retry"] * len(ids)
    lost = ids[1]
    # Redis stays away for one image's tries, and is back for the others'.
    assert tasks.fetch_image(state.id, lost, 0) == "retry"
    assert tasks.fetch_image(state.id, lost, 0) == "failed:redis_unavailable"
    handoff.away = False
    rest = [i for i in ids if i != lost]
    assert all(tasks.fetch_image(state.id, i, 0).startswith("fetched") for i in rest)

    assert state.summary()["counts"]["failed"] == {"redis_unavailable": 1}
    why = state.failures()[lost]
    assert why.startswith("redis_unavailable: Redis did not take the image's vector")
    assert "Connection refused" in why
    assert set(state.fetched_ids()) == set(ids)  # done with, one way or the other
    nodes = store.get_images(ids)
    assert not nodes[lost].get("fetched_at")
    assert all(nodes[i].get("fetched_at") and nodes[i].get("embed_model") for i in rest)
    assert_hashes_match(store, away_batch.collection, rest)
    assert _vectors_since(handoff.real, away_batch.before) == set(rest)


def test_crawl_whose_handoff_found_redis_closed_ends_with_every_image_stored(
    demo_collection: Path,
    fresh_graph,
    as_worker,  # noqa: F811
    workers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: a fetch task's hand-off meets a real client at a closed port (Redis not
    there), real Celery workers run the retries it queued, and the crawl ends done with every
    image stored, embedded, and its vector waiting in Redis for the indexer."""
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    ids = [seed, *collection.similar_ids(seed)[:3]]
    # A crawl as ``control.start_crawl`` makes one, whose first batch this process fetches.
    state = CrawlState(redis.Redis.from_url(local.redis()), new_crawl_id(), lease_s=60)
    state.create(ids, 0, None)
    with run_replica(collection) as replica:
        w = workers(local, replica.env(), n=1)  # clears the hints: nothing is hashed yet
        as_worker(worker_env(local, replica.env()))
        model = _embedding(state)
        before = stream.last_id(tasks.resources().redis)
        hand_off_through(monkeypatch, redis.Redis(port=closed_port(), socket_connect_timeout=2))
        try:
            assert tasks.fetch_images(state.id, ids, 0) == ["retry"] * len(ids)
            final = wait(crawl_settings(local, replica.env()), state.id, w, 240)
        finally:
            state.cancel()
    assert final["status"] == "done", w.log_text()
    assert final["counts"]["failed_total"] == 0
    nodes = store.get_images(ids)
    assert all(nodes[i].get("fetched_at") for i in ids)
    assert {nodes[i].get("embed_model") for i in ids} == {model}
    assert_hashes_match(store, collection, ids)
    assert _vectors_since(redis.Redis.from_url(local.redis()), before) >= set(ids)


def test_redis_away_while_a_hash_task_hands_over_retries_then_records(
    away_batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for an image a hash task looks at (one the crawl lists but does not fetch):
    tried again through ``hash_image``, then recorded on the node and in the crawl."""
    state, store, handoff = away_batch.state, away_batch.store, away_batch.handoff
    monkeypatch.setattr(tasks, "REDIS_RESTARTS", RetryPolicy(retries=1, base=0.01, cap=0.01))
    seed = away_batch.ids[0]
    handoff.away = False
    assert tasks.fetch_image(state.id, seed, 0).startswith("fetched")
    listed = next(i for i in away_batch.collection.similar_ids(seed) if i not in away_batch.ids)
    url = store.get_image(listed)["thumbnail_url"]
    handoff.away = True
    assert tasks.hash_for_crawl(state, listed, url, needs=Needs(True, True)) == "retry"
    assert state.summary()["counts"]["failed"] == {}
    assert tasks.hash_for_crawl(state, listed, url, needs=Needs(True, True)) == (
        "failed:redis_unavailable"
    )
    why = state.failures()[f"{listed}:thumbnail"]
    assert why.startswith("redis_unavailable: Redis stayed away while this thumbnail was hashed")
    assert store.get_image(listed)["hash_error"] == why
    assert state.summary()["counts"]["failed"] == {"thumbnail_redis_unavailable": 1}


def test_redis_away_elsewhere_in_a_fetch_task_leaves_its_images_to_their_leases(
    away_batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis away where no step waits for it (the shared rate limit, ahead of a request):
    nothing can be recorded, so nothing is failed; the task's images stay the crawl's under
    their leases, and the watchdog hands them out again once those expire."""
    ids, state, store = away_batch.ids, away_batch.state, away_batch.store
    client = tasks.resources().client
    get_image = client.get_image

    def throttled(image_id: str, **kwargs: Any) -> Any:
        if image_id == ids[2]:
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return get_image(image_id, **kwargs)

    monkeypatch.setattr(client, "get_image", throttled)
    with pytest.raises(redis.exceptions.TimeoutError):
        tasks.fetch_images(state.id, ids, 0)
    assert state.failures() == {}
    leases = {k.decode(): int(v) for k, v in state.r.hgetall(state.p + "pending:0").items()}
    assert set(leases) == set(ids) and all(mark > 0 for mark in leases.values())

    state.r.hset(state.p + "pending:0", mapping=dict.fromkeys(ids, 1))  # the leases expire
    assert tasks.requeue_stale(state) == len(ids)
    monkeypatch.setattr(client, "get_image", get_image)
    away_batch.handoff.away = False
    assert all(tasks.fetch_image(state.id, i, 0).startswith("fetched") for i in ids)
    assert state.summary()["counts"]["failed"] == {}
    assert all(n.get("fetched_at") for n in store.get_images(ids).values())
