"""Near-duplicate pairs and groups: every pair of images within a per-kind threshold.

The pairs are a self-join of a kind's hashes at radius ``threshold``. It runs on the
multi-index tables of multindex.py, vectorised: for each chunk and each flip pattern, every
item is matched against the bucket its chunk value lands in, in blocks of items, so the
whole join is a few hundred numpy passes instead of one query per image. Mirrored copies are
paired too, through the mirror hash derived from each hash (bits.py). Groups are the
connected components of all pairs of all kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from services.indexer.bits import mirror_values
from services.indexer.multindex import MultiIndex, flip_patterns

# Thresholds per kind (bits, inclusive), chosen with bench/bench_quality.py on the replica's
# planted variants: 174 Met paintings x 6 transforms (1218 thumbnails, 741,153 pairs),
# distances taking the derived mirror into account. Measured (recall of original-variant
# pairs / false pairs between different paintings):
#   phash  8: 0.918 / 0    10: 0.957 / 0    12: 0.973 / 6     14: 0.989 / 91
#   dhash  8: 0.897 / 0     9: 0.926 / 2    10: 0.948 / 7     12: 0.976 / 65
#   whash  2: 0.760 / 0     4: 0.845 / 41    8: 0.954 / 846
#   ahash  2: 0.761 / 0     3: 0.814 / 5     6: 0.922 / 167
#   colorhash 0: 0.552 / 1717 (it compares colours only: never used to pair)
# Each kind at its largest threshold without a false pair; together (a pair counts when any
# kind is within its threshold): recall 0.976, 0 false pairs, precision 1.000; per transform
# 1.00 for resize, recompress, rotate, brighten and mirror, 0.86 for crop (an 8% crop moves
# a hash more than anything else here).
THRESHOLDS: dict[str, int | None] = {
    "phash": 10,
    "dhash": 8,
    "whash": 2,
    "ahash": 2,
    "colorhash": None,
}


@dataclass(frozen=True, order=True)
class Pair:
    a: str  # the smaller id
    b: str
    kind: str
    distance: int
    mirrored: bool = False


def self_join(
    values: np.ndarray, multi: MultiIndex, radius: int, *, mirrored: bool = False,
    only: np.ndarray | None = None, block_candidates: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All item pairs (i < j) within ``radius``: arrays i, j, distance.

    With ``mirrored``, pairs the mirror hash of item i (``multi.bits`` must be the kind's
    width; the caller passes the derived mirror values as ``values``) with item j != i;
    pairs are then normalised to i < j as well. With ``only`` (item positions), just the
    pairs that involve one of those items: the incremental update after new hashes.
    """
    n = len(values)
    if n == 0 or (only is not None and len(only) == 0):
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.uint8)
    values = np.asarray(values, dtype=np.uint64)
    everyone = np.arange(n) if only is None else np.unique(np.asarray(only, dtype=np.int64))
    per_chunk = radius // len(multi.order)
    out_i, out_j, out_d = [], [], []
    for c, (shift, width) in enumerate(multi.layout):
        keys = ((values >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        offsets = multi.offsets[c]
        order = multi.order[c]
        sorted_values = multi.sorted_values[c]
        for pattern in flip_patterns(width, per_chunk):
            target = keys ^ pattern
            # Bucket pairs (k, k ^ pattern) are symmetric: visit each from its smaller key.
            symmetric = not mirrored and pattern != 0 and only is None
            sources = np.flatnonzero(keys < target) if symmetric else everyone
            lo = offsets[target[sources]].astype(np.int64)
            counts = offsets[target[sources] + 1] - lo
            cum = np.cumsum(counts)
            start = 0
            while start < len(sources):
                # a block of source items whose candidates fit in block_candidates
                base = cum[start - 1] if start else 0
                stop = int(np.searchsorted(cum, base + block_candidates, side="right"))
                stop = max(stop, start + 1)
                cnt = counts[start:stop]
                total = int(cnt.sum())
                if total:
                    src = np.repeat(sources[start:stop], cnt)
                    idx = np.repeat(lo[start:stop] - (np.cumsum(cnt) - cnt), cnt) + np.arange(
                        total
                    )
                    d = np.bitwise_count(np.bitwise_xor(sorted_values[idx], values[src]))
                    dst = order[idx].astype(np.int64)
                    same_bucket = pattern == 0 and not mirrored and only is None
                    keep = (d <= radius) & ((src < dst) if same_bucket else (src != dst))
                    out_i.append(src[keep])
                    out_j.append(dst[keep])
                    out_d.append(d[keep])
                start = stop
    if not out_i:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.uint8)
    i = np.concatenate(out_i)
    j = np.concatenate(out_j)
    d = np.concatenate(out_d)
    lo_, hi_ = np.minimum(i, j), np.maximum(i, j)
    key = lo_ * n + hi_
    # the same pair turns up in several chunks (and, mirrored, from both ends): keep the
    # smallest distance
    order = np.lexsort((d, key))
    key, lo_, hi_, d = key[order], lo_[order], hi_[order], d[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return lo_[first], hi_[first], d[first]


def find_pairs(
    ids: np.ndarray, kind: str, values: np.ndarray, multi: MultiIndex, threshold: int,
    *, mirror: bool = True, only: np.ndarray | None = None,
) -> list[Pair]:
    """Near-duplicate pairs of one kind; ``ids[i]`` is item i. A pair found both directly
    and through the mirror keeps the direct distance unless the mirror is closer. With
    ``only``, the pairs involving those items."""
    best: dict[tuple[str, str], Pair] = {}
    passes = [(values, False)]
    if mirror:
        passes.append((mirror_values(kind, values), True))
    for vals, mirrored in passes:
        i, j, d = self_join(vals, multi, threshold, mirrored=mirrored, only=only)
        for a, b, dist in zip(ids[i].tolist(), ids[j].tolist(), d.tolist(), strict=True):
            a, b = (a, b) if a < b else (b, a)
            old = best.get((a, b))
            if old is None or (dist, mirrored) < (old.distance, old.mirrored):
                best[(a, b)] = Pair(a, b, kind, int(dist), mirrored)
    return sorted(best.values())


def group_pairs(pairs: Iterable[Pair]) -> dict[str, tuple[str, int]]:
    """image id -> (group id, group size) for every image in at least one pair. The group id
    is the smallest member id."""
    edges = {(p.a, p.b) for p in pairs}
    if not edges:
        return {}
    names = sorted({x for e in edges for x in e})
    index = {name: k for k, name in enumerate(names)}
    a = np.array([index[x] for x, _ in edges])
    b = np.array([index[y] for _, y in edges])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(names), len(names)))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first: dict[int, str] = {}
    for name, label in zip(names, labels.tolist(), strict=True):
        first.setdefault(label, name)  # names are sorted: the first seen is the smallest
    return {name: (first[label], int(sizes[label]))
            for name, label in zip(names, labels.tolist(), strict=True)}


def all_pairs(
    ids: np.ndarray, columns: Mapping[str, tuple[np.ndarray, np.ndarray, MultiIndex]],
    thresholds: Mapping[str, int | None] = THRESHOLDS, *, mirror: bool = True,
) -> list[Pair]:
    """Pairs of every kind with a threshold. ``columns[kind] = (rows, values, multi)``:
    item k of the kind is image ``ids[rows[k]]``."""
    pairs: list[Pair] = []
    for kind, (rows, values, multi) in columns.items():
        threshold = thresholds.get(kind)
        if threshold is None:
            continue
        pairs.extend(
            find_pairs(ids[np.asarray(rows)], kind, values, multi, threshold, mirror=mirror)
        )
    return pairs


def update_pairs(
    previous: Iterable[Pair], kind: str, ids: np.ndarray, values: np.ndarray,
    multi: MultiIndex, threshold: int, old: Mapping[str, int], *, mirror: bool = True,
) -> tuple[list[Pair], int]:
    """The pairs of one kind after some hashes changed, without joining everything again.

    ``previous``: this kind's pairs at the last build, whose hashes were ``old`` (id ->
    value). Images whose hash is new or different, and images gone, lose their old pairs
    and the new or changed ones are joined against all; every other pair still holds, as
    neither of its hashes moved. Returns the pairs and how many images were re-joined.
    """
    current = dict(zip(ids.tolist(), np.asarray(values).tolist(), strict=True))
    changed = np.array(
        [k for k, (image, value) in enumerate(current.items()) if old.get(image) != value],
        dtype=np.int64,
    )
    stale = {ids[k] for k in changed.tolist()} | (old.keys() - current.keys())
    kept = [p for p in previous if p.kind == kind and p.a not in stale and p.b not in stale]
    fresh = find_pairs(ids, kind, values, multi, threshold, mirror=mirror, only=changed)
    merged = {(p.a, p.b): p for p in kept}
    for p in fresh:
        merged[(p.a, p.b)] = p
    return sorted(merged.values()), len(changed)
