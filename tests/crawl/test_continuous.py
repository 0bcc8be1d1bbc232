"""Continuous crawling through real workers: stale images are re-fetched against a changed
catalogue, withdrawn images are marked gone, new images are discovered from the snapshot;
and a crawl can be cancelled without losing what it stored."""

from __future__ import annotations

import gzip
import json
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import crawl_settings
from tests.crawl.reference import reference_bfs
from tests.crawl.test_crawl_e2e import pick_seed, wait
from workers import control
from workers.app import app

pytestmark = pytest.mark.timeout(600)


def newest_crawl(s, kind: str, after: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in control.list_crawls(s):
            if record["kind"] == kind and record["id"] not in after:
                return record
        time.sleep(0.2)
    raise AssertionError(f"no {kind} crawl started within {timeout}s")


def tasks_of(s, crawl_id: str) -> list[str]:
    """The tasks of a crawl still queued in the broker or held by a worker (running,
    prefetched or waiting for their countdown): once none is left, nothing of it can run."""
    queued = redis.Redis.from_url(s.redis()).lrange(app.conf.task_default_queue, 0, -1)
    held = [m for m in queued if crawl_id.encode() in m]
    with app.connection_for_write(s.redis()) as conn:
        look = app.control.inspect(timeout=2.0, connection=conn)
        for found in (look.active(), look.reserved(), look.scheduled()):
            for tasks in (found or {}).values():
                held.extend(t for t in tasks if crawl_id in json.dumps(t))
    return [str(t)[:200] for t in held]


def send(s, task: str) -> None:
    with app.connection_for_write(s.redis()) as conn:
        app.send_task(task, connection=conn)


def test_refresh_follows_a_changed_catalogue(
    demo_collection: Path, fresh_graph, workers, tmp_path: Path
) -> None:
    local, store = fresh_graph
    before = Collection.load(demo_collection)
    seed = pick_seed(before)
    first = reference_bfs(before.similar_ids, [seed], 2)
    with run_replica(before) as replica:
        port = int(replica.image_host.rsplit(":", 1)[1])
        w = workers(local, replica.env(), n=2, LOOKALIKE_CRAWL_TTL_HOURS="0")
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 2)
        assert wait(s, record["id"], w, 300)["status"] == "done"
    old_edge = next(iter(sorted(first.edges)))
    first_seen = next(
        r["first_seen"] for r in store.similar(old_edge[0]) if r["image"]["id"] == old_edge[1]
    )

    # The catalogue changes: one image is withdrawn, another's similar list is rewritten.
    fetched = [i for i in first.fetched if i != seed]
    removed = fetched[-1]
    changed = next(i for i in fetched if i != removed and removed not in before.similar_ids(i))
    new_list = [i for i in before.ids if i not in (changed, removed)][-3:]
    after = before.with_changes(tmp_path / "changed", similar={changed: new_list}, remove=[removed])
    assert after.similar_ids(changed) == new_list

    with run_replica(after, port=port) as replica:
        known = {r["id"] for r in control.list_crawls(s)}
        send(s, "lookalike.refresh_stale")
        refresh = newest_crawl(s, "refresh", known)
        final = wait(s, refresh["id"], w, 300)
    assert final["status"] == "done"
    assert sorted(refresh["seeds"]) == sorted(first.fetched)

    whole = store.export_all()
    out: dict[str, set[tuple[str, str, int]]] = {}
    for e in whole.edges:
        out.setdefault(e[0], set()).add(e)
    for image_id in first.fetched:
        if image_id == removed:
            continue
        want = {(image_id, t, r) for r, t in enumerate(after.similar_ids(image_id), start=1)}
        assert out.get(image_id, set()) == want, image_id
    assert removed not in out, "a withdrawn image keeps no similar-image edges"
    assert whole.nodes[removed]["gone_at"] and "not_found" in whole.nodes[removed]["fetch_error"]
    # Nothing stored is lost: every node of the first crawl is still there.
    assert first.nodes <= set(whole.nodes)
    if old_edge[0] != removed and old_edge in out.get(old_edge[0], set()):
        row = next(r for r in store.similar(old_edge[0]) if r["image"]["id"] == old_edge[1])
        assert row["first_seen"] == first_seen and row["last_seen"] > first_seen


def test_discover_crawls_images_never_fetched(demo_collection: Path, fresh_graph, workers) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    with run_replica(collection) as replica:
        w = workers(
            local,
            replica.env(),
            n=1,
            LOOKALIKE_REFRESH_BATCH="12",
            LOOKALIKE_DISCOVER_SOURCE=replica.snapshot_url,
        )
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 0)
        assert wait(s, record["id"], w, 120)["status"] == "done"
        with urllib.request.urlopen(replica.snapshot_url) as resp:
            lines = gzip.decompress(resp.read()).decode().splitlines()
        snapshot_ids = [json.loads(line)["id"] for line in lines if line.strip()]
        known = {r["id"] for r in control.list_crawls(s)}
        send(s, "lookalike.discover_new")
        discover = newest_crawl(s, "discover", known)
        assert wait(s, discover["id"], w, 300)["status"] == "done"
    assert discover["seeds"] == [i for i in snapshot_ids if i != seed][:12]
    fetched = {i for i, n in store.export_all().nodes.items() if n.get("fetched_at")}
    assert fetched == {seed, *discover["seeds"]}


def test_cancel_stops_a_crawl_and_keeps_what_it_stored(
    demo_collection: Path, fresh_graph, workers
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    with run_replica(collection, faults="seed=2,slow=1.0,slow_s=0.3") as replica:
        w = workers(local, replica.env(), n=1)
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 4)
        deadline = time.monotonic() + 120
        while control.get_crawl(s, record["id"])["counts"]["fetched"] < 3:
            assert time.monotonic() < deadline, w.log_text()
            time.sleep(0.1)
        cancelled = control.cancel_crawl(s, record["id"])
        assert cancelled["status"] == "cancelled"
        stored = store.counts()["images"]
        # Let every task of the crawl that was queued or running when it was cancelled end.
        deadline = time.monotonic() + 120
        while left := tasks_of(s, record["id"]):
            assert time.monotonic() < deadline, (left, w.log_text())
            time.sleep(0.2)
        summary = control.get_crawl(s, record["id"])
    assert summary["status"] == "cancelled"
    assert summary["counts"]["fetched"] <= cancelled["counts"]["fetched"] + 1
    assert store.counts()["images"] >= stored > 0
    assert control.cancel_crawl(s, "nosuchcrawl1") is None
