"""The frontier's Redis scripts on a real Redis: breadth-first order, levels that open only
when the previous one is complete, duplicate completions ignored, leases that expire."""

from __future__ import annotations

import json
import time

import pytest
import redis

from tests.crawl.reference import reference_bfs
from workers.frontier import HINTS, Completion, CrawlState, FetchStart
from workers.tasks import fetch_batches


def graph(n: int) -> dict[str, list[str]]:
    """A small catalogue: image i lists (2i+1, 2i+2, i+7) mod n, a few shared neighbours."""
    ids = [f"i{k:03d}" for k in range(n)]
    return {
        ids[k]: [ids[(2 * k + 1) % n], ids[(2 * k + 2) % n], ids[(k + 7) % n]] for k in range(n)
    }


def run_sequentially(state: CrawlState, lists: dict[str, list[str]], seeds: list[str]):
    """Drive the frontier like workers would, completing images in a scrambled order."""
    level = 0
    current = list(seeds)
    order: list[str] = []
    while current:
        nxt: list[str] = []
        assert int(state.meta()["level"]) == level  # the watchdog reads the open level here
        # Complete in reverse to show the order of discovery does not matter.
        for image_id in reversed(current):
            assert state.is_pending(image_id, level)
            stored = [(image_id, "u")] + [(n, "u") for n in lists[image_id]]
            out = state.complete_fetch(image_id, level, lists[image_id], stored, 3)
            assert not out.duplicate
            if out.advanced:
                nxt = out.next_level
        order.extend(current)
        current = nxt
        level += 1
    return order


def test_levels_follow_breadth_first_order_and_budget(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    lists = graph(40)
    for max_images in (None, 9):
        state = CrawlState(r, f"t{max_images}", lease_s=60)
        state.create(["i000"], 3, max_images)
        order = run_sequentially(state, lists, ["i000"])
        expected = reference_bfs(lists.__getitem__, ["i000"], 3, max_images=max_images)
        # Within a level the frontier orders images as a sequential BFS would.
        assert order == expected.fetched
        assert state.meta()["fetch_done"] == "1"
        assert set(state.image_ids()) == expected.nodes | set(order)


def test_next_level_waits_for_the_whole_current_level(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    lists = graph(20)
    state = CrawlState(r, "wait", lease_s=60)
    state.create(["i000", "i005"], 2, None)
    first = state.complete_fetch("i000", 0, lists["i000"], [], 0)
    assert not first.advanced and first.next_level == []
    assert state.pending(1) == []  # nothing at depth 1 is dispatched yet
    second = state.complete_fetch("i005", 0, lists["i005"], [], 0)
    assert second.advanced and set(second.next_level) == set(lists["i000"] + lists["i005"])
    # A duplicate completion (a redelivered task) changes nothing.
    assert state.complete_fetch("i005", 0, lists["i005"], [], 0).duplicate
    assert state.summary()["counts"]["fetched"] == 2


def test_expired_leases_are_found_once_and_hashes_finish_the_crawl(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    state = CrawlState(r, "lease", lease_s=0.2)
    state.create(["i000", "i001"], 0, None)
    out = state.complete_fetch("i000", 0, [], [("i000", "http://x/i000/info.json")], 0)
    assert out.to_hash == ["i000"]
    time.sleep(0.3)
    # Still queued while the broker has messages: a long queue is not a dead worker.
    assert state.stale(queue_empty=False) == (0, [], [])
    level, fetches, hashes = state.stale(queue_empty=True)
    assert (level, fetches, hashes) == (0, ["i001"], ["i000"])
    # Marks renewed: not dispatched twice at once.
    assert state.stale(queue_empty=True) == (0, [], [])
    # A started image whose worker died is found even while the queue is busy.
    assert state.claim("i001", 0)
    time.sleep(0.3)
    assert state.stale(queue_empty=False) == (0, ["i001"], [])
    assert not state.claim("nope", 0)
    assert not state.fail_fetch("i001", 0, "malformed_json", "line 1: bad").finished
    assert not state.maybe_finish()  # a hash is still outstanding
    assert state.fail_hash("i000", "not_an_image", "text/html") == 2  # ... that ended the crawl
    assert state.fail_hash("i000", "not_an_image", "text/html") == 0  # a duplicate completion
    summary = state.summary()
    assert summary["status"] == "done"
    assert summary["counts"]["failed"] == {"malformed_json": 1, "thumbnail_not_an_image": 1}
    assert state.failures()["i001"].startswith("malformed_json")


def test_cancelled_crawl_never_finishes_as_done(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    state = CrawlState(r, "cancel", lease_s=60)
    state.create(["i000"], 1, None)
    assert state.cancel()
    state.complete_fetch("i000", 0, [], [], 0)
    assert not state.maybe_finish()
    assert state.status() == "cancelled"
    assert not state.cancel()


def run_inline(
    state: CrawlState,
    lists: dict[str, list[str]],
    seeds: list[str],
    prehash: bool = False,
    batch: int = 1,
):
    """Like ``run_sequentially``, with the fetching worker hashing what it fetches: returns the
    fetched images by depth and, per image, who hashes it ("self" = its fetch, "task" = a hash
    task). ``prehash``: the fetch hashes before its write whenever ``start_fetch`` expects it
    to hash, as the fetch task does for images whose hint is not current. ``batch``: images
    per fetch task, started together and then completed together, as ``fetch_batch`` does."""
    level, current = 0, list(seeds)
    fetched: dict[str, int] = {}
    hashed_by: dict[str, list[str]] = {}
    while current:
        nxt: list[str] = []
        assert int(state.meta()["level"]) == level  # the watchdog reads the open level here
        chunks = fetch_batches(list(reversed(current)), batch)
        assert [i for chunk in chunks for i in chunk] == list(reversed(current))
        for n, chunk in enumerate(chunks):
            starts = state.start_fetches(chunk, level)
            assert None not in starts
            done = []
            for image_id, start in zip(chunk, starts, strict=True):
                stored = [(image_id, "u")] + [(n, "u") for n in lists[image_id]]
                hint = f"v u{image_id}" if prehash and start.will_hash else None
                done.append(Completion(image_id, lists[image_id], stored, 3, hint))
            outs = state.complete_fetches(level, done, inline_hash=True)
            # Only the completion that empties the level opens the next one.
            assert [o.advanced for o in outs] == [False] * (len(outs) - 1) + [n == len(chunks) - 1]
            for image_id, start, out in zip(chunk, starts, outs, strict=True):
                assert not out.duplicate
                # Without other workers nothing races: the start's expectation is right, even
                # for an image its own batch lists before it is completed.
                assert start.will_hash == out.hash_self, image_id
                assert out.hashed == (out.hash_self and prehash)
                if out.hash_self:
                    hashed_by.setdefault(image_id, []).append("self")
                for h in out.to_hash:
                    hashed_by.setdefault(h, []).append("task")
                if out.advanced:
                    nxt = out.next_level
            # A redelivered batch changes nothing.
            assert state.start_fetches(chunk, level) == [None] * len(chunk)
            assert all(o.duplicate for o in state.complete_fetches(level, done, True))
        fetched.update(dict.fromkeys(current, level))
        current = nxt
        level += 1
    return fetched, hashed_by


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_inline_hashing_hashes_every_stored_image_exactly_once(redis_url: str, batch: int) -> None:
    r = redis.Redis.from_url(redis_url)
    lists = graph(40)
    for depth, max_images in ((3, None), (3, 9), (1, None), (0, None)):
        state = CrawlState(r, f"inline{depth}-{max_images}-{batch}", lease_s=60)
        state.create(["i000", "i003"], depth, max_images)
        fetched, hashed_by = run_inline(state, lists, ["i000", "i003"], batch=batch)
        assert (
            list(fetched)
            == reference_bfs(
                lists.__getitem__, ["i000", "i003"], depth, max_images=max_images
            ).fetched
        )
        nodes = set(state.image_ids())
        assert set(hashed_by) == nodes
        assert all(len(ways) == 1 for ways in hashed_by.values()), hashed_by
        # Images never fetched (past the depth, cut by the budget) are hashed by tasks; most
        # fetched ones by their own fetch (one task per image instead of two).
        for image_id in nodes - set(fetched):
            assert hashed_by[image_id] == ["task"]
        # Every fetched image by its own fetch, even one a sibling at the last level listed
        # first: it is still pending at that level, so its hash waits for its fetch.
        for image_id in fetched:
            assert hashed_by[image_id] == ["self"], image_id
        assert not r.exists(state.p + "deferred")
        marks = {k.decode(): int(v) for k, v in r.hgetall(state.p + "hashing").items()}
        # Inline hashes are leased to the fetching worker at once; task hashes wait queued.
        assert all((marks[i] > 0) == (hashed_by[i] == ["self"]) for i in nodes)
        completions = [state.complete_hash(image_id) for image_id in sorted(nodes)]
        assert completions == [1] * (len(nodes) - 1) + [2]  # the last one ends the crawl
        assert state.status() == "done" and not state.maybe_finish()


def test_fetches_that_hash_before_writing_are_counted_at_completion(redis_url: str) -> None:
    """A fetch that hashed its image before the graph write (``prehashed``) leaves no hash
    outstanding for it, records its hint, and the crawl ends with its last completion."""
    r = redis.Redis.from_url(redis_url)
    r.delete(HINTS)
    lists = graph(40)
    state = CrawlState(r, "prehash", lease_s=60)
    state.create(["i000", "i003"], 2, None)
    _, hashed_by = run_inline(state, lists, ["i000", "i003"], prehash=True)
    nodes = set(state.image_ids())
    assert all(len(ways) == 1 for ways in hashed_by.values()) and set(hashed_by) == nodes
    by_self = {i for i, ways in hashed_by.items() if ways == ["self"]}
    outstanding = {k.decode() for k in r.hkeys(state.p + "hashing")}
    assert outstanding == nodes - by_self  # only the task hashes are left
    assert state.summary()["counts"]["hashed"] == len(by_self)
    assert {k.decode(): v.decode() for k, v in r.hgetall(HINTS).items()} == {
        i: f"v u{i}" for i in by_self
    }
    # A second crawl over the same images sees each hint, and hashes by task only.
    again = CrawlState(r, "prehash-again", lease_s=60)
    again.create(["i000"], 0, None)
    start = again.start_fetch("i000", 0)
    assert start == FetchStart(will_hash=True, hint="v ui000")
    completions = [state.complete_hash(i) for i in sorted(outstanding)]
    assert completions[-1] == 2 and state.status() == "done"


def test_a_fetch_starts_only_while_its_crawl_runs_and_its_image_is_pending(
    redis_url: str,
) -> None:
    r = redis.Redis.from_url(redis_url)
    state = CrawlState(r, "start", lease_s=60)
    state.create(["i000", "i001"], 1, None)
    assert state.start_fetch("nope", 0) is None  # never dispatched
    assert state.start_fetch("i000", 0) is not None
    state.complete_fetch("i000", 0, [], [("i000", "u")], 0, inline_hash=True)
    assert state.start_fetch("i000", 0) is None  # a redelivered task after completion
    state.cancel()
    assert state.start_fetch("i001", 0) is None and not state.claim("i001", 0)


def test_inline_hashing_hands_deferred_images_to_tasks_when_they_will_not_be_fetched(
    redis_url: str,
) -> None:
    r = redis.Redis.from_url(redis_url)
    lists = graph(20)  # i000 lists i001, i002, i007
    state = CrawlState(r, "deferred-fail", lease_s=60)
    state.create(["i000", "i001"], 2, None)
    stored = [("i000", "u0")] + [(n, f"u{n}") for n in lists["i000"]]
    out = state.complete_fetch("i000", 0, lists["i000"], stored, 3, inline_hash=True)
    assert out.hash_self and out.to_hash == []  # i001 (this level), i002/i007 (next): deferred
    # i001's fetch fails: nobody will fetch it, so it is hashed from i000's listing.
    out = state.fail_fetch("i001", 0, "malformed_json", "bad", inline_hash=True)
    assert out.to_hash == ["i001"] and not out.hash_self
    assert out.advanced and set(out.next_level) == {"i002", "i007"}
    assert state.thumbnail_url("i001") == "ui001"

    budget = CrawlState(r, "deferred-budget", lease_s=60)
    budget.create(["i000"], 2, 2)
    out = budget.complete_fetch("i000", 0, lists["i000"], stored, 3, inline_hash=True)
    # The budget admits one more image (i001, first in BFS order); the other two listed
    # images will never be fetched, so they get hash tasks now.
    assert out.next_level == ["i001"] and sorted(out.to_hash) == ["i002", "i007"]


def test_every_worker_s_watchdog_redispatches_a_dead_worker_s_image(
    redis_url: str, settings
) -> None:
    """The crawl's own watcher may die with the worker that held it: the watchdog each worker
    runs finds the expired lease and dispatches the image again, through the real broker."""
    from workers.app import app
    from workers.watchdog import watch_running

    r = redis.Redis.from_url(redis_url)
    state = CrawlState(r, "watchdog", lease_s=0.2)
    state.create(["i000"], 1, None)
    assert state.claim("i000", 0)  # a worker started it, then died
    queue = app.conf.task_default_queue
    before = r.llen(queue)
    try:
        assert watch_running(r, 0.2, limit=1) == 0  # the lease has not expired yet
        time.sleep(0.3)
        assert watch_running(r, 0.2, limit=1) == 1
        assert r.llen(queue) == before + 1
        message = json.loads(r.lindex(queue, 0))
        assert message["headers"]["task"] == "lookalike.fetch_image"
        assert message["headers"]["argsrepr"] == "('watchdog', 'i000', 0)"
        assert watch_running(r, 0.2, limit=1) == 0  # dispatched once, not on every look
    finally:
        state.cancel()  # whichever worker receives the message skips it
