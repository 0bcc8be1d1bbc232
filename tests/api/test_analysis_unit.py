"""The pure parts: analysis measures (including their approximations on large graphs), and
the attribute clean-up that makes GraphML/GEXF exports readable again."""

from __future__ import annotations

import io
import random

import networkx as nx
import pytest

from lookalike import analysis
from lookalike.graph import Subgraph
from services.api.exports import clean_attributes, render


def random_edges(n: int, seed: int) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    ids = [f"n{i:04d}" for i in range(n)]
    return [(s, t, r) for s in ids
            for r, t in enumerate(rng.sample([x for x in ids if x != s], 3), start=1)]


def test_summary_of_a_path_graph() -> None:
    g = analysis.build_graph(["a", "b", "c", "d"], [("a", "b", 1), ("b", "c", 1),
                                                    ("c", "d", 1), ("d", "c", 2)])
    s = analysis.summarize(g)
    assert s["nodes"] == 4 and s["edges"] == 4 and s["undirected_edges"] == 3
    assert s["reciprocal_edges"] == 1
    assert s["degree_histogram"] == [0, 2, 2]
    assert s["diameter"] == {"value": 3, "exact": True, "component_size": 4}
    assert s["components"]["count"] == 1 and s["components"]["strongly_connected"] == 3
    assert s["centrality"]["betweenness"][0]["id"] in ("b", "c")


def test_empty_and_single_node_graphs() -> None:
    for nodes in ([], ["x"]):
        s = analysis.summarize(analysis.build_graph(nodes, []))
        assert s["nodes"] == len(nodes) and s["diameter"]["value"] == 0


def test_large_graphs_are_approximated_and_say_so(monkeypatch) -> None:
    edges = random_edges(300, seed=3)
    g = analysis.build_graph({e[0] for e in edges}, edges)
    u = nx.Graph(g.to_undirected())
    monkeypatch.setattr(analysis, "EXACT_DIAMETER_MAX_NODES", 100)
    monkeypatch.setattr(analysis, "EXACT_BETWEENNESS_MAX_NODES", 100)
    s = analysis.summarize(g, analysis.AnalysisOptions(betweenness_samples=50))
    assert s["diameter"]["exact"] is False
    assert s["diameter"]["value"] <= nx.diameter(u)  # the 2-sweep gives a lower bound
    assert s["centrality"]["betweenness_exact"] is False
    assert s["centrality"]["betweenness_samples"] == 50
    again = analysis.summarize(g, analysis.AnalysisOptions(betweenness_samples=50))
    assert again["centrality"]["betweenness"] == s["centrality"]["betweenness"]  # seeded


def test_communities_do_not_depend_on_load_order() -> None:
    edges = random_edges(120, seed=5)
    nodes = sorted({e[0] for e in edges})
    a = analysis.summarize(analysis.build_graph(nodes, edges),
                           analysis.AnalysisOptions(membership=True))
    b = analysis.summarize(analysis.build_graph(list(reversed(nodes)), list(reversed(edges))),
                           analysis.AnalysisOptions(membership=True))
    assert a["communities"] == b["communities"]


def test_whole_graph_scores_cover_every_node() -> None:
    edges = random_edges(80, seed=9)
    g = analysis.build_graph({e[0] for e in edges} | {"alone"}, edges)
    scores, summary = analysis.whole_graph_scores(g)
    assert set(scores) == set(g.nodes)
    assert scores["alone"]["degree"] == 0
    pr = nx.pagerank(g, alpha=0.85, tol=1e-10, max_iter=1000)
    assert all(scores[n]["pagerank"] == pytest.approx(pr[n], rel=1e-6) for n in g)
    sizes = summary["communities"]["sizes"]
    assert sizes == sorted(sizes, reverse=True)
    assert sum(1 for s in scores.values() if s["community"] == 0) == sizes[0]


def test_compare_overlap() -> None:
    a = analysis.build_graph(["x", "y", "z"], [("x", "y", 1)])
    b = analysis.build_graph(["y", "z", "w"], [("y", "w", 1)])
    c = analysis.compare([("a", a), ("b", b)])
    assert c["jaccard"] == [[1.0, 0.5], [0.5, 1.0]] and c["shared_nodes"] == 2


def test_attribute_cleanup() -> None:
    rows = clean_attributes([{"r": 1, "flag": True, "t": "x", "n": None, "l": [1, 2]},
                             {"r": 1.5, "flag": 3, "t": "y"}])
    assert rows[0] == {"r": 1.0, "flag": "True", "t": "x", "l": "[1, 2]"}
    assert rows[1] == {"r": 1.5, "flag": "3", "t": "y"}


def test_graphml_round_trip_with_mixed_types() -> None:
    sub = Subgraph(nodes={"a": {"id": "a", "aspect_ratio": 1, "title": None},
                          "b": {"id": "b", "aspect_ratio": 1.5, "title": "B"}},
                   edges=[("a", "b", 2), ("b", "a", None)])
    g = nx.read_graphml(io.BytesIO(render(sub, "graphml")))
    assert g.nodes["a"]["aspect_ratio"] == 1.0 and g.nodes["b"]["title"] == "B"
    assert g.edges["a", "b"]["rank"] == 2 and "rank" not in g.edges["b", "a"]
