"""Near-duplicate pairs and groups: candidates by hash radius, verified, grouped without chains.

1. **Candidates.** A self-join of each candidate kind's hashes at a radius looser than a claim
   needs (``verify.CANDIDATE_RADII``). It runs on the multi-index tables of multindex.py,
   vectorised: for each chunk and each flip pattern, every item is matched against the bucket
   its chunk value lands in, in blocks of items, so the whole join is a few thousand numpy
   passes instead of one query per image. Mirrored copies are candidates too, through the
   mirror hash derived from each hash (bits.py).
2. **Verification.** Every candidate pair is judged on all its evidence at once
   (``pair_evidence`` then ``verify.decide``): the four structural kinds together, in the
   orientation where they agree best, the two pictures' information and their colours, the
   embedding cosine, and, for the pairs whose verdict it could change, the local evidence of
   the two pictures' views (localpairs.py).
3. **Groups** (``group_duplicates``): complete linkage over the verified pairs, strongest
   first. Two groups merge only when *every* member of one is a verified near-duplicate of
   every member of the other, so A~B and B~C with A not like C never make one group: a
   ``dup_group`` is a claim that all its members are copies of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from lookalike.hashing import HASH_BITS
from services.indexer.bits import mirror_values
from services.indexer.localpairs import LocalPairs
from services.indexer.multindex import CHUNKS, MultiIndex, flip_patterns
from services.indexer.table import HashTable
from services.indexer.verify import (
    MAX_COLOR,
    MAX_DILUTED_COLOR,
    STRUCTURAL,
    Local,
    VerifyConfig,
    decide,
)


@dataclass(frozen=True, order=True)
class Pair:
    """A candidate: two images within one kind's candidate radius."""

    a: str  # the smaller id
    b: str
    kind: str
    distance: int
    mirrored: bool = False


@dataclass(frozen=True, order=True)
class Duplicate:
    """A verified near-duplicate pair and the evidence for it."""

    a: str  # the smaller id
    b: str
    weighted: float  # weighted hash distance (verify.py), bits
    mirrored: bool
    distances: tuple[tuple[str, int], ...]  # (kind, bits) for every hash kind
    information: float  # the smaller of the two pictures' (NaN: not measured)
    color: int  # colour layout distance; -1 when either picture has no colour
    cosine: float = math.nan  # embedding cosine (NaN: either picture has no vector)
    inliers: int = -1  # keypoints under one transform (lookalike.localmatch); -1: no views
    local_score: float = math.nan  # the cells compared through it (NaN: not compared)
    layout: float = math.nan  # the grey layouts' distance (NaN: not compared)
    # the colours' distance where the pictures align (NaN: not compared in colour)
    local_color: float = math.nan

    @property
    def local(self) -> bool:
        """Whether the pair's cells were compared through a fitted transform (a plain pair
        judged on its layouts alone has ``layout`` instead)."""
        return not math.isnan(self.local_score)

    @property
    def kind(self) -> str:
        """The structural kind that agrees best (smallest distance), for one-line answers."""
        d = dict(self.distances)
        return min(STRUCTURAL, key=lambda k: (d[k], STRUCTURAL.index(k)))

    @property
    def distance(self) -> int:
        return dict(self.distances)[self.kind]


def self_join(
    values: np.ndarray,
    multi: MultiIndex,
    radius: int,
    *,
    mirrored: bool = False,
    only: np.ndarray | None = None,
    block_candidates: int = 4_000_000,
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
                    idx = np.repeat(lo[start:stop] - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
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
    ids: np.ndarray,
    kind: str,
    values: np.ndarray,
    multi: MultiIndex,
    threshold: int,
    *,
    mirror: bool = True,
    only: np.ndarray | None = None,
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


def update_pairs(
    previous: Iterable[Pair],
    kind: str,
    ids: np.ndarray,
    values: np.ndarray,
    multi: MultiIndex,
    threshold: int,
    old: Mapping[str, int],
    *,
    mirror: bool = True,
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


# Colour: a cell with a chromaticity this far from gray (1/512 steps, |r| + |g|) has colour;
# a picture none of whose cells has any is colourless (grayscale, or nearly).
COLOR_PRESENT = 8
# How many times weaker one picture's colour in a cell may be than the other's before the
# difference counts in full (``color_distance``; 1: never). Chosen with verify.MAX_DILUTED_COLOR
# by bench/bench_quality.py (``tune_dilution``).
COLOR_DILUTION = 4.0


def colorless(cells: np.ndarray) -> np.ndarray:
    """(n, cells * 2) int8 colour layouts -> (n,) whether each picture has no colour."""
    c = np.asarray(cells, dtype=np.int16).reshape(len(cells), -1, 2)
    return np.asarray(np.abs(c).sum(axis=2).max(axis=1, initial=0) < COLOR_PRESENT, bool)


def mirror_cells(cells: np.ndarray, grid: int) -> np.ndarray:
    """Colour layouts of the mirrored pictures: the grid's columns reversed."""
    c = np.asarray(cells).reshape(len(cells), grid, grid, 2)
    return c[:, :, ::-1, :].reshape(len(cells), -1)


def diluted_distance(a: np.ndarray, b: np.ndarray, dilution: float) -> np.ndarray:
    """The mean over cells of |dr| + |dg| (1/512 steps) once each cell's stronger colour is
    scaled towards the weaker one's by a factor between 1 and ``dilution`` (1: the plain
    difference).

    A cell's colour is its mean chromaticity minus gray: neutral pixels (white paper, black
    ink) add nothing to it but their weight, so more paper in a cell scales its colour down
    without turning it. The scaling forgives that, up to ``dilution``; another hue (a red
    and a blue variant of one design) is never forgiven."""
    if len(a) == 0:
        return np.zeros(0)
    x = np.asarray(a, np.float64).reshape(len(a), -1, 2)
    y = np.asarray(b, np.float64).reshape(len(b), -1, 2)
    if x.shape[1] == 0:
        return np.zeros(len(a))
    x_stronger = (x * x).sum(axis=2, keepdims=True) >= (y * y).sum(axis=2, keepdims=True)
    strong, weak = np.where(x_stronger, x, y), np.where(x_stronger, y, x)
    power = np.maximum((strong * strong).sum(axis=2, keepdims=True), 1e-12)
    # the scale bringing the stronger colour nearest the weaker (least squares), in range
    scale = np.clip((strong * weak).sum(axis=2, keepdims=True) / power, 1 / dilution, 1.0)
    return np.asarray(np.abs(scale * strong - weak).sum(axis=2).mean(axis=1), np.float64)


def color_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far apart colour layouts are, in the units of ``verify.MAX_COLOR``: the plain
    difference (the mean over cells of |dr| + |dg|, 1/512 steps), or, when smaller, the
    difference once each cell's stronger colour is scaled down by up to
    ``COLOR_DILUTION`` (``diluted_distance``), counted ``MAX_COLOR /
    MAX_DILUTED_COLOR`` times: colours that differ only by the share of neutral paper in
    each cell (a drawing on white cropped, framed or rotated) agree when they are that close,
    a colour variant of one design does not."""
    plain = diluted_distance(a, b, 1.0)
    if COLOR_DILUTION == 1:
        return plain
    diluted = diluted_distance(a, b, COLOR_DILUTION) * (MAX_COLOR / MAX_DILUTED_COLOR)
    return np.asarray(np.minimum(plain, diluted), np.float64)


@dataclass(frozen=True)
class PairEvidence:
    """Evidence for n pairs (rows ``ia[k]``, ``ib[k]`` of a hash table), as arrays."""

    ia: np.ndarray
    ib: np.ndarray
    distances: np.ndarray  # (len(kinds), n) in the chosen orientation
    kinds: tuple[str, ...]
    mirrored: np.ndarray  # (n,) bool
    information: np.ndarray  # (n,) float
    color: np.ndarray  # (n,) int, -1 when either picture is colourless

    def structural(self) -> np.ndarray:
        return self.distances[[self.kinds.index(k) for k in STRUCTURAL]]


def pair_evidence(
    values: np.ndarray,
    kinds: tuple[str, ...],
    info: np.ndarray,
    color: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    *,
    grid: int = 3,
) -> PairEvidence:
    """Distances of every kind between rows ``ia`` and ``ib`` of a table, directly and with
    ``ia`` mirrored; each pair keeps the orientation whose structural distances sum lower."""
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    n = len(ia)
    direct = np.zeros((len(kinds), n), np.int16)
    flipped = np.zeros((len(kinds), n), np.int16)
    for k, kind in enumerate(kinds):
        va = np.asarray(values[ia, k], dtype=np.uint64)
        vb = np.asarray(values[ib, k], dtype=np.uint64)
        direct[k] = np.bitwise_count(va ^ vb)
        flipped[k] = np.bitwise_count(mirror_values(kind, va) ^ vb)
    rows = [kinds.index(k) for k in STRUCTURAL]
    mirrored = flipped[rows].sum(axis=0) < direct[rows].sum(axis=0)
    ca, cb = np.asarray(color[ia]), np.asarray(color[ib])
    cdist = np.where(mirrored, color_distance(mirror_cells(ca, grid), cb), color_distance(ca, cb))
    none = colorless(ca) | colorless(cb)
    return PairEvidence(
        ia,
        ib,
        np.where(mirrored, flipped, direct),
        tuple(kinds),
        mirrored,
        np.fmin(np.asarray(info[ia], np.float64), np.asarray(info[ib], np.float64)),
        np.where(none, -1, np.round(cdist)).astype(np.int64),
    )


# Gives the embedding cosines of table rows ia[k], ib[k] (NaN where either has no vector).
Cosines = Callable[[np.ndarray, np.ndarray], np.ndarray | None]
COSINE_BLOCK = 20_000  # pairs whose two vectors are gathered at once


def pair_cosines(
    vectors: np.ndarray | None, ia: np.ndarray, ib: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray | None:
    """Embedding cosines of table rows ``ia`` and ``ib``, or None without vectors.
    ``vectors``: unit vectors (a memory map will do), row ``i`` for table row ``i``, or, with
    ``rows``, row ``rows[i]`` (-1: none); a row of NaN (no vector) gives NaN."""
    if vectors is None:
        return None
    ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
    ra, rb = (ia, ib) if rows is None else (rows[ia], rows[ib])
    out = np.full(len(ia), np.nan)
    known = np.flatnonzero((ra >= 0) & (rb >= 0))
    for start in range(0, len(known), COSINE_BLOCK):
        k = known[start : start + COSINE_BLOCK]
        out[k] = np.einsum(
            "ij,ij->i",
            np.asarray(vectors[ra[k]], np.float32),
            np.asarray(vectors[rb[k]], np.float32),
            dtype=np.float64,
        )
    return out


def verify_pairs(
    ids: np.ndarray,
    values: np.ndarray,
    kinds: tuple[str, ...],
    info: np.ndarray,
    color: np.ndarray,
    candidates: Iterable[Pair],
    config: VerifyConfig | None = None,
    cosines: Cosines | None = None,
    local: LocalPairs | None = None,
) -> list[Duplicate]:
    """The candidates that verification accepts, with their evidence. ``ids`` sorted; row
    ``i`` of ``values``/``info``/``color`` is image ``ids[i]``; ``cosines`` gives the
    embedding cosines of rows (None: no embeddings); ``local`` the local evidence of pairs
    of ids (None: none), asked only for the pairs perfect local evidence would claim (the
    ones it could veto or claim), in order of their first id."""
    keys = sorted({(p.a, p.b) for p in candidates})
    if not keys:
        return []
    a = np.searchsorted(ids, np.array([k[0] for k in keys]))
    b = np.searchsorted(ids, np.array([k[1] for k in keys]))
    ev = pair_evidence(values, kinds, info, color, a, b)
    cosine = None if cosines is None else cosines(a, b)
    judge = partial(decide, ev.structural(), ev.information, ev.color, cosine, config)
    evidence = Local.unknown(len(keys))
    if local is not None:
        ask = np.flatnonzero(judge(Local.perfect(len(keys)))[0])
        found = local([keys[k][0] for k in ask], [keys[k][1] for k in ask])
        evidence.put(ask, found)
    match, weighted = judge(evidence)  # unknown evidence changes no verdict
    return [
        Duplicate(
            keys[k][0],
            keys[k][1],
            round(float(weighted[k]), 2),
            bool(ev.mirrored[k]),
            tuple((kind, int(ev.distances[j, k])) for j, kind in enumerate(kinds)),
            float(ev.information[k]),
            int(ev.color[k]),
            math.nan if cosine is None else round(float(cosine[k]), 4),
            -1 if math.isnan(evidence.inliers[k]) else int(evidence.inliers[k]),
            round(float(evidence.score[k]), 4),
            round(float(evidence.layout[k]), 2),
            round(float(evidence.color[k]), 2),
        )
        for k in np.flatnonzero(match).tolist()
    ]


EMBEDDING = "embedding"  # the kind of a candidate found by its embedding, not a hash


def embedding_pairs(
    ids: np.ndarray, vectors: np.ndarray, k: int, min_cosine: float, *, block: int = 1024
) -> list[Pair]:
    """Candidates by embedding: each picture with its ``k`` nearest others whose cosine is at
    least ``min_cosine`` (exact, in blocks of rows). Rows of NaN (no vector) find nothing.
    A pair's ``distance`` is its cosine distance in thousandths."""
    n = len(ids)
    if n < 2 or k < 1:
        return []
    usable = np.isfinite(vectors).all(axis=1)
    v = np.where(usable[:, None], vectors, 0).astype(np.float32)
    k = min(k, n - 1)
    best: dict[tuple[str, str], Pair] = {}
    for start in range(0, n, block):
        sims = v[start : start + block] @ v.T
        rows = np.arange(start, min(n, start + block))
        sims[rows - start, rows] = -np.inf
        sims[:, ~usable] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        cos = np.take_along_axis(sims, top, axis=1)
        keep = (cos >= min_cosine) & usable[rows][:, None]
        for pair in embedding_candidates(
            ids[np.repeat(rows, k)][keep.ravel()], ids[top.ravel()][keep.ravel()], cos[keep]
        ):
            best[(pair.a, pair.b)] = pair
    return sorted(best.values())


def embedding_candidates(a: np.ndarray, b: np.ndarray, cosine: np.ndarray) -> list[Pair]:
    """Candidate pairs found by embedding (the images ``a[k]``, ``b[k]`` with that cosine);
    a pair's ``distance`` is its cosine distance in thousandths."""
    out = []
    for x, y, c in zip(
        np.asarray(a).tolist(), np.asarray(b).tolist(), np.asarray(cosine).tolist(), strict=True
    ):
        if x != y:
            x, y = (x, y) if x < y else (y, x)
            out.append(Pair(str(x), str(y), EMBEDDING, round(1000 * (1 - c))))
    return out


def group_duplicates(pairs: Iterable[Duplicate]) -> dict[str, tuple[str, int]]:
    """image id -> (group id, group size) for every image in a group of two or more, by
    complete linkage: pairs are taken strongest first (lowest weighted distance), and two
    groups merge only when every cross pair is verified. The group id is its smallest id."""
    ordered = sorted(pairs, key=lambda p: (p.weighted, p.a, p.b))
    verified = {(p.a, p.b) for p in ordered}
    group_of: dict[str, int] = {}
    members: dict[int, list[str]] = {}

    def group(image: str) -> int:
        if image not in group_of:
            group_of[image] = len(group_of)  # never reused: it only grows
            members[group_of[image]] = [image]
        return group_of[image]

    for p in ordered:
        ga, gb = group(p.a), group(p.b)
        if ga == gb:
            continue
        left, right = members[ga], members[gb]
        if all((min(x, y), max(x, y)) in verified for x in left for y in right):
            keep, gone = (ga, gb) if len(left) >= len(right) else (gb, ga)
            for image in members[gone]:
                group_of[image] = keep
            members[keep].extend(members.pop(gone))
    out: dict[str, tuple[str, int]] = {}
    for group_members in members.values():
        if len(group_members) > 1:
            first = min(group_members)
            for image in group_members:
                out[image] = (first, len(group_members))
    return out


def near_duplicates(
    table: HashTable,
    radii: Mapping[str, int],
    config: VerifyConfig | None = None,
    vectors: np.ndarray | None = None,
    knn: int = 0,
    local: LocalPairs | None = None,
) -> tuple[list[Pair], list[Duplicate], dict[str, tuple[str, int]]]:
    """The whole pipeline on an in-memory table (what the indexer does on a generation):
    candidates, verified pairs, groups. ``vectors``: unit embeddings, rows in the table's
    order (NaN rows: none); ``knn``: also take each picture's ``knn`` nearest by embedding
    as candidates (those at least ``config.min_cosine`` alike); ``local``: the pictures'
    local evidence (localpairs.py)."""
    config = config or VerifyConfig()
    order = np.argsort(table.ids, kind="stable")
    ids = table.ids[order]
    values = table.values[order]
    vectors = None if vectors is None else np.asarray(vectors, np.float32)[order]
    candidates: list[Pair] = []
    for kind, radius in radii.items():
        if kind not in table.kinds:
            continue
        k = table.kinds.index(kind)
        rows = np.flatnonzero(table.present[order, k])
        column = np.ascontiguousarray(values[rows, k])
        multi = MultiIndex.build(column, bits=HASH_BITS[kind], chunks=CHUNKS)
        candidates.extend(find_pairs(ids[rows], kind, column, multi, radius))
    if vectors is not None and knn and config.min_cosine is not None:
        candidates.extend(embedding_pairs(ids, vectors, knn, config.min_cosine))
    assert table.info is not None and table.color is not None
    pairs = verify_pairs(
        ids,
        values,
        table.kinds,
        table.info[order],
        table.color[order],
        candidates,
        config,
        None if vectors is None else partial(pair_cosines, vectors),
        local,
    )
    return candidates, pairs, group_duplicates(pairs)
