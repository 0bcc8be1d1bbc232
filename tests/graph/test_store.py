"""The graph store against the real Bolt server: round trips, idempotence, traversals
checked against networkx, concurrent writers."""

from __future__ import annotations

import itertools
import random
import threading

import networkx as nx
import pytest
from neo4j.exceptions import ConstraintError

from lookalike import stack
from lookalike.graph import GraphStore
from lookalike.settings import Settings


def random_catalogue(n: int, seed: int) -> tuple[list[dict], list[tuple[str, str, int]]]:
    """A catalogue-like graph: each image lists up to 5 others, ranked."""
    rng = random.Random(seed)
    ids = [f"img{i:05d}" for i in range(n)]
    images = [
        {"id": i, "title": f"Image {i}", "aspect_ratio": 1.0 + k / n} for k, i in enumerate(ids)
    ]
    edges = []
    for src in ids:
        for rank, dst in enumerate(rng.sample([x for x in ids if x != src], 3), start=1):
            edges.append((src, dst, rank))
    return images, edges


def to_nx(edges) -> nx.Graph:
    g = nx.Graph()
    g.add_edges_from((s, t) for s, t, _ in edges)
    return g


def test_round_trip_and_properties(fresh_graph: tuple[Settings, GraphStore]) -> None:
    _, store = fresh_graph
    store.upsert_images(
        [
            {
                "id": "aaaa1111",
                "title": "A",
                "license": "pdm",
                "aspect_ratio": 1.5,
                "average_color": "#112233",
                "thumbnail_url": "https://x/image/A/info.json",
            },
            {"id": "bbbb2222", "title": "B"},
        ]
    )
    store.upsert_edges([("aaaa1111", "bbbb2222", 1)], seen=1000)
    got = store.get_image("aaaa1111")
    assert got is not None
    assert got["title"] == "A" and got["license"] == "pdm" and got["aspect_ratio"] == 1.5
    assert got["out_degree"] == 1 and got["in_degree"] == 0
    similar = store.similar("aaaa1111")
    assert [(s["image"]["id"], s["rank"], s["first_seen"]) for s in similar] == [
        ("bbbb2222", 1, 1000)
    ]
    assert store.get_image("nope0000") is None


def test_partial_update_keeps_other_properties(fresh_graph) -> None:
    _, store = fresh_graph
    store.upsert_images([{"id": "c1", "title": "C", "phash": "00ff00ff00ff00ff"}])
    store.upsert_images([{"id": "c1", "title": "C2", "phash": None}])
    got = store.get_image("c1")
    assert got["title"] == "C2" and got["phash"] == "00ff00ff00ff00ff"


def test_upserts_are_idempotent(fresh_graph) -> None:
    _, store = fresh_graph
    images, edges = random_catalogue(60, seed=1)
    for _ in range(2):
        store.upsert_images(images, batch=17)
        store.upsert_edges(edges, seen=5, batch=23)
    counts = store.counts()
    assert counts["images"] == 60 and counts["edges"] == len(edges)
    # last_seen moves, first_seen stays.
    store.upsert_edges(edges[:1], seen=9)
    s, t, _ = edges[0]
    row = next(r for r in store.similar(s) if r["image"]["id"] == t)
    assert (row["first_seen"], row["last_seen"]) == (5, 9)
    assert store.counts()["edges"] == len(edges)


def test_prune_removes_only_unlisted_edges(fresh_graph) -> None:
    _, store = fresh_graph
    store.upsert_images([{"id": x} for x in "abcd"])
    store.upsert_edges([("a", "b", 1), ("a", "c", 2), ("a", "d", 3), ("b", "a", 1)])
    assert store.prune_edges({"a": ["c"]}) == 2
    assert [r["image"]["id"] for r in store.similar("a")] == ["c"]
    assert [r["image"]["id"] for r in store.similar("b")] == ["a"]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_neighborhood_matches_networkx(fresh_graph, depth: int) -> None:
    _, store = fresh_graph
    images, edges = random_catalogue(150, seed=depth)
    store.upsert_images(images)
    store.upsert_edges(edges)
    g = to_nx(edges)
    for seed in ("img00000", "img00042", "img00149"):
        sub = store.neighborhood(seed, depth)
        expected = nx.single_source_shortest_path_length(g, seed, cutoff=depth)
        assert sub.depth == expected
        inside = set(expected)
        assert set(sub.edges) == {e for e in edges if e[0] in inside and e[1] in inside}
        assert set(sub.nodes) == inside
        assert not sub.truncated


def test_neighborhood_limit_truncates_in_bfs_order(fresh_graph) -> None:
    _, store = fresh_graph
    images, edges = random_catalogue(120, seed=7)
    store.upsert_images(images)
    store.upsert_edges(edges)
    g = to_nx(edges)
    sub = store.neighborhood("img00003", 3, limit=20)
    assert sub.truncated and len(sub.nodes) == 20
    lengths = nx.single_source_shortest_path_length(g, "img00003", cutoff=3)
    deepest = max(sub.depth.values())
    # Every node closer than the deepest admitted ring is present.
    assert {n for n, d in lengths.items() if d < deepest} <= set(sub.nodes)
    assert all(lengths[n] == d for n, d in sub.depth.items())


def test_neighborhood_of_missing_image(fresh_graph) -> None:
    _, store = fresh_graph
    with pytest.raises(KeyError):
        store.neighborhood("missing1", 2)


def test_shortest_paths_match_networkx(fresh_graph) -> None:
    _, store = fresh_graph
    images, edges = random_catalogue(200, seed=11)
    # An isolated pair, unreachable from the rest.
    images += [{"id": "islandaa"}, {"id": "islandbb"}]
    edges.append(("islandaa", "islandbb", 1))
    store.upsert_images(images)
    store.upsert_edges(edges)
    g = to_nx(edges)
    rng = random.Random(3)
    for _ in range(15):
        a, b = rng.sample([i["id"] for i in images[:200]], 2)
        ids, path_edges = store.shortest_path(a, b, max_hops=12)
        assert ids[0] == a and ids[-1] == b
        assert len(ids) - 1 == nx.shortest_path_length(g, a, b)
        for (x, y), e in zip(itertools.pairwise(ids), path_edges, strict=True):
            assert {x, y} == {e["source"], e["target"]}
            assert g.has_edge(x, y)
    assert store.shortest_path("img00000", "islandaa", max_hops=12) is None
    far = max(nx.single_source_shortest_path_length(g, "img00000").items(), key=lambda kv: kv[1])
    assert store.shortest_path("img00000", far[0], max_hops=far[1] - 1) is None
    assert store.shortest_path("img00000", "img00000", 3) == (["img00000"], [])


def test_export_subgraph_and_whole_graph(fresh_graph) -> None:
    _, store = fresh_graph
    images, edges = random_catalogue(80, seed=5)
    store.upsert_images(images)
    store.upsert_edges(edges)
    ids = [i["id"] for i in images[:30]] + ["notthere"]
    sub = store.export_subgraph(ids)
    inside = set(ids[:30])
    assert set(sub.nodes) == inside
    assert set(sub.edges) == {e for e in edges if e[0] in inside and e[1] in inside}
    whole = store.export_all()
    assert set(whole.nodes) == {i["id"] for i in images}
    assert sorted(whole.edges) == sorted(edges)


def test_concurrent_writers_with_overlapping_batches(fresh_graph) -> None:
    """4 writers MERGE overlapping images and edges at once: exactly the union survives."""
    local, _ = fresh_graph
    images, edges = random_catalogue(400, seed=21)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        rng = random.Random(k)
        mine_images = images[k * 60 : k * 60 + 160]  # windows overlap their neighbours'
        mine = {i["id"] for i in mine_images}
        mine_edges = [e for e in edges if e[0] in mine and e[1] in mine]
        rng.shuffle(mine_images)
        store = GraphStore.connect(local)
        try:
            for _ in range(2):
                store.upsert_images(mine_images, batch=40)
                store.upsert_edges(mine_edges, batch=50)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected_nodes = {i["id"] for k in range(4) for i in images[k * 60 : k * 60 + 160]}
    expected_edges = {
        e
        for k in range(4)
        for e in edges
        if e[0] in {i["id"] for i in images[k * 60 : k * 60 + 160]}
        and e[1] in {i["id"] for i in images[k * 60 : k * 60 + 160]}
    }
    store = GraphStore.connect(local)
    whole = store.export_all()
    store.close()
    assert set(whole.nodes) == expected_nodes
    assert len(whole.edges) == len(expected_edges)
    assert set(whole.edges) == expected_edges


def merge_together(local: Settings, edges: list[tuple[str, str, int]], writers: int = 4) -> None:
    """``writers`` stores, released together, each upsert all of ``edges`` in its own order.

    10 rows per transaction: every round still stored edges twice without the edge index,
    and with it a writer retried at most 3 times (of GRAPH_WRITES' 8) with the two cores
    busy; 25 rows needed up to 6."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        mine = random.Random(k).sample(edges, len(edges))
        store = GraphStore.connect(local)
        try:
            start.wait()
            store.upsert_edges(mine, seen=100 + k, batch=10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_writers_merging_the_same_edges_at_once_store_each_once(fresh_graph) -> None:
    """4 writers released together MERGE the very same new edges: each edge is stored once.

    On ArcadeDB two such transactions both created the edge until SIMILAR_TO had a unique
    index on its two ends (cypher/schema_arcadedb.sql); this happened in most rounds."""
    local, store = fresh_graph
    images, edges = random_catalogue(240, seed=3)
    store.upsert_images(images, batch=240)
    for group in (edges[0::3], edges[1::3], edges[2::3]):
        merge_together(local, group)
    stored = [(s, t) for s, t, _ in store.export_all().edges]
    assert len(stored) == len(set(stored)) == len(edges)
    assert set(stored) == {(s, t) for s, t, _ in edges}


def test_pairs_stored_twice_are_merged_when_the_edge_index_is_built(fresh_graph, embedded) -> None:
    """A graph from before SIMILAR_TO's unique index may hold a pair twice, and ArcadeDB will
    not build the index over it: ensure_schema merges the copies (the rank seen last, the
    first_seen seen first), builds the index, and the other edges are untouched."""
    if not embedded:
        pytest.skip("the edge index is the embedded ArcadeDB server's; Neo4j's MERGE locks instead")
    local, store = fresh_graph
    graph, database = local.embedded()["graph"], local.neo4j_database or ""
    stack.database_command(graph, database, "DROP INDEX `SIMILAR_TO[@out,@in]`")
    store.upsert_images([{"id": i} for i in ("aaaa0001", "bbbb0002", "cccc0003")])
    store.upsert_edges([("aaaa0001", "cccc0003", 2)], seen=7)
    for rank, first, last in ((1, 5, 10), (3, 3, 20), (2, 4, 15)):
        store.driver.execute_query(
            "MATCH (a:Image {id: 'aaaa0001'}), (b:Image {id: 'bbbb0002'}) "
            "CREATE (a)-[:SIMILAR_TO {rank: $rank, first_seen: $first, last_seen: $last}]->(b)",
            rank=rank,
            first=first,
            last=last,
            database_=database,
        )
    assert len(store.similar("aaaa0001")) == 4

    store.ensure_schema()

    listed = {r["image"]["id"]: r for r in store.similar("aaaa0001")}
    assert sorted(listed) == ["bbbb0002", "cccc0003"]
    kept = listed["bbbb0002"]
    assert (kept["rank"], kept["first_seen"], kept["last_seen"]) == (3, 3, 20)
    assert (listed["cccc0003"]["rank"], listed["cccc0003"]["first_seen"]) == (2, 7)
    with pytest.raises(ConstraintError, match="Duplicated key"):
        store.driver.execute_query(
            "MATCH (a:Image {id: 'aaaa0001'}), (b:Image {id: 'bbbb0002'}) "
            "CREATE (a)-[:SIMILAR_TO {rank: 9}]->(b)",
            database_=database,
        )
    store.ensure_schema()  # once built, building it again changes nothing
    assert len(store.similar("aaaa0001")) == 2
