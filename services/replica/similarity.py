"""Exact top-k neighbours by dot product, in blocks: the replica's stand-in for ES kNN.

The catalogue asks Elasticsearch for the 5 nearest images by ``dot_product`` on unit
vectors, excluding the image itself (SPEC §3.2). Elasticsearch's HNSW search is approximate;
the replica computes the exact answer, so tests can derive the expected lists from the
vectors alone. Blocks of rows keep the score matrix small enough for 100k+ images.
"""

from __future__ import annotations

import numpy as np

N_SIMILAR = 5  # nVisuallySimilarImages in ImagesService.scala


def top_k(
    vectors: np.ndarray,
    k: int = N_SIMILAR,
    *,
    rows: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    block: int | None = None,
) -> np.ndarray:
    """For each of ``rows`` (default: all), the ``k`` best other rows by dot product.

    Returns an int32 array of shape ``(len(rows), k)``, best first, ``-1`` where fewer than
    ``k`` candidates exist. ``candidates`` is a boolean mask of rows that may be returned
    (e.g. excluding removed images). Equal scores are ordered by row index, so the answer
    is deterministic.
    """
    n = vectors.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.full((len(rows), k), -1, dtype=np.int32)
    if n == 0 or len(rows) == 0:
        return out
    mat = np.ascontiguousarray(vectors, dtype=np.float32)
    allowed = np.ones(n, dtype=bool) if candidates is None else np.asarray(candidates, bool)
    if block is None:  # keep each score block near 100 MB whatever the collection size
        block = int(min(1024, max(16, 25_000_000 // n)))
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        scores = mat[chunk] @ mat.T
        scores[:, ~allowed] = -np.inf
        scores[np.arange(len(chunk)), chunk] = -np.inf  # never itself
        kk = min(k, n - 1)
        if kk <= 0:
            continue
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        best = np.where(np.isfinite(best_scores), best, -1)
        out[start : start + len(chunk), :kk] = best
    return out
