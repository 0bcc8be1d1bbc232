"""One ranking for search and duplicates: every candidate judged on all its evidence.

Answers used to come per hash kind, ties at distance 0 broken by id, so the original of an
uploaded copy came first one time in ten. Here each candidate (found by any kind) is
compared with the query on every kind at once, in the orientation (direct or mirrored) where
the structural kinds agree best, and judged by the same verifier as the indexer's pairs
(verify.py), the embedding cosine included when the query and the candidate both have an
embedding, and the local evidence of the two pictures' views when a ``local`` source is
given (for the candidates whose verdict it could change, at most ``QUERY_MAX``, lowest
weighted distance first). The order: verified near-duplicates first; then the weighted hash
distance; ties broken by further evidence (the embedding cosine, every kind's distance summed,
colorhash included, then the colour layout distance), and only then by id. Each answer
says why it matched.

The comparison is vectorised over the candidates; only the ``k`` answers get their reasons
spelled out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from lookalike.hashing import COLOR_GRID, HASH_KINDS
from services.indexer.bits import mirror_value
from services.indexer.duplicates import color_distance, colorless, mirror_cells
from services.indexer.localpairs import QUERY_MAX
from services.indexer.table import COLOR_BYTES
from services.indexer.verify import STRUCTURAL, Evidence, Local, VerifyConfig, decide, verify

_STRUCTURAL_COLUMNS = [HASH_KINDS.index(k) for k in STRUCTURAL]
MISSING = 64  # the distance of a kind either picture lacks: as far as it can be


@dataclass(frozen=True)
class Signature:
    """What is known of one picture: its hashes (kind -> value), the hashes of its mirror
    image when computed from pixels (None: derived from the hashes), its information, its
    colour layout (int8 cells; all zero when unknown) and its embedding (a unit vector;
    None when it has none)."""

    hashes: Mapping[str, int]
    information: float = math.nan
    color: np.ndarray | None = None
    mirrored: Mapping[str, int] | None = None
    vector: np.ndarray | None = None

    def mirror_hash(self, kind: str) -> int:
        if self.mirrored is not None and kind in self.mirrored:
            return self.mirrored[kind]
        return mirror_value(kind, self.hashes[kind])


@dataclass(frozen=True)
class Candidates:
    """Stored pictures to rank, as columns (kinds in ``HASH_KINDS`` order)."""

    ids: list[str]
    values: np.ndarray  # (n, len(HASH_KINDS)) uint64
    present: np.ndarray  # (n, len(HASH_KINDS)) bool
    information: np.ndarray  # (n,) float, NaN unknown
    color: np.ndarray  # (n, COLOR_BYTES) int8
    vectors: np.ndarray | None = None  # (n, dim) unit embeddings, NaN rows unknown

    @classmethod
    def of(cls, signatures: Mapping[str, Signature]) -> Candidates:
        ids = list(signatures)
        sigs = [signatures[i] for i in ids]
        return cls(
            ids,
            np.array([[s.hashes.get(k, 0) for k in HASH_KINDS] for s in sigs], np.uint64).reshape(
                len(ids), len(HASH_KINDS)
            ),
            np.array([[k in s.hashes for k in HASH_KINDS] for s in sigs], bool).reshape(
                len(ids), len(HASH_KINDS)
            ),
            np.array([s.information for s in sigs], np.float64),
            np.array(
                [s.color if s.color is not None else np.zeros(COLOR_BYTES, np.int8) for s in sigs],
                np.int8,
            ).reshape(len(ids), COLOR_BYTES),
            stack_vectors([s.vector for s in sigs]),
        )


def stack_vectors(rows: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Vectors as one matrix, NaN rows where there is none; None when none has one (or
    they differ in width: not comparable)."""
    dims = {len(r) for r in rows if r is not None}
    if len(dims) != 1:
        return None
    out = np.full((len(rows), dims.pop()), np.nan, np.float32)
    for i, row in enumerate(rows):
        if row is not None:
            out[i] = row
    return out


@dataclass(frozen=True)
class Ranked:
    id: str
    match: bool  # a verified near-duplicate
    weighted: float  # weighted hash distance, bits (verify.py)
    mirrored: bool
    distances: dict[str, int]  # every kind both pictures have
    information: float  # the smaller of the two pictures'
    color: float | None  # colour layout distance; None when either has no colour
    reasons: tuple[str, ...]
    cosine: float | None = None  # embedding cosine; None when either has no embedding

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "match": self.match,
            "weighted": self.weighted,
            "mirrored": self.mirrored,
            "distances": self.distances,
            "information": None if math.isnan(self.information) else self.information,
            "color": self.color,
            "cosine": self.cosine,
            "why": list(self.reasons),
        }


def rank(
    query: Signature,
    candidates: Candidates | Mapping[str, Signature],
    *,
    k: int,
    config: VerifyConfig | None = None,
    exclude: str | None = None,
    local: Callable[[Sequence[str]], Local] | None = None,
) -> list[Ranked]:
    """The ``k`` best candidates for ``query``, in the one order (see the module doc).
    ``local``: the query's local evidence against stored ids (localpairs.QueryLocal)."""
    c = candidates if isinstance(candidates, Candidates) else Candidates.of(candidates)
    n = len(c.ids)
    if n == 0:
        return []
    has = np.array([kind in query.hashes for kind in HASH_KINDS])
    q = np.array([query.hashes.get(kind, 0) for kind in HASH_KINDS], np.uint64)
    qm = np.array(
        [query.mirror_hash(kind) if kind in query.hashes else 0 for kind in HASH_KINDS], np.uint64
    )
    usable = c.present & has
    direct = np.where(usable, np.bitwise_count(c.values ^ q), MISSING).astype(np.int64)
    flipped = np.where(usable, np.bitwise_count(c.values ^ qm), MISSING).astype(np.int64)
    mirrored = flipped[:, _STRUCTURAL_COLUMNS].sum(axis=1) < direct[:, _STRUCTURAL_COLUMNS].sum(
        axis=1
    )
    distances = np.where(mirrored[:, None], flipped, direct)
    qcolor = (query.color if query.color is not None else np.zeros(COLOR_BYTES, np.int8))[None, :]
    color = np.full(n, np.inf)
    if not colorless(qcolor)[0]:
        colourful = ~colorless(c.color)
        q_rows = np.where(mirrored[:, None], mirror_cells(qcolor, COLOR_GRID), qcolor)
        color[colourful] = color_distance(q_rows[colourful], c.color[colourful])
    information = np.fmin(query.information, c.information)
    cosine = np.full(n, np.nan)
    if query.vector is not None and c.vectors is not None:
        cosine = np.round(c.vectors @ np.asarray(query.vector, np.float32), 4)
    judge = partial(
        decide,
        distances[:, _STRUCTURAL_COLUMNS].T,
        information,
        np.where(np.isinf(color), -1, np.round(color)).astype(np.int64),
        cosine,
        config,
    )
    pixels = Local.unknown(n)
    if local is not None:
        could, loose = judge(Local.perfect(n))
        ask = [
            i for i in np.argsort(loose, kind="stable").tolist() if could[i] and c.ids[i] != exclude
        ]
        ask = ask[:QUERY_MAX]
        found = local([c.ids[i] for i in ask])
        pixels.put(ask, found)
    match, weighted = judge(pixels)
    weighted = np.round(weighted, 2)
    order = np.lexsort(
        (
            np.array(c.ids),
            color,
            np.where(usable, distances, 0).sum(axis=1),
            np.where(np.isnan(cosine), 2.0, -cosine),
            weighted,
            ~match,
        )
    )
    out: list[Ranked] = []
    for i in order.tolist():
        if c.ids[i] == exclude:
            continue
        d = {kind: int(distances[i, j]) for j, kind in enumerate(HASH_KINDS) if usable[i, j]}
        col = None if math.isinf(color[i]) else float(color[i])
        cos = None if math.isnan(cosine[i]) else float(cosine[i])
        evidence = Evidence(
            {
                kind: int(distances[i, j])
                for j, kind in zip(_STRUCTURAL_COLUMNS, STRUCTURAL, strict=True)
            },
            bool(mirrored[i]),
            float(information[i]),
            None if col is None else round(col),
            cos,
            None if math.isnan(pixels.inliers[i]) else int(pixels.inliers[i]),
            float(pixels.score[i]),
            float(pixels.layout[i]),
            float(pixels.color[i]),
        )
        verdict = verify(evidence, config)
        out.append(
            Ranked(
                c.ids[i],
                verdict.match,
                verdict.weighted,
                bool(mirrored[i]),
                d,
                float(information[i]),
                None if col is None else round(col, 2),
                verdict.reasons,
                cos,
            )
        )
        if len(out) == k:
            break
    return out
