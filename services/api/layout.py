"""Positions for drawing a small subgraph: a force-directed layout computed on the server.

Why here and not in the browser: a frontend then needs no graph-drawing library (the
explorer is SVG and a little vanilla JavaScript), every client draws the same picture, and
the layout is a pure function that tests can check. Drawings are capped (``MAX_NODES``), so
the dense O(n^2) spring iterations of networkx stay in the tens of milliseconds.

Coordinates are in units of one node's width, the seed at (0, 0): a client multiplies by the
size it draws a node at. Nodes sit on a grid ``MIN_GAP`` units apart, so thumbnails drawn
one unit wide never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import networkx as nx
import numpy as np

MAX_NODES = 150
# Closest two node centres may be, in node widths: a little air between thumbnails.
MIN_GAP = 1.4
# Typical distance between linked nodes, in node widths.
EDGE_LENGTH = 2.7
# Room a node has in a crowded drawing, in gaps (see spring_layout).
ROOM = 1.3
_ITERATIONS = 50
_SEED = 7


def _rings(nodes: list[str], centre: str, depth: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Start positions: the seed in the middle, each hop on a ring further out. Starting
    from rings (not at random) keeps the drawing of a neighbourhood recognisable when it is
    drawn again, and the spring iterations only have to untangle, not discover, its shape."""
    by_hop: dict[int, list[str]] = {}
    for node in nodes:
        by_hop.setdefault(depth.get(node, 1) if node != centre else 0, []).append(node)
    pos = {}
    for hop, members in by_hop.items():
        for i, node in enumerate(members):
            angle = 2 * math.pi * i / len(members) + hop * 0.6
            pos[node] = np.array([hop * math.cos(angle), hop * math.sin(angle)])
    return pos


def _snap(xy: np.ndarray, fixed: int, gap: float) -> np.ndarray:
    """Move every node to the nearest free point of a square grid ``gap`` apart, the fixed
    node first and the others by their distance from it: no two nodes end up closer than
    ``gap``, each as near its place in the spring layout as the crowd allows. (Pushing
    overlapping pairs apart instead converges slowly in a crowd, where pushes cascade.)"""
    order = [
        fixed,
        *(int(i) for i in np.argsort(np.hypot(*(xy - xy[fixed]).T), kind="stable") if i != fixed),
    ]
    taken: set[tuple[int, int]] = set()
    out = np.empty_like(xy)
    for i in order:
        fx, fy = xy[i] / gap
        cx, cy = round(fx), round(fy)
        best: tuple[float, int, int] | None = None
        best_ring = ring = 0
        # Search square rings outwards; a free cell found in ring r may be beaten by one in
        # ring r + 1 (a ring's corners are farther than the next ring's sides), not beyond.
        while best is None or ring <= best_ring + 1:
            for gx in range(cx - ring, cx + ring + 1):
                for gy in range(cy - ring, cy + ring + 1):
                    if max(abs(gx - cx), abs(gy - cy)) != ring or (gx, gy) in taken:
                        continue
                    d = (gx - fx) ** 2 + (gy - fy) ** 2
                    if best is None or d < best[0]:
                        best, best_ring = (d, gx, gy), ring
            ring += 1
        assert best is not None
        taken.add((best[1], best[2]))
        out[i] = (best[1] * gap, best[2] * gap)
    return out


def spring_layout(
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str, object]],
    centre: str,
    depth: Mapping[str, int] | None = None,
) -> dict[str, tuple[float, float]]:
    """Positions for ``nodes`` (at most ``MAX_NODES``) joined by ``edges`` (direction and
    rank ignored), ``centre`` fixed at (0, 0). Deterministic: the same subgraph always gets
    the same picture."""
    order = sorted(set(nodes))
    if len(order) > MAX_NODES:
        raise ValueError(f"a layout is computed for at most {MAX_NODES} nodes, not {len(order)}")
    if centre not in order:
        raise ValueError(f"the centre {centre!r} is not among the nodes")
    if len(order) == 1:
        return {centre: (0.0, 0.0)}
    g = nx.Graph()
    g.add_nodes_from(order)
    g.add_edges_from((s, t) for s, t, _ in edges if s != t and s in g and t in g)
    start = _rings(order, centre, depth or {})
    placed = nx.spring_layout(
        g,
        pos=start,
        fixed=[centre],
        iterations=_ITERATIONS,
        seed=_SEED,
        k=1.0 / math.sqrt(len(order)) * 2.0,
    )
    xy = np.array([placed[n] for n in order], dtype=float)
    c = order.index(centre)
    xy -= xy[c]
    # Scale so linked nodes sit about EDGE_LENGTH apart, then make room where they crowd.
    index = {n: i for i, n in enumerate(order)}
    lengths = [float(np.linalg.norm(xy[index[s]] - xy[index[t]])) for s, t in g.edges]
    typical = float(np.median(lengths)) if lengths else float(np.abs(xy).max() or 1.0)
    xy *= EDGE_LENGTH / max(typical, 1e-9)
    # ... and so the drawing has room for all its nodes: a disc where each has ROOM times
    # the gap around it (long links can squeeze a big neighbourhood into a crowd that no
    # amount of pushing apart undoes quickly).
    rms = float(np.sqrt((xy**2).sum(axis=1).mean()))
    needed = math.sqrt(len(order) / math.pi) * ROOM * MIN_GAP
    if rms < needed:
        xy *= needed / max(rms, 1e-9)
    xy = _snap(xy - xy[c], c, MIN_GAP)
    return {
        n: (round(float(x), 3), round(float(y), 3)) for n, (x, y) in zip(order, xy, strict=True)
    }
