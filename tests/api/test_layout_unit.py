"""The server-side layout of drawings (services/api/layout.py)."""

from __future__ import annotations

import itertools
import math
import random

import networkx as nx
import pytest

from services.api.layout import MAX_NODES, MIN_GAP, spring_layout


def clustered(n: int, seed: int) -> tuple[list[str], list[tuple[str, str, int]]]:
    rng = random.Random(seed)
    nodes = [f"n{i:03d}" for i in range(n)]
    edges = [
        (a, nodes[(i + rng.randint(1, 6)) % n], r) for i, a in enumerate(nodes) for r in range(1, 4)
    ]
    return nodes, edges


@pytest.mark.parametrize("n", [2, 3, 12, 60, MAX_NODES])
def test_nodes_are_apart_and_the_centre_is_at_the_origin(n: int) -> None:
    nodes, edges = clustered(n, seed=n)
    g = nx.Graph((a, b) for a, b, _ in edges)
    at = spring_layout(nodes, edges, "n000", nx.single_source_shortest_path_length(g, "n000"))
    assert set(at) == set(nodes) and at["n000"] == (0.0, 0.0)
    closest = min(math.dist(at[a], at[b]) for a, b in itertools.combinations(nodes, 2))
    assert closest >= MIN_GAP - 0.01
    assert (
        spring_layout(nodes, edges, "n000", nx.single_source_shortest_path_length(g, "n000")) == at
    )


def test_linked_nodes_lie_closer_than_unlinked_ones() -> None:
    nodes, edges = clustered(60, seed=1)
    at = spring_layout(nodes, edges, "n000")
    linked = [math.dist(at[a], at[b]) for a, b, _ in edges if a != b]
    g = nx.Graph((a, b) for a, b, _ in edges)
    far = [
        math.dist(at[a], at[b]) for a, b in itertools.combinations(nodes, 2) if not g.has_edge(a, b)
    ]
    assert sorted(linked)[len(linked) // 2] < sorted(far)[len(far) // 2]


def test_limits_and_odd_input() -> None:
    assert spring_layout(["a"], [], "a") == {"a": (0.0, 0.0)}
    at = spring_layout(["a", "b", "c"], [("a", "a", 1)], "a")  # no real edges, a self-loop
    assert len(set(at.values())) == 3
    with pytest.raises(ValueError, match="at most"):
        spring_layout([f"n{i}" for i in range(MAX_NODES + 1)], [], "n0")
    with pytest.raises(ValueError, match="centre"):
        spring_layout(["a", "b"], [], "z")


def test_a_neighbourhood_with_long_links_is_given_room() -> None:
    """Random long links squeeze a spring layout into a crowd; every node still gets its
    gap (the drawing grows instead)."""
    rng = random.Random(3)
    nodes = [f"n{i:03d}" for i in range(MAX_NODES)]
    edges = [(a, rng.choice(nodes), 1) for a in nodes for _ in range(4)]
    at = spring_layout(nodes, edges, "n000")
    closest = min(math.dist(at[a], at[b]) for a, b in itertools.combinations(nodes, 2))
    assert closest >= MIN_GAP - 0.01
