"""Graph analysis of similarity subgraphs with networkx: pure functions, no I/O.

These are the measures the Wellcome notebook computes by hand (size, density, degree
histogram, components, clustering, centralities, communities), as functions the API runs on a
bounded subgraph and the background job runs on the whole collection.

Conventions (why):
- The stored graph is directed (A lists B as similar). Most measures of "how images cluster"
  are about resemblance, which is symmetric, so they use the undirected view (an edge if
  either lists the other); PageRank and in-degree use the direction (being listed by many).
- Everything is deterministic: results are sorted with ids breaking ties, Louvain and sampled
  betweenness use a fixed seed, so the same graph always gives the same answer and answers
  can be compared across runs.
- Exact measures that cost O(n*m) (diameter, betweenness) switch to documented
  approximations above a size threshold and say so in the result (``exact: false``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

# Above these sizes the O(n*m) measures are approximated: a request must answer in seconds.
# Measured on 2 busy cores with 5 edges per image: exact betweenness of 1,500 images ~20 s,
# 100 samples of 5,000 images ~6 s; exact diameter of 1,500 images ~2.5 s.
EXACT_DIAMETER_MAX_NODES = 1000
EXACT_BETWEENNESS_MAX_NODES = 500
BETWEENNESS_SAMPLES = 100
# The whole collection: each betweenness sample is a full Brandes pass (~3 s per sample on
# 100k images / 500k edges), so the background job samples few; PageRank and degree are the
# exact centralities there.
WHOLE_GRAPH_BETWEENNESS_SAMPLES = 16
DEFAULT_SEED = 42


@dataclass(frozen=True)
class AnalysisOptions:
    top_k: int = 10
    communities: bool = True
    seed: int = DEFAULT_SEED
    # Community membership (id -> community) can be large; only returned when asked.
    membership: bool = False
    betweenness_samples: int = BETWEENNESS_SAMPLES


def build_graph(
    nodes: Iterable[str], edges: Iterable[tuple[str, str, Any]]
) -> nx.DiGraph:
    """A DiGraph of image ids and SIMILAR_TO edges (with ``rank``); self-loops dropped."""
    g = nx.DiGraph()
    g.add_nodes_from(sorted(set(nodes)))
    for source, target, rank in edges:
        if source != target:
            g.add_edge(source, target, rank=rank)
    return g


def undirected(g: nx.DiGraph) -> nx.Graph:
    """Resemblance view: one edge between two images if either lists the other.

    Built in a canonical order (nodes sorted, edges sorted as (smaller id, larger id)):
    Louvain's result depends on the order it visits nodes, and the same graph must give the
    same communities however it was loaded.
    """
    u = nx.Graph()
    u.add_nodes_from(sorted(g.nodes))
    u.add_edges_from(sorted({(a, b) if a < b else (b, a) for a, b in g.edges}))
    return u


def top_k(scores: Mapping[str, float], k: int) -> list[dict[str, Any]]:
    """The k highest scores, ties broken by id, as [{id, value}]."""
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [{"id": node, "value": _round(value)} for node, value in ranked]


def _round(value: float) -> float:
    return round(float(value), 10)


def component_sizes(u: nx.Graph) -> list[int]:
    return sorted((len(c) for c in nx.connected_components(u)), reverse=True)


def largest_component(u: nx.Graph) -> set[str]:
    if u.number_of_nodes() == 0:
        return set()
    # Ties between equally large components go to the one with the smallest id.
    return min(nx.connected_components(u), key=lambda c: (-len(c), min(c)))


def diameter(u: nx.Graph, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Diameter of the largest connected component (exact up to a size, else a lower bound
    from networkx's 2-sweep approximation)."""
    core = largest_component(u)
    if len(core) <= 1:
        return {"value": 0, "exact": True, "component_size": len(core)}
    sub = u.subgraph(core)
    if len(core) <= EXACT_DIAMETER_MAX_NODES:
        return {"value": nx.diameter(sub), "exact": True, "component_size": len(core)}
    value = nx.approximation.diameter(sub, seed=seed)
    return {"value": value, "exact": False, "component_size": len(core)}


def betweenness(
    u: nx.Graph, seed: int = DEFAULT_SEED, samples: int = BETWEENNESS_SAMPLES
) -> tuple[dict[str, float], bool]:
    """Normalised betweenness; estimated from ``samples`` sources (fixed seed) on large
    graphs."""
    n = u.number_of_nodes()
    if n <= max(EXACT_BETWEENNESS_MAX_NODES, samples):
        return nx.betweenness_centrality(u), True
    return nx.betweenness_centrality(u, k=samples, seed=seed), False


def pagerank(g: nx.DiGraph) -> dict[str, float]:
    if g.number_of_nodes() == 0:
        return {}
    return nx.pagerank(g, alpha=0.85, tol=1e-10, max_iter=1000)


def communities(u: nx.Graph, seed: int = DEFAULT_SEED) -> list[list[str]]:
    """Louvain communities, largest first (ties by smallest id); members sorted."""
    if u.number_of_nodes() == 0:
        return []
    found = nx.community.louvain_communities(u, seed=seed)
    return sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))


def summarize(g: nx.DiGraph, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """Every measure of one subgraph, as a JSON-ready dict."""
    opt = options or AnalysisOptions()
    u = undirected(g)
    n = g.number_of_nodes()
    sizes = component_sizes(u)
    degree = dict(u.degree())
    between, between_exact = betweenness(u, opt.seed, opt.betweenness_samples)
    result: dict[str, Any] = {
        "nodes": n,
        "edges": g.number_of_edges(),
        "undirected_edges": u.number_of_edges(),
        "reciprocal_edges": sum(1 for a, b in g.edges if g.has_edge(b, a)) // 2,
        "density": _round(nx.density(u)),
        "directed_density": _round(nx.density(g)),
        "degree_histogram": nx.degree_histogram(u),
        "in_degree_histogram": _histogram(d for _, d in g.in_degree()),
        "out_degree_histogram": _histogram(d for _, d in g.out_degree()),
        "mean_degree": _round(sum(degree.values()) / n) if n else 0.0,
        "components": {
            "count": len(sizes),
            "largest": sizes[0] if sizes else 0,
            "sizes": sizes[:50],
            "isolated": sum(1 for s in sizes if s == 1),
            "strongly_connected": nx.number_strongly_connected_components(g) if n else 0,
        },
        "clustering": {
            "average": _round(nx.average_clustering(u)) if n else 0.0,
            "transitivity": _round(nx.transitivity(u)),
        },
        "diameter": diameter(u, opt.seed),
        "centrality": {
            "degree": top_k(nx.degree_centrality(u) if n > 1 else dict.fromkeys(u, 0.0),
                            opt.top_k),
            "in_degree": top_k(dict(g.in_degree()), opt.top_k),
            "betweenness": top_k(between, opt.top_k),
            "betweenness_exact": between_exact,
            "betweenness_samples": None if between_exact else opt.betweenness_samples,
            "pagerank": top_k(pagerank(g), opt.top_k),
        },
    }
    if opt.communities:
        found = communities(u, opt.seed)
        result["communities"] = {
            "count": len(found),
            "sizes": [len(c) for c in found[:50]],
            "modularity": _round(nx.community.modularity(u, found)) if found and
            u.number_of_edges() else 0.0,
            "seed": opt.seed,
        }
        if opt.membership:
            result["communities"]["membership"] = {
                node: index for index, members in enumerate(found) for node in members
            }
    return result


def _histogram(values: Iterable[int]) -> list[int]:
    """Counts per value 0..max, like networkx's degree_histogram."""
    counts: list[int] = []
    for v in values:
        if v >= len(counts):
            counts.extend([0] * (v + 1 - len(counts)))
        counts[v] += 1
    return counts


def compare(labelled: list[tuple[str, nx.DiGraph]], options: AnalysisOptions | None = None
            ) -> dict[str, Any]:
    """Several subgraphs side by side, with how much their node sets overlap (Jaccard)."""
    opt = options or AnalysisOptions()
    items = [{"label": label, **summarize(g, opt)} for label, g in labelled]
    sets = [set(g.nodes) for _, g in labelled]
    overlap = [
        [_round(len(a & b) / len(a | b)) if a | b else 1.0 for b in sets] for a in sets
    ]
    shared = set.intersection(*sets) if sets else set()
    return {
        "items": items,
        "labels": [label for label, _ in labelled],
        "jaccard": overlap,
        "shared_nodes": len(shared),
    }


def whole_graph_scores(
    g: nx.DiGraph, options: AnalysisOptions | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-image scores to write back (community, pagerank, degree, in/out degree) and the
    summary of the whole graph. Community ids are indices into the size-ordered list."""
    opt = options or AnalysisOptions()
    u = undirected(g)
    found = communities(u, opt.seed)
    community_of = {node: index for index, members in enumerate(found) for node in members}
    ranks = pagerank(g)
    scores = {
        node: {
            "community": community_of.get(node),
            "pagerank": _round(ranks.get(node, 0.0)),
            "degree": u.degree(node),
            "in_degree": g.in_degree(node),
            "out_degree": g.out_degree(node),
        }
        for node in g.nodes
    }
    summary = summarize(g, AnalysisOptions(
        top_k=opt.top_k, communities=False, seed=opt.seed,
        betweenness_samples=min(opt.betweenness_samples, WHOLE_GRAPH_BETWEENNESS_SAMPLES),
    ))
    summary["communities"] = {
        "count": len(found),
        "sizes": [len(c) for c in found[:50]],
        "modularity": _round(nx.community.modularity(u, found)) if found and
        u.number_of_edges() else 0.0,
        "seed": opt.seed,
    }
    return scores, summary
