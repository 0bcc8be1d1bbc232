"""An independent breadth-first walk over a replica collection's own data: what a crawl
must store. Deliberately simple and separate from the crawler's frontier code."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class Expected:
    fetched: list[str]  # in breadth-first order
    nodes: set[str]
    edges: set[tuple[str, str, int]]


def reference_bfs(
    similar_ids: Callable[[str], list[str]],
    seeds: Iterable[str],
    max_depth: int,
    max_images: int | None = None,
    unfetchable: set[str] | frozenset[str] = frozenset(),
) -> Expected:
    seeds = list(dict.fromkeys(seeds))
    depth = {s: 0 for s in seeds}
    queue = deque(seeds)
    fetched: list[str] = []
    nodes: set[str] = set(seeds)
    edges: set[tuple[str, str, int]] = set()
    while queue:
        x = queue.popleft()
        fetched.append(x)
        if x in unfetchable:
            continue
        for rank, y in enumerate(similar_ids(x), start=1):
            nodes.add(y)
            edges.add((x, y, rank))
            if depth[x] < max_depth and y not in depth:
                if max_images is not None and len(depth) >= max_images:
                    continue
                depth[y] = depth[x] + 1
                queue.append(y)
    return Expected(fetched, nodes, edges)
