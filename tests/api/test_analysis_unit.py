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
    return [
        (s, t, r)
        for s in ids
        for r, t in enumerate(rng.sample([x for x in ids if x != s], 3), start=1)
    ]


def clustered_edges(n: int, seed: int, cluster: int = 25) -> list[tuple[str, str, int]]:
    """Like the crawled graphs: 5 listed images each, mostly from the lister's own cluster;
    the last cluster lists nothing (images stored but not fetched yet: dangling nodes)."""
    rng = random.Random(seed)
    ids = [f"i{rng.getrandbits(40):010x}" for _ in range(n)]
    edges = []
    for start in range(0, n - cluster, cluster):
        members = ids[start : start + cluster]
        for s in members:
            targets: list[str] = []
            while len(targets) < 5:
                t = rng.choice(members if rng.random() < 0.8 else ids)
                if t != s and t not in targets:
                    targets.append(t)
            edges.extend((s, t, r) for r, t in enumerate(targets, start=1))
    return edges


def reference(nodes: list[str], edges: list[tuple[str, str, int]]) -> tuple[nx.DiGraph, nx.Graph]:
    """networkx's graphs of the same edges, the undirected one in canonical order (Louvain
    visits nodes in insertion order)."""
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((s, t) for s, t, _ in edges if s != t)
    u = nx.Graph()
    u.add_nodes_from(sorted(g.nodes))
    u.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    return g, u


def test_summary_of_a_path_graph() -> None:
    g = analysis.build_graph(
        ["a", "b", "c", "d"], [("a", "b", 1), ("b", "c", 1), ("c", "d", 1), ("d", "c", 2)]
    )
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
        assert s["communities"]["count"] == len(nodes)


def test_self_loops_and_repeated_edges_count_once() -> None:
    g = analysis.build_graph(["a"], [("a", "a", 1), ("a", "b", 1), ("a", "b", 2)])
    assert g.ids == ["a", "b"] and g.directed.ecount() == 1


@pytest.mark.parametrize(("n", "seed"), [(60, 1), (400, 2), (1200, 3)])
def test_every_measure_equals_networkx(n: int, seed: int) -> None:
    """Exact betweenness at 60 and 400 images, sampled (100 sources, networkx's draw) at
    1,200; exact diameter up to 1,000."""
    edges = clustered_edges(n, seed)
    nodes = sorted({e[0] for e in edges} | {e[1] for e in edges} | {"zz-alone"})
    g = analysis.build_graph(nodes, edges)
    ref, u = reference(nodes, edges)
    s = analysis.summarize(g, analysis.AnalysisOptions(top_k=len(nodes)))
    assert g.ids == sorted(ref.nodes)
    assert (s["nodes"], s["edges"], s["undirected_edges"]) == (
        ref.number_of_nodes(),
        ref.number_of_edges(),
        u.number_of_edges(),
    )
    assert s["reciprocal_edges"] == sum(1 for a, b in ref.edges if ref.has_edge(b, a)) // 2
    assert s["density"] == pytest.approx(nx.density(u), abs=1e-10)  # rounded to 10 digits
    assert s["directed_density"] == pytest.approx(nx.density(ref), abs=1e-10)
    assert s["degree_histogram"] == nx.degree_histogram(u)
    for key, degrees in (
        ("in_degree_histogram", ref.in_degree()),
        ("out_degree_histogram", ref.out_degree()),
    ):
        counts = [d for _, d in degrees]
        assert s[key] == [counts.count(k) for k in range(max(counts) + 1)]
    components = sorted((len(c) for c in nx.connected_components(u)), reverse=True)
    assert s["components"]["sizes"] == components[:50]
    assert s["components"]["count"] == len(components)
    assert s["components"]["strongly_connected"] == nx.number_strongly_connected_components(ref)
    assert s["clustering"]["average"] == pytest.approx(nx.average_clustering(u), abs=1e-9)
    assert s["clustering"]["transitivity"] == pytest.approx(nx.transitivity(u), abs=1e-9)
    core = u.subgraph(max(nx.connected_components(u), key=len))
    if core.number_of_nodes() <= analysis.EXACT_DIAMETER_MAX_NODES:
        assert s["diameter"]["value"] == nx.diameter(core) and s["diameter"]["exact"]
    else:  # a 2-sweep bound, checked on a small graph below; here only its range is cheap
        # Every eccentricity lies between half the diameter and the diameter.
        ecc = nx.eccentricity(core, min(core))
        assert ecc / 2 <= s["diameter"]["value"] <= 2 * ecc and not s["diameter"]["exact"]

    def values(entries: list[dict]) -> dict[str, float]:
        assert len(entries) == len(nodes)
        return {e["id"]: e["value"] for e in entries}

    central = s["centrality"]
    pagerank = nx.pagerank(ref, alpha=0.85, tol=1e-14, max_iter=10_000)
    got = values(central["pagerank"])
    assert all(got[v] == pytest.approx(pagerank[v], rel=1e-6, abs=1e-10) for v in nodes)
    exact = n <= analysis.EXACT_BETWEENNESS_MAX_NODES
    between = (
        nx.betweenness_centrality(u)
        if exact
        else nx.betweenness_centrality(u, k=analysis.BETWEENNESS_SAMPLES, seed=42)
    )
    assert central["betweenness_exact"] is exact
    got = values(central["betweenness"])
    assert all(got[v] == pytest.approx(between[v], abs=1e-9) for v in nodes)
    degree = nx.degree_centrality(u)
    assert values(central["degree"]) == pytest.approx(degree, abs=1e-9)
    assert values(central["in_degree"]) == dict(ref.in_degree())
    ranked = [e["value"] for e in central["pagerank"]]
    assert ranked == sorted(ranked, reverse=True)


def test_communities_are_the_unambiguous_ones() -> None:
    """Eight cliques of 7 joined in a ring by single edges: the only sensible answer is the
    cliques, which networkx's Louvain also finds."""
    cliques = [[f"k{c}m{i}" for i in range(7)] for c in range(8)]
    edges = [(a, b, 1) for members in cliques for a in members for b in members if a < b]
    edges += [(cliques[c][0], cliques[(c + 1) % 8][1], 1) for c in range(8)]
    nodes = [v for members in cliques for v in members]
    s = analysis.summarize(
        analysis.build_graph(reversed(nodes), edges), analysis.AnalysisOptions(membership=True)
    )
    found: dict[int, list[str]] = {}
    for node, c in s["communities"]["membership"].items():
        found.setdefault(c, []).append(node)
    assert sorted(sorted(m) for m in found.values()) == sorted(sorted(m) for m in cliques)
    _, u = reference(nodes, edges)
    louvain = nx.community.louvain_communities(u, seed=42)
    assert sorted(sorted(m) for m in louvain) == sorted(sorted(m) for m in cliques)
    assert s["communities"]["modularity"] == pytest.approx(
        nx.community.modularity(u, louvain), abs=1e-9
    )


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_communities_are_as_good_as_networkx_louvain(seed: int) -> None:
    """On clustered graphs without a single right answer, Leiden's communities are compared
    by quality: their modularity (as networkx computes it) is what the summary reports, and
    at least networkx Louvain's."""
    edges = clustered_edges(1000, seed)
    nodes = sorted({e[0] for e in edges} | {e[1] for e in edges})
    s = analysis.summarize(
        analysis.build_graph(nodes, edges), analysis.AnalysisOptions(membership=True)
    )
    _, u = reference(nodes, edges)
    found: dict[int, set[str]] = {}
    for node, c in s["communities"]["membership"].items():
        found.setdefault(c, set()).add(node)
    assert [len(found[c]) for c in range(len(found))] == s["communities"]["sizes"][: len(found)]
    quality = nx.community.modularity(u, list(found.values()))
    assert s["communities"]["modularity"] == pytest.approx(quality, abs=1e-9)
    louvain = nx.community.modularity(u, nx.community.louvain_communities(u, seed=42))
    assert quality >= louvain - 0.002


def test_large_graphs_are_approximated_and_say_so(monkeypatch) -> None:
    edges = random_edges(300, seed=3)
    g = analysis.build_graph({e[0] for e in edges}, edges)
    _, u = reference(g.ids, edges)
    monkeypatch.setattr(analysis, "EXACT_DIAMETER_MAX_NODES", 100)
    monkeypatch.setattr(analysis, "EXACT_BETWEENNESS_MAX_NODES", 100)
    s = analysis.summarize(g, analysis.AnalysisOptions(betweenness_samples=50))
    assert s["diameter"]["exact"] is False
    assert s["diameter"]["value"] <= nx.diameter(u)  # the 2-sweep gives a lower bound
    assert s["centrality"]["betweenness_exact"] is False
    assert s["centrality"]["betweenness_samples"] == 50
    sampled = nx.betweenness_centrality(u, k=50, seed=42)
    for entry in s["centrality"]["betweenness"]:
        assert entry["value"] == pytest.approx(sampled[entry["id"]], abs=1e-9)
    again = analysis.summarize(g, analysis.AnalysisOptions(betweenness_samples=50))
    assert again == s  # seeded


def test_answers_do_not_depend_on_load_order() -> None:
    edges = random_edges(120, seed=5)
    nodes = sorted({e[0] for e in edges})
    a = analysis.summarize(
        analysis.build_graph(nodes, edges), analysis.AnalysisOptions(membership=True)
    )
    b = analysis.summarize(
        analysis.build_graph(list(reversed(nodes)), list(reversed(edges))),
        analysis.AnalysisOptions(membership=True),
    )
    assert a == b


def test_whole_graph_scores_cover_every_node() -> None:
    edges = clustered_edges(300, seed=9)
    nodes = {e[0] for e in edges} | {e[1] for e in edges} | {"alone"}
    g = analysis.build_graph(nodes, edges)
    scores, summary = analysis.whole_graph_scores(g)
    rows = [row for batch in scores.rows(70) for row in batch]
    assert [r["id"] for r in rows] == sorted(nodes)
    by_id = {r["id"]: r for r in rows}
    ref, u = reference(sorted(nodes), edges)
    assert by_id["alone"]["degree"] == 0
    pr = nx.pagerank(ref, alpha=0.85, tol=1e-14, max_iter=10_000)
    assert all(by_id[n]["pagerank"] == pytest.approx(pr[n], rel=1e-6) for n in nodes)
    assert all(by_id[n]["degree"] == u.degree(n) for n in nodes)
    sizes = summary["communities"]["sizes"]
    assert sizes == sorted(sizes, reverse=True)
    assert [sum(1 for r in rows if r["community"] == c) for c in range(len(sizes))] == sizes
    assert summary["communities"]["algorithm"] == "leiden"
    between = nx.betweenness_centrality(u)  # 300 images: exact
    assert summary["centrality"]["betweenness_exact"]
    assert summary["centrality"]["betweenness"][0]["value"] == pytest.approx(
        max(between.values()), abs=1e-9
    )
    assert summary["centrality"]["pagerank"][0]["value"] == pytest.approx(
        max(pr.values()), rel=1e-6
    )


class StreamedGraph:
    """A small fake of the graph store's two reads that whole-graph analysis makes: the
    count, and the stream of ``cypher/analysis_graph.cypher`` (in no particular order)."""

    def __init__(self, edges: list[tuple[str, str, int]], extra: set[str]) -> None:
        self.out: dict[str, list[str]] = {v: [] for v in extra}
        for s, t, _ in edges:
            self.out.setdefault(s, []).append(t)
            self.out.setdefault(t, [])

    def read(self, name: str, **params):
        assert name == "analysis_count_images"
        return [{"images": len(self.out)}]

    def stream(self, name: str, fetch_size: int):
        assert name == "analysis_graph"
        order = list(self.out)
        random.Random(1).shuffle(order)
        for v in order:
            yield {"id": v, "targets": list(self.out[v])}


def test_the_job_reads_the_graph_as_a_stream_of_pages() -> None:
    from workers.analysis import read_graph

    edges = clustered_edges(230, seed=12)
    fake = StreamedGraph(edges, {"0-first", "zz-last"})
    seen: list[tuple[str, int, int]] = []
    g = read_graph(fake, page=40, progress=lambda *a: seen.append(a))
    total = len(fake.out)
    assert seen == [("export", done, total) for done in range(40, total + 1, 40)] + [
        ("export", total, total)
    ]
    direct = analysis.build_graph(fake.out, edges)
    assert g.ids == direct.ids == sorted(fake.out)
    assert sorted(g.directed.get_edgelist()) == sorted(direct.directed.get_edgelist())


def test_compare_overlap() -> None:
    a = analysis.build_graph(["x", "y", "z"], [("x", "y", 1)])
    b = analysis.build_graph(["y", "z", "w"], [("y", "w", 1)])
    c = analysis.compare([("a", a), ("b", b)])
    assert c["jaccard"] == [[1.0, 0.5], [0.5, 1.0]] and c["shared_nodes"] == 2


def test_attribute_cleanup() -> None:
    rows = clean_attributes(
        [{"r": 1, "flag": True, "t": "x", "n": None, "l": [1, 2]}, {"r": 1.5, "flag": 3, "t": "y"}]
    )
    assert rows[0] == {"r": 1.0, "flag": "True", "t": "x", "l": "[1, 2]"}
    assert rows[1] == {"r": 1.5, "flag": "3", "t": "y"}


def test_graphml_round_trip_with_mixed_types() -> None:
    sub = Subgraph(
        nodes={
            "a": {"id": "a", "aspect_ratio": 1, "title": None},
            "b": {"id": "b", "aspect_ratio": 1.5, "title": "B"},
        },
        edges=[("a", "b", 2), ("b", "a", None)],
    )
    g = nx.read_graphml(io.BytesIO(render(sub, "graphml")))
    assert g.nodes["a"]["aspect_ratio"] == 1.0 and g.nodes["b"]["title"] == "B"
    assert g.edges["a", "b"]["rank"] == 2 and "rank" not in g.edges["b", "a"]
