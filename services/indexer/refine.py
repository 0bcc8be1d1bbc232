"""Graph-refined embeddings: each image's vector smoothed over the images around it.

The graph is the union of two: the catalogue's SIMILAR_TO edges (what the museum's own model
and curators link) and the embedding's k-nearest-neighbour graph. Propagating the vectors
over it is a graph neural network without learned weights (SGC, APPNP): an image's refined
vector leans towards its neighbours', so pictures that belong together (one artist, one
plate's edits) move closer, and a lone false neighbour is outvoted. It is deterministic,
needs no training and takes well under a second per 10,000 images.

- ``sgc``: ``Z = S^K X`` with ``S = D^-1/2 (A + I) D^-1/2`` (Wu et al., Simplifying GCNs).
- ``appnp``: ``Z_{t+1} = (1 - alpha) S Z_t + alpha X`` for K steps (Gasteiger et al.,
  personalised PageRank): the image's own vector keeps weight ``alpha``, so it never drifts
  into its neighbourhood's average as SGC does when K grows.

Before propagating, the vectors are centred on the collection's mean (``center``): the
model's pooled features are all positive, so any two pictures share a large common part
(cosine ~0.3 between unrelated paintings); taking it away lets what distinguishes them
count. The mean is kept with the refined vectors, so a vector embedded later is put in the
same space (``to_refined_space``) until a build refines it.

Which one is the default, and its parameters, come from ``bench/bench_embed.py`` (see
``services/indexer/README.md``); a trained GraphSAGE was measured against them there too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # scipy is imported by the functions that build graphs: the readers, which
    # only put query vectors into the refined space, start ~0.1 s faster without it
    from scipy import sparse

METHODS = ("appnp", "sgc", "none")


@dataclass(frozen=True)
class RefineConfig:
    method: str = "appnp"
    knn: int = 10  # neighbours per image in the embedding's kNN graph
    hops: int = 10  # K: propagation steps
    alpha: float = 0.5  # APPNP: weight of the image's own vector at every step
    similar_weight: float = 0.5  # a SIMILAR_TO edge's weight (a kNN edge's is its cosine)
    center: bool = True  # subtract the collection's mean vector first

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"refine method must be one of {', '.join(METHODS)}, not {self.method!r}"
            )
        if self.knn < 0 or self.hops < 0 or not 0 < self.alpha <= 1:
            raise ValueError(f"bad refine parameters: {self}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def adjacency(
    n: int,
    knn_rows: np.ndarray,
    knn_scores: np.ndarray,
    similar: tuple[np.ndarray, np.ndarray],
    similar_weight: float,
) -> sparse.csr_matrix:
    """The symmetric weighted graph: kNN edges weighted by their cosine (negative ones left
    out), SIMILAR_TO edges by ``similar_weight``; an edge in both keeps the larger weight."""
    from scipy import sparse

    rows = (
        np.repeat(np.arange(n, dtype=np.int64), knn_rows.shape[1]) if n else np.zeros(0, np.int64)
    )
    cols = knn_rows.reshape(-1)
    weights = knn_scores.reshape(-1).astype(np.float64)
    keep = (cols >= 0) & np.isfinite(weights) & (weights > 0)
    a, b = np.asarray(similar[0], np.int64), np.asarray(similar[1], np.int64)
    sim_keep = (a != b) & (a >= 0) & (b >= 0)
    all_rows = np.concatenate([rows[keep], a[sim_keep]])
    all_cols = np.concatenate([cols[keep], b[sim_keep]])
    all_w = np.concatenate([weights[keep], np.full(int(sim_keep.sum()), similar_weight)])
    # Both directions; duplicates keep the largest weight (max over a COO sum would add).
    r = np.concatenate([all_rows, all_cols])
    c = np.concatenate([all_cols, all_rows])
    w = np.concatenate([all_w, all_w])
    if not len(r):
        return sparse.csr_matrix((n, n))
    key = r * n + c
    order = np.lexsort((-w, key))
    key, r, c, w = key[order], r[order], c[order], w[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return sparse.csr_matrix((w[first], (r[first], c[first])), shape=(n, n))


def normalised(adj: sparse.csr_matrix) -> sparse.csr_matrix:
    """``D^-1/2 (A + I) D^-1/2``: self-loops keep each image's own vector in the mix."""
    from scipy import sparse

    with_self = adj + sparse.identity(adj.shape[0], format="csr")
    degree = np.asarray(with_self.sum(axis=1)).ravel()
    inv = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return (inv @ with_self @ inv).tocsr()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def propagate(vectors: np.ndarray, adj: sparse.csr_matrix, config: RefineConfig) -> np.ndarray:
    """The refined vectors (unit length, float32) of ``vectors`` over the graph ``adj``."""
    x = np.asarray(vectors, dtype=np.float32)
    if config.method == "none" or config.hops == 0 or not len(x):
        return _unit_rows(x.copy())
    s = normalised(adj).astype(np.float32)
    z = x.copy()
    keep = config.alpha if config.method == "appnp" else 0.0  # SGC: plain powers of S
    for _ in range(config.hops):
        z = (1 - keep) * (s @ z) + keep * x
    return _unit_rows(np.asarray(z))


def to_refined_space(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Raw unit vectors moved into a refinement's space (centred on its mean), unrefined."""
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return _unit_rows(x - mean) if np.any(mean) else x


def refine(
    vectors: np.ndarray,
    knn_rows: np.ndarray,
    knn_scores: np.ndarray,
    similar: tuple[np.ndarray, np.ndarray],
    config: RefineConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Refined vectors from raw ones, their kNN graph (``angular.all_top_k``; only the
    first ``config.knn`` columns are used) and SIMILAR_TO as row pairs; and the mean the
    vectors were centred on (zeros without ``center``)."""
    x = np.asarray(vectors, dtype=np.float32)
    mean = (
        x.mean(axis=0)
        if config.center and len(x)
        else np.zeros(x.shape[1] if x.ndim == 2 else 0, np.float32)
    ).astype(np.float32)
    k = min(config.knn, knn_rows.shape[1]) if knn_rows.ndim == 2 else 0
    adj = adjacency(len(x), knn_rows[:, :k], knn_scores[:, :k], similar, config.similar_weight)
    return propagate(to_refined_space(x, mean) if len(x) else x, adj, config), mean
