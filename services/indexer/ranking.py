"""One ranking for search and duplicates: every candidate judged on all its evidence.

Answers used to come per hash kind, ties at distance 0 broken by id, so the original of an
uploaded copy came first one time in ten. Here each candidate (found by any kind) is
compared with the query on every kind at once, in the orientation (direct or mirrored) where
the structural kinds agree best, and judged by the same verifier as the indexer's pairs
(verify.py). The order: verified near-duplicates first; then the weighted hash distance;
ties broken by further evidence (every kind's distance summed, colorhash included, then the
colour layout distance), and only then by id. Each answer says why it matched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lookalike.hashing import COLOR_GRID, HASH_KINDS
from services.indexer.bits import mirror_value
from services.indexer.duplicates import color_distance, colorless, mirror_cells
from services.indexer.verify import STRUCTURAL, Evidence, VerifyConfig, verify


@dataclass(frozen=True)
class Signature:
    """What is known of one picture: its hashes (kind -> value), the hashes of its mirror
    image when computed from pixels (None: derived from the hashes), its information and
    its colour layout (int8 cells; all zero when unknown)."""

    hashes: Mapping[str, int]
    information: float = math.nan
    color: np.ndarray | None = None
    mirrored: Mapping[str, int] | None = None

    def mirror_hash(self, kind: str) -> int:
        if self.mirrored is not None and kind in self.mirrored:
            return self.mirrored[kind]
        return mirror_value(kind, self.hashes[kind])


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

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id, "match": self.match, "weighted": self.weighted,
            "mirrored": self.mirrored, "distances": self.distances,
            "information": None if math.isnan(self.information) else self.information,
            "color": self.color, "why": list(self.reasons),
        }


def compare(query: Signature, other: Signature, config: VerifyConfig | None = None
            ) -> tuple[Evidence, float]:
    """The evidence between two pictures (and their colour distance unrounded, for ties)."""
    kinds = [k for k in HASH_KINDS if k in query.hashes and k in other.hashes]
    direct = {k: (query.hashes[k] ^ other.hashes[k]).bit_count() for k in kinds}
    flipped = {k: (query.mirror_hash(k) ^ other.hashes[k]).bit_count() for k in kinds}
    structural = [k for k in STRUCTURAL if k in kinds]
    mirrored = sum(flipped[k] for k in structural) < sum(direct[k] for k in structural)
    distances = flipped if mirrored else direct
    color: float | None = None
    if query.color is not None and other.color is not None:
        qa, ob = query.color[None, :], other.color[None, :]
        if not (colorless(qa)[0] or colorless(ob)[0]):
            qa = mirror_cells(qa, COLOR_GRID) if mirrored else qa
            color = float(color_distance(qa, ob)[0])
    # a kind either picture lacks counts as far as it can be
    full = {k: distances.get(k, 64) for k in STRUCTURAL}
    evidence = Evidence(full, mirrored, float(np.fmin(query.information, other.information)),
                        None if color is None else round(color))
    return evidence, math.inf if color is None else color


def rank(query: Signature, candidates: Mapping[str, Signature], *, k: int,
         config: VerifyConfig | None = None, exclude: str | None = None) -> list[Ranked]:
    """The ``k`` best candidates for ``query``, in the one order (see the module doc)."""
    scored = []
    for image_id, other in candidates.items():
        if image_id == exclude:
            continue
        evidence, color = compare(query, other, config)
        verdict = verify(evidence, config)
        distances = {kind: int(d) for kind, d in evidence.distances.items()}
        extra = {kind: (query.hashes[kind] ^ other.hashes[kind]).bit_count()
                 for kind in HASH_KINDS if kind not in distances
                 and kind in query.hashes and kind in other.hashes}
        distances.update(extra)
        ranked = Ranked(image_id, verdict.match, verdict.weighted, evidence.mirrored,
                        distances, evidence.information,
                        None if math.isinf(color) else round(color, 2), verdict.reasons)
        key = (not verdict.match, verdict.weighted, sum(distances.values()), color, image_id)
        scored.append((key, ranked))
    scored.sort(key=lambda kv: kv[0])
    return [r for _, r in scored[:k]]
