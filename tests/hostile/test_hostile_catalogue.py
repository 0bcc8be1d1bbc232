"""A hostile catalogue through the real crawler (Celery workers, Redis, the graph server, real
HTTP): each hostile answer fails its image alone, with a clear reason recorded on the node and
in the crawl; the crawl ends; and the graph keeps what it held."""

from __future__ import annotations

from typing import Any

import pytest

from lookalike.graph import GraphStore
from services.replica.collection import Collection
from tests.crawl.conftest import crawl_settings
from tests.crawl.reference import reference_bfs
from tests.crawl.test_crawl_e2e import assert_graph_matches, assert_hashes_match, pick_seed, wait
from tests.hostile.hostile_catalogue import HostileCatalogue
from workers import control

pytestmark = pytest.mark.timeout(600)

# Fail fast: a 2 s deadline per request, one retry in the client, one more try of the task.
FAST = {"LOOKALIKE_HTTP_TIMEOUT": "2", "LOOKALIKE_MAX_RETRIES": "1", "LOOKALIKE_TASK_RETRIES": "1"}
# Properties a crawl moves on (or notes a failure in) without changing what the graph says.
VOLATILE = {
    "fetched_at",
    "hashed_at",
    "fetch_error",
    "fetch_failed_at",
    "hash_error",
    "hash_failed_at",
}


def graph_state(store: GraphStore) -> tuple[dict[str, dict[str, Any]], set[tuple[Any, ...]]]:
    whole = store.export_all()
    nodes = {i: {k: v for k, v in n.items() if k not in VOLATILE} for i, n in whole.nodes.items()}
    return nodes, set(whole.edges)


def run_crawl(s, w, seed: str, depth: int) -> tuple[str, dict[str, Any]]:
    record = control.start_crawl(s, [seed], depth)
    return record["id"], wait(s, record["id"], w, 400)


def test_hostile_records_fail_alone_and_the_graph_keeps_what_it_had(
    hostile: HostileCatalogue, small_collection: Collection, fresh_graph, workers
) -> None:
    local, store = fresh_graph
    seed = pick_seed(small_collection)
    w = workers(local, hostile.env(), n=2, **FAST)
    s = crawl_settings(local, hostile.env())
    _, first = run_crawl(s, w, seed, 2)
    assert first["status"] == "done" and first["counts"]["failed_total"] == 0, w.log_text()
    before = graph_state(store)

    nested, bomb, trickle = [i for i in small_collection.similar_ids(seed) if i != seed][:3]
    hostile.make_hostile(nested, "nested_json")
    hostile.make_hostile(bomb, "gzip_bomb_json")
    hostile.make_hostile(trickle, "trickle_json")
    second_id, second = run_crawl(s, w, seed, 2)

    assert second["status"] == "done", w.log_text()
    assert second["counts"]["failed"] == {
        "malformed_json": 1,
        "response_too_large": 1,
        "unavailable": 1,
    }
    failures = control.crawl_failures(s, second_id)
    assert set(failures) == {nested, bomb, trickle}
    # Deep nesting is bad JSON, said so (it used to kill the task with RecursionError).
    assert failures[nested].startswith("malformed_json:")
    assert "nested too deeply" in failures[nested]
    # The gzip bomb is cut at the JSON limit, named as such (not the thumbnail limit's name).
    assert failures[bomb].startswith("response_too_large:")
    assert "gzip" in failures[bomb] and "catalogue JSON answer" in failures[bomb]
    assert "thumbnail" not in failures[bomb].lower()
    # The trickle is cut off by the request's deadline.
    assert failures[trickle].startswith("unavailable:")
    assert "limit for a whole request" in failures[trickle]
    # Recorded on the nodes too, and nothing the graph held was lost or changed.
    nodes = store.get_images([nested, bomb, trickle])
    for image_id, why in failures.items():
        assert nodes[image_id]["fetch_error"] == why
    assert graph_state(store) == before


def test_a_trickling_thumbnail_is_cut_off_and_recorded(
    hostile: HostileCatalogue, small_collection: Collection, fresh_graph, workers
) -> None:
    local, store = fresh_graph
    seed = pick_seed(small_collection)
    victim = next(i for i in small_collection.similar_ids(seed) if i != seed)
    hostile.make_hostile(victim, "trickle_thumbnail")
    w = workers(local, hostile.env(), n=2, **FAST)
    s = crawl_settings(local, hostile.env())
    crawl_id, final = run_crawl(s, w, seed, 1)

    assert final["status"] == "done", w.log_text()
    assert final["counts"]["failed"] == {"thumbnail_unavailable": 1}
    why = control.crawl_failures(s, crawl_id)[f"{victim}:thumbnail"]
    assert why.startswith("unavailable:") and "limit for a whole request" in why
    node = store.get_image(victim)
    assert node["hash_error"] == why and not node.get("phash")
    expected = reference_bfs(small_collection.similar_ids, [seed], 1)
    assert_graph_matches(store, expected)
    assert_hashes_match(store, small_collection, expected.nodes - {victim})
    # Tried a bounded number of times (client retries x task tries), not again and again.
    assert 1 <= hostile.hits[("trickle_thumbnail", victim)] <= 6
