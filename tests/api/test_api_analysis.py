"""Subgraph analysis, comparison and exports through the real server, checked against
networkx computed here on the same edges."""

from __future__ import annotations

import io
import json

import networkx as nx
import pytest

from .data import Collection


def directed(col: Collection, nodes: set[str] | None = None) -> nx.DiGraph:
    g = nx.DiGraph()
    keep = nodes if nodes is not None else set(col.ids)
    g.add_nodes_from(keep)
    g.add_edges_from((s, t, {"rank": r}) for s, t, r in col.edges if s in keep and t in keep)
    return g


def ball(col: Collection, seed: str, depth: int) -> set[str]:
    u = directed(col).to_undirected()
    return set(nx.single_source_shortest_path_length(u, seed, cutoff=depth))


def check_measures(body: dict, g: nx.DiGraph) -> None:
    u = nx.Graph(g.to_undirected())
    assert body["nodes"] == g.number_of_nodes()
    assert body["edges"] == g.number_of_edges()
    assert body["undirected_edges"] == u.number_of_edges()
    assert body["density"] == pytest.approx(nx.density(u))
    assert body["degree_histogram"] == nx.degree_histogram(u)
    assert body["components"]["count"] == nx.number_connected_components(u)
    largest = max(nx.connected_components(u), key=len)
    assert body["components"]["largest"] == len(largest)
    assert body["clustering"]["average"] == pytest.approx(nx.average_clustering(u))
    assert body["diameter"]["value"] == nx.diameter(u.subgraph(largest))
    pr = nx.pagerank(g, alpha=0.85, tol=1e-14, max_iter=10_000)
    best = max(pr.values())
    top = body["centrality"]["pagerank"][0]
    assert top["value"] == pytest.approx(best, rel=1e-6)
    assert pr[top["id"]] == pytest.approx(best, rel=1e-6)
    between = nx.betweenness_centrality(u)
    assert body["centrality"]["betweenness"][0]["value"] == pytest.approx(
        max(between.values()), rel=1e-6
    )
    indeg = dict(g.in_degree())
    assert body["centrality"]["in_degree"][0]["value"] == max(indeg.values())
    # Communities (Leiden) are compared by quality with networkx's Louvain on the same graph.
    found = nx.community.louvain_communities(u, seed=42)
    assert body["communities"]["algorithm"] == "leiden"
    assert body["communities"]["modularity"] >= nx.community.modularity(u, found) - 0.002
    assert sum(body["communities"]["sizes"]) == g.number_of_nodes()
    membership = body["communities"].get("membership")
    if membership is not None:
        groups: dict[int, set[str]] = {}
        for node, c in membership.items():
            groups.setdefault(c, set()).add(node)
        assert body["communities"]["modularity"] == pytest.approx(
            nx.community.modularity(u, list(groups.values())), abs=1e-9
        )


def test_analysis_of_a_seed_neighbourhood(api, collection: Collection) -> None:
    r = api.get("/analysis?seed=c0i000&depth=2&top_k=5")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subgraph"] == {"seed": "c0i000", "depth": 2}
    check_measures(body, directed(collection, ball(collection, "c0i000", 2)))
    assert len(body["centrality"]["pagerank"]) == 5


def test_analysis_of_an_id_list_get_and_post(api, collection: Collection) -> None:
    ids = [i for i in collection.ids if i.startswith(("c1", "c2"))]
    r = api.post("/analysis", json={"ids": ids, "membership": True})
    assert r.status_code == 200, r.text
    body = r.json()
    check_measures(body, directed(collection, set(ids)))
    membership = body["communities"]["membership"]
    assert set(membership) == set(ids)
    got = api.get("/analysis?ids=" + ",".join(ids[:40])).json()
    check_measures(got, directed(collection, set(ids[:40])))


def test_compare_seeds_and_depths(api, collection: Collection) -> None:
    r = api.get("/analysis/compare?seeds=c0i000,c3i005&depths=1,2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["labels"] == ["c0i000@1", "c0i000@2", "c3i005@1", "c3i005@2"]
    balls = [ball(collection, s, d) for s in ("c0i000", "c3i005") for d in (1, 2)]
    for item, nodes in zip(body["items"], balls, strict=True):
        check_measures(item, directed(collection, nodes))
    for i, a in enumerate(balls):
        for j, b in enumerate(balls):
            assert body["jaccard"][i][j] == pytest.approx(len(a & b) / len(a | b))


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/analysis", "seed"),
        ("/analysis?seed=c0i000&ids=c0i001", "ids"),
        ("/analysis?ids=c0i000&depth=2", "depth"),
        ("/analysis?seed=c0i000&top_k=1000", "top_k"),
        ("/analysis?ids=c0i000,BAD", "ids"),
        ("/analysis?crawl=../etc", "crawl"),
        ("/analysis/compare?seeds=c0i000&depths=1,7", "depths"),
        (
            "/analysis/compare?seeds=" + ",".join(f"c0i{i:03d}" for i in range(7)) + "&depths=1,2",
            "seeds",
        ),
    ],
)
def test_analysis_bad_inputs(api, url: str, parameter: str) -> None:
    r = api.get(url)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["parameter"] == parameter


def test_analysis_unknown_ids_are_404(api) -> None:
    r = api.get("/analysis?ids=c0i000,nothere1")
    assert r.status_code == 404 and "nothere1" in r.json()["error"]["message"]
    assert api.get("/analysis?seed=nothere1").status_code == 404
    assert api.post("/analysis", data="not json").status_code == 400


def test_oversized_subgraphs_are_refused_with_a_pointer_to_jobs(
    known_graph, servers, collection
) -> None:
    local, _ = known_graph
    small = servers(local, LOOKALIKE_API_MAX_NODES="50")
    r = small.get("/analysis?seed=c0i000&depth=3")
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "limit of 50" in message and "POST /analysis/jobs" in message
    assert small.get("/analysis?ids=" + ",".join(collection.ids[:60])).status_code == 400
    assert small.get("/analysis?seed=c0i000&depth=1").status_code == 200


def _edges_of(g: nx.DiGraph) -> set[tuple[str, str, int]]:
    return {(s, t, int(d["rank"])) for s, t, d in g.edges(data=True)}


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "node-link", "cytoscape"])
def test_exports_read_back_with_networkx(api, collection: Collection, fmt: str) -> None:
    nodes = ball(collection, "c2i002", 2)
    r = api.get(f"/export?format={fmt}&seed=c2i002&depth=2")
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["Content-Disposition"]
    if fmt == "graphml":
        g = nx.read_graphml(io.BytesIO(r.content))
    elif fmt == "gexf":
        g = nx.read_gexf(io.BytesIO(r.content))
    elif fmt == "node-link":
        g = nx.node_link_graph(r.json())  # networkx defaults: no keyword needed
    else:
        g = nx.cytoscape_graph(r.json())
    assert set(g.nodes) == nodes
    expected = {e for e in collection.edges if e[0] in nodes and e[1] in nodes}
    assert _edges_of(g) == expected
    node = g.nodes["c2i002"]
    assert node["title"] == collection.by_id("c2i002")["title"]
    assert float(node["aspect_ratio"]) == collection.by_id("c2i002")["aspect_ratio"]


def test_whole_graph_export(api, collection: Collection) -> None:
    r = api.get("/export?format=node-link&all=true")
    assert r.status_code == 200
    g = nx.node_link_graph(json.loads(r.content))
    assert set(g.nodes) == set(collection.ids)
    assert _edges_of(g) == set(collection.edges)
    r = api.get("/export?format=pdf&all=true")
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "format"
