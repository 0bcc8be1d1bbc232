"""The neighbourhood walk: its pure bookkeeping on hand-made rings, and the real walk on the
Bolt server against a breadth-first reference computed here from the edge list, over every
limit, depth and property mode (self-loops, mutual edges and an isolated image included)."""

from __future__ import annotations

import random

import pytest

from lookalike.graph import _Walk
from tests.support import isolated_graph


def reference(
    edges: list[tuple[str, str, int]], ids: set[str], seed: str, depth: int, limit: int | None
) -> tuple[dict[str, int], bool]:
    """The documented semantics, independently: exact hop distances, rings admitted in order,
    ties by id, until ``limit``; ``truncated`` when a ring did not fit."""
    if seed not in ids:
        raise KeyError(seed)
    adjacent: dict[str, set[str]] = {i: set() for i in ids}
    for s, t, _ in edges:
        adjacent[s].add(t)
        adjacent[t].add(s)
    dist = {seed: 0}
    frontier = [seed]
    truncated = False
    for hop in range(1, depth + 1):
        if not frontier:
            break
        ring = sorted({n for f in frontier for n in adjacent[f]} - set(dist))
        if limit is not None and len(dist) + len(ring) > limit:
            ring = ring[: max(0, limit - len(dist))]
            truncated = True
        dist.update((n, hop) for n in ring)
        frontier = ring
        if truncated:
            break
    return dist, truncated


# ------------------------------------------------------------------ the pure bookkeeping


def image(node: str, out: list[tuple[str, int]], props: bool = True) -> list:
    """A ring entry as the statements return it; element ids are ``e:<id>`` here."""
    return [
        node,
        f"e:{node}",
        {"id": node, "title": node.upper()} if props else None,
        [[f"e:{t}", r] for t, r in out],
    ]


def test_walk_admits_rings_and_joins_edges_by_element_id() -> None:
    walk = _Walk(image("a", [("b", 1), ("x", 2)]), limit=None)
    assert walk.frontier == ["a"] and walk.known() == ["a"]
    assert walk.admit([image("b", [("a", 1), ("c", 2)]), image("d", [])], 1)
    assert walk.known() == ["a", "b", "d"]
    assert walk.admit([image("c", [("c", 1), ("b", 2)])], 2)
    # Only the previous ring and the frontier: a BFS ring cannot reach further back.
    assert walk.known() == ["b", "d", "c"]
    sub = walk.finish(properties=True)
    assert sub.depth == {"a": 0, "b": 1, "d": 1, "c": 2}
    # "x" was never admitted, so the edge to it is not part of the neighbourhood.
    assert sub.edges == [("a", "b", 1), ("b", "a", 1), ("b", "c", 2), ("c", "b", 2), ("c", "c", 1)]
    assert sub.nodes["c"] == {"id": "c", "title": "C"} and not sub.truncated


def test_walk_cuts_a_ring_at_the_limit_and_stops() -> None:
    walk = _Walk(image("a", [("b", 1), ("c", 2), ("d", 3)], props=False), limit=3)
    # The statement sends one more than there is room for: the walk learns the ring was cut.
    ring = [image(n, [], props=False) for n in ("b", "c", "d")]
    assert not walk.admit(ring, 1)
    sub = walk.finish(properties=False)
    assert sub.truncated and sub.depth == {"a": 0, "b": 1, "c": 1}
    assert sub.nodes == {"a": {"id": "a"}, "b": {"id": "b"}, "c": {"id": "c"}}
    assert sub.edges == [("a", "b", 1), ("a", "c", 2)]


def test_walk_exactly_full_is_not_truncated() -> None:
    walk = _Walk(image("a", [("b", 1)]), limit=2)
    assert walk.admit([image("b", [])], 1)
    assert walk.admit([], 2)  # nothing beyond: the neighbourhood was whole
    assert not walk.finish(properties=True).truncated


def test_reference_semantics_on_a_tiny_graph() -> None:
    edges = [("a", "b", 1), ("c", "a", 1), ("b", "d", 1)]
    ids = {"a", "b", "c", "d", "e"}
    assert reference(edges, ids, "a", 2, None) == ({"a": 0, "b": 1, "c": 1, "d": 2}, False)
    assert reference(edges, ids, "a", 2, 2) == ({"a": 0, "b": 1}, True)
    assert reference(edges, ids, "a", 2, 3) == ({"a": 0, "b": 1, "c": 1}, True)
    assert reference(edges, ids, "e", 3, 1) == ({"e": 0}, False)
    with pytest.raises(KeyError):
        reference(edges, ids, "zz", 1, None)


# ------------------------------------------------------------------ the real walk


def awkward_graph() -> tuple[list[dict], list[tuple[str, str, int]]]:
    """Clusters with long links, a self-loop, mutual edges, a hub and an isolated image."""
    rng = random.Random(5)
    ids = [f"n{i:03d}" for i in range(90)]
    images = [{"id": i, "title": f"Image {i}", "phash": f"{rng.getrandbits(64):016x}"} for i in ids]
    images.append({"id": "alone", "title": "No similar images"})
    edges: set[tuple[str, str]] = set()
    for k, src in enumerate(ids):
        cluster = ids[(k // 10) * 10 : (k // 10) * 10 + 10]
        for dst in [*rng.sample([x for x in cluster if x != src], 2), rng.choice(ids)]:
            if dst != src:
                edges.add((src, dst))
    edges |= {("n005", "n005"), ("n010", "n011"), ("n011", "n010")}
    edges |= {("n077", x) for x in ids[::4] if x != "n077"}  # a hub
    ranked = [(s, t, r) for r, (s, t) in enumerate(sorted(edges), start=1)]
    return images, ranked


@pytest.fixture(scope="module")
def awkward(settings, embedded):
    images, edges = awkward_graph()
    with isolated_graph(settings, embedded) as (_, store):
        store.upsert_images(images)
        store.upsert_edges(edges, seen=1)
        yield store, images, edges


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_walk_matches_reference_for_every_limit(awkward, depth: int) -> None:
    store, images, edges = awkward
    ids = {i["id"] for i in images}
    props = {i["id"]: i for i in images}
    for seed in ("n000", "n005", "n077", "alone"):
        for limit in [None, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 200]:
            expected, truncated = reference(edges, ids, seed, depth, limit)
            properties = limit is None or limit % 2 == 1
            sub = store.neighborhood(seed, depth, limit=limit, properties=properties)
            where = f"seed {seed}, depth {depth}, limit {limit}"
            assert sub.depth == expected, where
            assert list(sub.depth) == sorted(expected, key=lambda n: (expected[n], n)), where
            assert sub.truncated is truncated, where
            inside = set(expected)
            assert sub.edges == sorted(e for e in edges if e[0] in inside and e[1] in inside)
            if properties:
                assert sub.nodes == {n: props[n] for n in inside}, where
            else:
                assert sub.nodes == {n: {"id": n} for n in inside}, where


def test_isolated_image_is_its_own_neighbourhood(awkward) -> None:
    store, _, _ = awkward
    sub = store.neighborhood("alone", 2)
    assert sub.depth == {"alone": 0} and sub.edges == [] and not sub.truncated
    assert sub.nodes == {"alone": {"id": "alone", "title": "No similar images"}}
    with pytest.raises(KeyError):
        store.neighborhood("absent00", 2, properties=False)
