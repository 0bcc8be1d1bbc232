"""Pictures of a neighbourhood: a spring layout with each image's thumbnail drawn on its node.

Why matplotlib's object API (Figure + Agg canvas) and not pyplot: pyplot keeps global state
and is not thread-safe, and the API serves requests on several threads. Thumbnails come from
the on-disk cache the crawler fills; an image without one is drawn as a plain dot, so a
picture never waits for a download.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from PIL import Image

from lookalike.graph import Subgraph

SEED_COLOR = "#d62728"
EDGE_COLOR = "#9a9a9a"
DOT_COLOR = "#4c72b0"
THUMB_PX = 56  # longest side of a thumbnail on the picture, at 100 dpi


def load_thumbnail(path: Path | None, max_px: int = THUMB_PX) -> np.ndarray | None:
    """A small RGB array of a cached thumbnail, or None when missing or unreadable."""
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            im.draft("RGB", (max_px * 2, max_px * 2))  # JPEG: decode at reduced size
            small = im.convert("RGB")
            small.thumbnail((max_px, max_px))
            return np.asarray(small)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def layout(sub: Subgraph, seed: int = 7) -> dict[str, np.ndarray]:
    """Spring layout of the undirected neighbourhood; deterministic for a given graph."""
    g = nx.Graph()
    g.add_nodes_from(sorted(sub.nodes))
    g.add_edges_from((s, t) for s, t, _ in sub.edges if s != t)
    if g.number_of_nodes() == 1:
        return {n: np.zeros(2) for n in g.nodes}
    # A larger optimal distance than networkx's default (1/sqrt(n)) leaves room for the
    # thumbnails in the dense middle of a neighbourhood.
    k = 2.5 / max(1.0, g.number_of_nodes() ** 0.5)
    return nx.spring_layout(g, seed=seed, k=k, iterations=200)


def draw_neighborhood(
    sub: Subgraph,
    seed_id: str,
    thumbnail_path: Callable[[str], Path | None],
    size_px: int = 900,
    title: str | None = None,
) -> bytes:
    """PNG bytes of the neighbourhood: edges, thumbnails (or dots), the seed framed in red."""
    pos = layout(sub)
    dpi = 100
    fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.92 if title else 0.96))
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)

    segments = [(pos[s], pos[t]) for s, t, _ in sub.edges if s in pos and t in pos and s != t]
    if segments:
        ax.add_collection(
            LineCollection(segments, colors=EDGE_COLOR, linewidths=0.8, zorder=1, alpha=0.8)
        )

    thumb_px = max(24, min(THUMB_PX, int(size_px / (2.2 * max(1, len(pos)) ** 0.5))))
    dots = []
    for node in sorted(pos):
        xy = pos[node]
        thumb = load_thumbnail(thumbnail_path(node), thumb_px)
        is_seed = node == seed_id
        if thumb is None:
            dots.append((xy, is_seed))
            continue
        box = AnnotationBbox(
            # OffsetImage scales by dpi/72; undo it so a thumbnail keeps its pixel size.
            OffsetImage(thumb, zoom=72 / dpi),
            xy,
            frameon=True,
            pad=0.15,
            bboxprops={
                "edgecolor": SEED_COLOR if is_seed else "white",
                "linewidth": 3 if is_seed else 0.5,
            },
            zorder=3 if is_seed else 2,
        )
        ax.add_artist(box)
    if dots:
        xs = [xy[0] for xy, _ in dots]
        ys = [xy[1] for xy, _ in dots]
        colors = [SEED_COLOR if s else DOT_COLOR for _, s in dots]
        sizes = [140 if s else 45 for _, s in dots]
        ax.scatter(xs, ys, c=colors, s=sizes, zorder=2, edgecolors="white", linewidths=0.5)

    # A square view around the layout (equal aspect, so distances read true).
    coords = np.array(list(pos.values()))
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    center = (lo + hi) / 2
    half = 0.56 * max(float((hi - lo).max()), 1e-3)
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)
    ax.set_aspect("equal", adjustable="box")

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, facecolor="white")
    return out.getvalue()


def draw_degree_histogram(
    histogram: list[int], title: str = "Degree histogram", width_px: int = 800, height_px: int = 420
) -> bytes:
    """PNG bar chart of a degree histogram (index = degree, value = number of images)."""
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    degrees = list(range(len(histogram)))
    ax.bar(degrees, histogram, color=DOT_COLOR, width=0.85)
    ax.set_xlabel("degree (similar-image links, either direction)")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, facecolor="white")
    return out.getvalue()
