"""End-to-end crawls: real Celery workers, real Redis, the real Bolt server, real HTTP to the
replica. Every result is checked against a breadth-first walk computed directly from the
replica's own data (tests/crawl/reference.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lookalike import localmatch, stack
from lookalike.graph import GraphStore
from lookalike.hashing import algorithm_version, decode_image, hash_bytes
from lookalike.viewstore import ViewStore
from services.replica.collection import Collection
from services.replica.faults import FaultConfig, FaultPlan, max_in_window
from services.replica.server import run_replica
from tests.crawl.conftest import crawl_settings
from tests.crawl.reference import reference_bfs
from workers import control

pytestmark = pytest.mark.timeout(600)


def wait(s, crawl_id: str, w, timeout: float) -> dict:
    """Wait for the crawl, failing at once (with the workers' logs) if every worker died."""

    def check(_summary: dict) -> None:
        if all(p.poll() is not None for p in w.procs):
            raise AssertionError("all workers exited:\n" + w.log_text())

    return control.wait_for(s, crawl_id, timeout=timeout, on_progress=check)


def pick_seed(collection: Collection) -> str:
    """A painting with a full similar list (not one of the test documents)."""
    return next(i for i in collection.ids if len(collection.similar_ids(i)) == 5)


def assert_graph_matches(store: GraphStore, expected) -> None:
    whole = store.export_all()
    assert set(whole.nodes) == expected.nodes
    assert set(whole.edges) == expected.edges
    fetched = {i for i, n in whole.nodes.items() if n.get("fetched_at")}
    assert fetched == set(expected.fetched)


def assert_hashes_match(store: GraphStore, collection: Collection, ids) -> None:
    nodes = store.get_images(sorted(ids))
    for image_id in ids:
        node = nodes[image_id]
        asset = collection.asset_id(image_id)
        truth = hash_bytes(collection.thumbnail_bytes(asset, "!400,400")).as_dict()
        got = {k: node.get(k) for k in truth}
        assert got == truth, f"hashes of {image_id} differ from imagehash on its thumbnail"
        assert node["hash_version"] == algorithm_version()


def assert_views_match(settings, collection: Collection, ids) -> None:
    """The workers left in the view store the verification view of each thumbnail they
    hashed, as lookalike.localmatch makes it from the decoded thumbnail."""
    views = ViewStore(settings.view_dir, max_bytes=0)
    for image_id in sorted(ids):
        thumbnail = collection.thumbnail_bytes(collection.asset_id(image_id), "!400,400")
        got = views.get(image_id)
        assert got is not None, f"no view of {image_id} in {settings.view_dir}"
        assert np.array_equal(got, localmatch.view(decode_image(thumbnail)))


@pytest.mark.parametrize(
    ("legacy", "depth"),
    [(False, 2), (False, 3), (True, 2)],
    ids=["modern-d2", "modern-d3", "legacy-d2"],
)
def test_crawl_matches_reference_walk(
    demo_collection: Path, fresh_graph, workers, legacy: bool, depth: int
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    expected = reference_bfs(collection.similar_ids, [seed], depth)
    with run_replica(collection, legacy=legacy) as replica:
        extra = {"LOOKALIKE_LEGACY_SIMILAR": "true"} if legacy else {}
        w = workers(local, replica.env(), n=2, **extra)
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], depth)
        final = wait(s, record["id"], w, 300)
        assert final["status"] == "done", w.log_text()
    c = final["counts"]
    assert c["fetched"] == len(expected.fetched)
    assert c["failed_total"] == 0, control.crawl_failures(s, record["id"])
    assert c["depth_reached"] == depth
    assert c["edges"] == len(expected.edges)
    assert_graph_matches(store, expected)
    assert set(control.crawl_image_ids(s, record["id"])) == expected.nodes
    assert_hashes_match(store, collection, expected.nodes)
    assert_views_match(s, collection, expected.nodes)
    fields = {
        n.get("similar_field") for n in store.export_all().nodes.values() if n.get("fetched_at")
    }
    assert fields == {"visuallySimilar" if legacy else "withSimilarFeatures"}


def test_max_images_cuts_breadth_first_order(demo_collection: Path, fresh_graph, workers) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    expected = reference_bfs(collection.similar_ids, [seed], 4, max_images=17)
    with run_replica(collection) as replica:
        w = workers(local, replica.env(), n=2)
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 4, max_images=17)
        final = wait(s, record["id"], w, 300)
    assert final["counts"]["fetched"] == 17
    assert_graph_matches(store, expected)


def test_killed_worker_and_restarted_graph_server_still_give_the_exact_graph(
    demo_collection: Path, fresh_graph, workers, settings
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    expected = reference_bfs(collection.similar_ids, [seed], 3)
    with run_replica(collection, faults="seed=1,slow=0.3,slow_s=0.3") as replica:
        w = workers(local, replica.env(), n=2)
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 3)
        # Kill one worker outright while images are in flight.
        deadline = time.monotonic() + 120
        while control.get_crawl(s, record["id"])["counts"]["fetched"] < 5:
            assert time.monotonic() < deadline, w.log_text()
            time.sleep(0.1)
        w.kill(w.procs[0])
        # Then stop the graph server under the remaining worker and bring it back.
        while control.get_crawl(s, record["id"])["counts"]["fetched"] < 15:
            assert time.monotonic() < deadline, w.log_text()
            time.sleep(0.1)
        graph_pid = settings.embedded()["graph"]["pid"]
        stack.stop_pid(graph_pid)
        time.sleep(2)
        stack.up(settings)
        final = wait(s, record["id"], w, 400)
        assert final["status"] == "done", w.log_text()
    store.close()
    with GraphStore.connect(local) as fresh:
        assert_graph_matches(fresh, expected)
        assert_hashes_match(fresh, collection, expected.nodes)
    assert final["counts"]["failed_total"] == 0


def test_faults_are_survived_and_recorded(demo_collection: Path, fresh_graph, workers) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    rates = (
        "5xx=0.1,429=0.05,retry_after=1,malformed=0.02,corrupt_thumb=0.02,"
        "nonimage_thumb=0.01,missing=0.01,drop=0.01"
    )

    def plan_for(fault_seed: int):
        plan = FaultPlan(FaultConfig.parse(f"seed={fault_seed},{rates}"))
        bad = {i for i in collection.ids if plan.json_fault(i)}
        walk = reference_bfs(collection.similar_ids, [seed], 3, unfetchable=bad)
        return plan, bad, walk

    # The first fault seed whose permanent faults hit this walk (records and thumbnails), so
    # the test exercises every kind of bad input at the rates.
    for fault_seed in range(1, 200):
        plan, bad_json, expected = plan_for(fault_seed)
        if (
            seed not in bad_json
            and bad_json & set(expected.fetched)
            and any(plan.thumb_fault(i) for i in expected.nodes)
        ):
            break
    spec = f"seed={fault_seed},{rates}"
    rate = 15.0
    with run_replica(collection, faults=spec) as replica:
        plan = replica.fault_plan
        w = workers(
            local,
            replica.env(),
            n=2,
            LOOKALIKE_RATE_LIMIT=str(rate),
            LOOKALIKE_RATE_BURST="3",
            LOOKALIKE_TASK_RETRIES="2",
            LOOKALIKE_MAX_RETRIES="3",
            LOOKALIKE_BACKOFF_BASE="0.2",
        )
        s = crawl_settings(local, replica.env())
        record = control.start_crawl(s, [seed], 3)
        final = wait(s, record["id"], w, 500)
        assert final["status"] == "done", w.log_text()
        stats = replica.stats(timestamps=True)
    assert seed not in bad_json
    failures = control.crawl_failures(s, record["id"])
    fetched_bad = bad_json & set(expected.fetched)
    assert fetched_bad, "the fault seed should make some fetched image bad; pick another seed"
    # Every bad record is recorded with its reason; every good one is in the graph intact.
    for image_id in fetched_bad:
        reason = plan.json_fault(image_id)
        want = "not_found" if reason == "missing" else "malformed_json"
        assert failures[image_id].startswith(want), (image_id, failures[image_id])
    whole = store.export_all()
    assert set(whole.nodes) == expected.nodes
    assert set(whole.edges) == expected.edges
    good = set(expected.fetched) - bad_json
    assert {i for i, n in whole.nodes.items() if n.get("fetched_at")} == good
    # Broken thumbnails: reason on the node, hashes absent; every other node hashed right.
    broken = {i for i in expected.nodes if plan.thumb_fault(i)}
    assert broken, "the fault seed should break some thumbnails"
    for image_id in broken:
        assert whole.nodes[image_id].get("hash_error"), image_id
        assert "phash" not in whole.nodes[image_id]
    assert_hashes_match(store, collection, expected.nodes - broken)
    # The shared rate limit held across both workers (server-side clock).
    times = sorted(t for kind in stats["timestamps"].values() for t in kind)
    worst = max_in_window(times, 1.0)
    assert worst <= rate + 3 + 1, f"{worst} requests in one second with a limit of {rate}/s"
