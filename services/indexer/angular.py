"""Nearest unit vectors by cosine: an exact scan when small, Annoy's angular index beyond,
always re-ranked by the exact dot product.

Why both: Annoy cannot add items and its answers are approximate, while a scan of n x 1280
float32s is exact and, up to a few thousand vectors, as fast as Annoy; past ``EXACT_MAX``
(measured by ``bench/bench_vectors.py``) Annoy's candidates (``search_k`` nodes, several
times more candidates than asked for) are re-scored exactly, so a returned score is always
the true cosine and only the recall is approximate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

# Up to this many vectors a query scans them all (exact); beyond, Annoy gives candidates.
# Measured with bench/bench_vectors.py (see services/indexer/README.md).
EXACT_MAX = 20_000
# Candidates Annoy returns per result asked for, before the exact re-rank.
OVERSAMPLE = 4
# Rows of a block of an exact all-pairs pass: keeps the score block near 100 MB.
_BLOCK_CELLS = 25_000_000


def build_annoy(
    vectors: np.ndarray, trees: int, path: Path, *, seed: int = 42, n_jobs: int = 1
) -> None:
    """An Annoy angular index of ``vectors`` (item i = row i) saved to ``path``."""
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else 1
    index = AnnoyIndex(max(dim, 1), "angular")
    index.set_seed(seed)
    for i, row in enumerate(np.asarray(vectors, dtype=np.float32)):
        index.add_item(i, row.tolist())
    index.build(trees if len(vectors) else 1, n_jobs=n_jobs)
    index.save(str(path))
    index.unload()


def load_annoy(path: Path, dim: int) -> AnnoyIndex:
    index = AnnoyIndex(dim, "angular")
    index.load(str(path), prefault=True)
    return index


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the k best scores per row, best first (ties by column), and the scores."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return (
            np.zeros((scores.shape[0], 0), np.int64),
            np.zeros((scores.shape[0], 0), np.float32),
        )
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return (
        np.take_along_axis(part, order, axis=1).astype(np.int64),
        np.take_along_axis(part_scores, order, axis=1),
    )


def exact_top_k(
    matrix: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``matrix`` with the k highest dot products with ``query``: (rows, scores)."""
    if not len(matrix) or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = matrix @ np.asarray(query, dtype=np.float32)
    if exclude is not None:
        scores[exclude] = -np.inf
    rows, best = _top(scores[None, :], k + (exclude is not None))
    keep = np.isfinite(best[0])
    return rows[0][keep][:k], best[0][keep][:k]


def annoy_top_k(
    index: AnnoyIndex,
    matrix: np.ndarray,
    query: np.ndarray,
    k: int,
    search_k: int,
    exclude: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Annoy's candidates for ``query``, re-ranked by the exact dot product."""
    want = k + (exclude is not None)
    items = index.get_nns_by_vector(
        np.asarray(query, dtype=np.float32).tolist(),
        max(want * OVERSAMPLE, want),
        search_k=search_k,
    )
    rows = np.asarray([i for i in items if i != exclude], dtype=np.int64)
    if not len(rows):
        return rows, np.zeros(0, np.float32)
    scores = matrix[rows] @ np.asarray(query, dtype=np.float32)
    order = np.lexsort((rows, -scores))[:k]
    return rows[order], scores[order]


def all_top_k(
    matrix: np.ndarray, k: int, *, index: AnnoyIndex | None = None, search_k: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's k nearest other rows, best first: (rows (n, k), scores (n, k)), -1 and
    -inf where fewer exist. Exact in blocks without ``index``; with it, Annoy's candidates
    re-ranked exactly."""
    n = len(matrix)
    k_eff = max(0, min(k, n - 1))
    out = np.full((n, k), -1, np.int64)
    out_s = np.full((n, k), -np.inf, np.float32)
    if k_eff == 0:
        return out, out_s
    if index is None:
        block = int(min(2048, max(16, _BLOCK_CELLS // max(n, 1))))
        for start in range(0, n, block):
            chunk = matrix[start : start + block]
            scores = chunk @ matrix.T
            scores[np.arange(len(chunk)), np.arange(start, start + len(chunk))] = -np.inf
            rows, best = _top(scores, k_eff)
            out[start : start + len(chunk), :k_eff] = rows
            out_s[start : start + len(chunk), :k_eff] = best
        return out, out_s
    for i in range(n):
        items = index.get_nns_by_item(
            i, max((k_eff + 1) * OVERSAMPLE, k_eff + 1), search_k=search_k
        )
        rows = np.asarray([j for j in items if j != i], dtype=np.int64)
        scores = matrix[rows] @ matrix[i]
        order = np.lexsort((rows, -scores))[:k_eff]
        out[i, : len(order)] = rows[order]
        out_s[i, : len(order)] = scores[order]
    return out, out_s
