"""Graph analysis of similarity graphs: pure functions, no I/O, computed with igraph.

These are the measures the Wellcome notebook computes by hand (size, density, degree
histogram, components, clustering, centralities, communities), as functions the API runs on a
bounded subgraph and the background job runs on the whole collection.

Why igraph: measured on clustered graphs like the crawled ones (bench/bench_analysis.py), its
C core answers the same measures 10-40x faster than networkx, and its Leiden is the fastest
community detection that installed here with a seed that makes it deterministic (networkit's
parallel Leiden and PageRank are not, and graphblas-algorithms and nx-parallel have no
community detection). networkx stays the exchange format of exported subgraphs and the
reference the tests compare every answer with.

Conventions (why):
- The stored graph is directed (A lists B as similar). Most measures of "how images cluster"
  are about resemblance, which is symmetric, so they use the undirected view (an edge if
  either lists the other, built once per graph); PageRank and in-degree use the direction
  (being listed by many).
- Vertex i is the i-th id in sorted order, so vertex order, and with it every tie-break and
  every seeded choice, is the same however the graph was loaded.
- Everything is deterministic: results are sorted with ids breaking ties, Leiden and sampled
  betweenness use a fixed seed, so the same graph always gives the same answer. Sampled
  betweenness draws its sources exactly as networkx does (``random.Random(seed).sample`` of
  the sorted ids) and scales them the same way, so it equals networkx's to rounding.
- Exact measures that cost O(n*m) (diameter, betweenness) switch to documented
  approximations above a size threshold and say so in the result (``exact: false``).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import igraph as ig
import numpy as np

# Above these sizes the O(n*m) measures are approximated: a request must answer in seconds.
# Kept where networkx needed them, so answers stay comparable with networkx's; with igraph
# exact betweenness of 500 images and the 100 samples of 5,000 take ~0.05 s each.
EXACT_DIAMETER_MAX_NODES = 1000
EXACT_BETWEENNESS_MAX_NODES = 500
BETWEENNESS_SAMPLES = 100
# The whole collection: each betweenness sample is a full Brandes pass (~0.1 s on 200k images
# / 1M edges), so the background job samples few; PageRank and degree are the exact
# centralities there.
WHOLE_GRAPH_BETWEENNESS_SAMPLES = 16
# Leiden passes over the graph: 2 (leidenalg's default) reach within 0.0003 of the modularity
# of iterating until stable on 200k images, in a quarter of the time.
LEIDEN_ITERATIONS = 2
# Several seeded runs on small graphs, whose communities depend more on the seed (on 40-image
# neighbourhoods, modularity varied by 0.02 between seeds): as many as fit in this many edges,
# at most LEIDEN_MAX_RUNS. A 5,000-image subgraph (~25k edges) gets 2 runs, the collection 1.
LEIDEN_EDGE_BUDGET = 50_000
LEIDEN_MAX_RUNS = 8
DEFAULT_SEED = 42

# igraph draws random numbers from one process-wide generator: seeding it and running Leiden
# must not interleave with another thread's doing the same.
_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class AnalysisOptions:
    top_k: int = 10
    communities: bool = True
    seed: int = DEFAULT_SEED
    # Community membership (id -> community) can be large; only returned when asked.
    membership: bool = False
    betweenness_samples: int = BETWEENNESS_SAMPLES


class SimilarityGraph:
    """A directed similarity graph over sorted image ids, with its undirected view.

    ``ids[i]`` is vertex i. Each derived view or measure is computed once, on first use.
    """

    def __init__(self, ids: Sequence[str], directed: ig.Graph) -> None:
        self.ids = list(ids)
        self.directed = directed

    @classmethod
    def from_arrays(
        cls, ids: Sequence[str], sources: np.ndarray, targets: np.ndarray
    ) -> SimilarityGraph:
        """From sorted unique ids and edges as vertex numbers; self-loops and repeated edges
        dropped. The whole-graph job's way in: no per-edge Python objects."""
        n = len(ids)
        sources = np.asarray(sources, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        keep = sources != targets
        # One sortable key per edge: repeated edges fall out of a 1-D unique, much faster
        # than a unique over rows.
        keys = np.unique(sources[keep] * n + targets[keep])
        pairs = np.column_stack([keys // n, keys % n]) if n else np.zeros((0, 2), np.int64)
        return cls(ids, ig.Graph(n=n, edges=pairs, directed=True))

    @cached_property
    def undirected(self) -> ig.Graph:
        """Resemblance view: one edge between two images if either lists the other."""
        return self.directed.as_undirected(mode="collapse")

    @property
    def n(self) -> int:
        return int(self.directed.vcount())

    @cached_property
    def pagerank(self) -> np.ndarray:
        if self.n == 0:
            return np.zeros(0)
        return np.asarray(self.directed.pagerank(damping=0.85, directed=True))

    @cached_property
    def degree(self) -> np.ndarray:
        return np.asarray(self.undirected.degree(), dtype=np.int64)

    @cached_property
    def in_degree(self) -> np.ndarray:
        return np.asarray(self.directed.indegree(), dtype=np.int64)

    @cached_property
    def out_degree(self) -> np.ndarray:
        return np.asarray(self.directed.outdegree(), dtype=np.int64)


def build_graph(nodes: Iterable[str], edges: Iterable[tuple[str, str, Any]]) -> SimilarityGraph:
    """The graph of image ids and SIMILAR_TO (source, target, rank) edges; edge ends missing
    from ``nodes`` are added, self-loops and repeated edges dropped."""
    pairs = [(s, t) for s, t, _ in edges]
    ids = sorted({*nodes, *(s for s, _ in pairs), *(t for _, t in pairs)})
    index = {node: i for i, node in enumerate(ids)}
    sources = np.fromiter((index[s] for s, _ in pairs), np.int64, len(pairs))
    targets = np.fromiter((index[t] for _, t in pairs), np.int64, len(pairs))
    return SimilarityGraph.from_arrays(ids, sources, targets)


def _round(value: float) -> float:
    return round(float(value), 10)


def top_k(ids: Sequence[str], values: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k highest values, ties broken by id (vertex order is id order), as [{id, value}]."""
    values = np.asarray(values)
    if len(values) == 0:
        return []
    k = min(k, len(values))
    if k < len(values):  # only the candidates that can make the top k are sorted
        cut = np.partition(values, len(values) - k)[len(values) - k]
        candidates = np.flatnonzero(values >= cut)
    else:
        candidates = np.arange(len(values))
    order = candidates[np.lexsort((candidates, -values[candidates]))][:k]
    return [{"id": ids[i], "value": _round(values[i])} for i in order.tolist()]


def _components(u: ig.Graph) -> tuple[list[int], list[int]]:
    """Component sizes, largest first, and the members of the largest component (ties: the
    one holding the smallest id)."""
    if u.vcount() == 0:
        return [], []
    membership = np.asarray(u.connected_components().membership)
    sizes = np.bincount(membership)
    # Components are numbered in order of their smallest vertex, and vertex order is id
    # order: the first of the largest holds the smallest id among them.
    largest = int(np.argmax(sizes))
    return sorted(sizes.tolist(), reverse=True), np.flatnonzero(membership == largest).tolist()


def diameter(g: SimilarityGraph, core: list[int], seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Diameter of the largest connected component (``core``): exact up to a size, else a
    lower bound by the 2-sweep (networkx's approximation: the eccentricity of the vertex a
    breadth-first search from a random vertex reaches last)."""
    if len(core) <= 1:
        return {"value": 0, "exact": True, "component_size": len(core)}
    sub = g.undirected.induced_subgraph(core)
    if len(core) <= EXACT_DIAMETER_MAX_NODES:
        return {
            "value": int(sub.diameter(directed=False)),
            "exact": True,
            "component_size": len(core),
        }
    start = random.Random(seed).randrange(len(core))
    visited, _, _ = sub.bfs(start)
    value = int(sub.eccentricity(visited[-1]))
    return {"value": value, "exact": False, "component_size": len(core)}


def betweenness(
    g: SimilarityGraph, seed: int = DEFAULT_SEED, samples: int = BETWEENNESS_SAMPLES
) -> tuple[np.ndarray, bool]:
    """Normalised betweenness of the undirected view, as networkx defines it; estimated from
    ``samples`` sources drawn as networkx draws them on large graphs."""
    n = g.n
    u = g.undirected
    if n <= max(EXACT_BETWEENNESS_MAX_NODES, samples):
        raw = np.asarray(u.betweenness(directed=False)) if n else np.zeros(0)
        # igraph counts each unordered pair once; networkx normalises by ordered pairs.
        return (raw * 2 / ((n - 1) * (n - 2)) if n > 2 else np.zeros(n)), True
    sources = random.Random(seed).sample(range(n), samples)
    raw = np.asarray(u.betweenness(directed=False, sources=sources))
    # networkx's rescaling of sampled, endpoint-free betweenness: a sampled source cannot
    # lie on its own paths, so it is averaged over the other k - 1 sources.
    scale = np.full(n, 2 / (samples * (n - 2)))
    scale[sources] = 2 / ((samples - 1) * (n - 2)) if samples > 1 else math.nan
    return raw * scale, False


def leiden_runs(edges: int) -> int:
    """How many seeded Leiden runs a graph gets: small graphs' communities depend more on the
    seed, and runs on them are cheap, so they get several (the best is kept) within a budget
    of ``LEIDEN_EDGE_BUDGET`` edges visited; the whole collection gets one."""
    return max(1, min(LEIDEN_MAX_RUNS, LEIDEN_EDGE_BUDGET // max(edges, 1)))


def communities(g: SimilarityGraph, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Leiden communities maximising modularity, as a membership array numbered by size
    (0 = largest; ties by the smallest id). The best of ``leiden_runs`` runs seeded
    ``seed``, ``seed + 1``, ... (ties: the first)."""
    u = g.undirected
    if u.vcount() == 0:
        return np.zeros(0, dtype=np.int64)
    best: list[int] = []
    best_quality = -math.inf
    for run in range(leiden_runs(u.ecount())):
        with _RNG_LOCK:
            ig.set_random_number_generator(random.Random(seed + run))
            try:
                found = u.community_leiden(
                    objective_function="modularity", n_iterations=LEIDEN_ITERATIONS
                )
            finally:
                ig.set_random_number_generator(random)
        quality = u.modularity(found.membership)
        if run == 0 or quality > best_quality:  # NaN without edges: keep the first
            best, best_quality = found.membership, quality
    raw = np.asarray(best, dtype=np.int64)
    sizes = np.bincount(raw)
    first = np.full(len(sizes), len(raw))
    np.minimum.at(first, raw, np.arange(len(raw)))
    order = np.lexsort((first, -sizes))  # largest first, then by smallest member
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[raw]


def community_summary(g: SimilarityGraph, membership: np.ndarray, seed: int) -> dict[str, Any]:
    sizes = np.bincount(membership) if len(membership) else np.zeros(0, dtype=np.int64)
    u = g.undirected
    return {
        "count": len(sizes),
        "sizes": sizes[:50].tolist(),
        "modularity": _round(u.modularity(membership.tolist()))
        if len(sizes) and u.ecount()
        else 0.0,
        "algorithm": "leiden",
        "seed": seed,
    }


def _histogram(values: np.ndarray) -> list[int]:
    """Counts per value 0..max, like networkx's degree_histogram."""
    return np.bincount(values).tolist() if len(values) else []


def summarize(g: SimilarityGraph, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """Every measure of one subgraph, as a JSON-ready dict."""
    opt = options or AnalysisOptions()
    u = g.undirected
    n = g.n
    m, um = g.directed.ecount(), u.ecount()
    sizes, core = _components(u)
    between, between_exact = betweenness(g, opt.seed, opt.betweenness_samples)
    transitivity = u.transitivity_undirected() if n else 0.0
    result: dict[str, Any] = {
        "nodes": n,
        "edges": m,
        "undirected_edges": um,
        # Without self-loops or repeated edges, each reciprocal pair is one undirected edge.
        "reciprocal_edges": m - um,
        "density": _round(2 * um / (n * (n - 1))) if n > 1 else 0.0,
        "directed_density": _round(m / (n * (n - 1))) if n > 1 else 0.0,
        "degree_histogram": _histogram(g.degree),
        "in_degree_histogram": _histogram(g.in_degree),
        "out_degree_histogram": _histogram(g.out_degree),
        "mean_degree": _round(2 * um / n) if n else 0.0,
        "components": {
            "count": len(sizes),
            "largest": sizes[0] if sizes else 0,
            "sizes": sizes[:50],
            "isolated": sum(1 for s in sizes if s == 1),
            "strongly_connected": len(g.directed.connected_components(mode="strong")) if n else 0,
        },
        "clustering": {
            "average": _round(u.transitivity_avglocal_undirected(mode="zero")) if n else 0.0,
            "transitivity": 0.0 if math.isnan(transitivity) else _round(transitivity),
        },
        "diameter": diameter(g, core, opt.seed),
        "centrality": {
            "degree": top_k(g.ids, g.degree / (n - 1) if n > 1 else np.zeros(n), opt.top_k),
            "in_degree": top_k(g.ids, g.in_degree, opt.top_k),
            "betweenness": top_k(g.ids, between, opt.top_k),
            "betweenness_exact": between_exact,
            "betweenness_samples": None if between_exact else opt.betweenness_samples,
            "pagerank": top_k(g.ids, g.pagerank, opt.top_k),
        },
    }
    if opt.communities:
        membership = communities(g, opt.seed)
        result["communities"] = community_summary(g, membership, opt.seed)
        if opt.membership:
            result["communities"]["membership"] = dict(zip(g.ids, membership.tolist(), strict=True))
    return result


def compare(
    labelled: list[tuple[str, SimilarityGraph]], options: AnalysisOptions | None = None
) -> dict[str, Any]:
    """Several subgraphs side by side, with how much their node sets overlap (Jaccard)."""
    opt = options or AnalysisOptions()
    items = [{"label": label, **summarize(g, opt)} for label, g in labelled]
    sets = [set(g.ids) for _, g in labelled]
    overlap = [[_round(len(a & b) / len(a | b)) if a | b else 1.0 for b in sets] for a in sets]
    shared = set.intersection(*sets) if sets else set()
    return {
        "items": items,
        "labels": [label for label, _ in labelled],
        "jaccard": overlap,
        "shared_nodes": len(shared),
    }


@dataclass(frozen=True)
class WholeGraphScores:
    """Per-image scores of a whole-graph analysis, as columns in vertex (id) order."""

    ids: Sequence[str]
    community: np.ndarray
    pagerank: np.ndarray
    degree: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, batch: int) -> Iterator[list[dict[str, Any]]]:
        """The scores as rows to write back, ``batch`` at a time (built per batch, so the
        whole collection never exists as dicts at once)."""
        for start in range(0, len(self.ids), batch):
            stop = start + batch
            yield [
                {"id": node, "community": c, "pagerank": _round(p), "degree": d}
                for node, c, p, d in zip(
                    self.ids[start:stop],
                    self.community[start:stop].tolist(),
                    self.pagerank[start:stop].tolist(),
                    self.degree[start:stop].tolist(),
                    strict=True,
                )
            ]


def whole_graph_scores(
    g: SimilarityGraph, options: AnalysisOptions | None = None
) -> tuple[WholeGraphScores, dict[str, Any]]:
    """Per-image scores to write back (community, pagerank, undirected degree) and the
    summary of the whole graph; each measure computed once for both."""
    opt = options or AnalysisOptions()
    summary = summarize(
        g,
        AnalysisOptions(
            top_k=opt.top_k,
            communities=False,
            seed=opt.seed,
            betweenness_samples=min(opt.betweenness_samples, WHOLE_GRAPH_BETWEENNESS_SAMPLES),
        ),
    )
    membership = communities(g, opt.seed)
    summary["communities"] = community_summary(g, membership, opt.seed)
    scores = WholeGraphScores(g.ids, membership, g.pagerank, g.degree)
    return scores, summary
