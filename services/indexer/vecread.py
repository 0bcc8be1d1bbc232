"""Read side of the vector half of a generation: an image's vector, cosines, lookalikes.

A ``VectorView`` is one consistent view: the generation's raw and refined vectors plus the
vectors embedded since it was built (``recent.py``). A recent vector replaces the
generation's for the same image. Images embedded since the build have no refined vector
yet: in refined queries they take part with their raw one (``Lookalike.refined`` says
which was compared), until the next build refines them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from services.indexer import angular
from services.indexer.audit import Audit
from services.indexer.npmap import load_mapped
from services.indexer.recent import Recent
from services.indexer.refine import to_refined_space
from services.indexer.vectorgen import META_KEY

log = logging.getLogger(__name__)


class NoVector(LookupError):
    """An image without a vector (unknown, not embedded yet, or its embedding failed)."""


@dataclass(frozen=True)
class Lookalike:
    id: str
    score: float  # cosine
    refined: bool  # both vectors compared were refined ones


@dataclass
class GenVectors:
    """The vectors of one published generation (memory-mapped)."""

    path: Path
    model: str
    ids: np.ndarray  # sorted
    at: np.ndarray
    raw: np.ndarray
    refined: np.ndarray
    raw_index: AnnoyIndex | None
    refined_index: AnnoyIndex | None
    info: dict[str, Any]
    mean: np.ndarray  # the refinement's centre: vectors embedded since go there first
    _audit: Audit | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> GenVectors | None:
        info = meta.get(META_KEY)
        if not info:
            return None
        dim = int(info["dim"])
        raw_index = refined_index = None
        if info.get("annoy"):
            raw_index = angular.load_annoy(path / "vectors.ann", dim)
            refined_index = angular.load_annoy(path / "refined.ann", dim)
        mean_file = path / "refined.mean.npy"
        mean = np.load(mean_file) if mean_file.exists() else np.zeros(dim, np.float32)
        return cls(
            path,
            str(info["model"]),
            load_mapped(path / "vectors.ids.npy"),
            load_mapped(path / "vectors.at.npy"),
            load_mapped(path / "vectors.npy"),
            load_mapped(path / "refined.npy"),
            raw_index,
            refined_index,
            dict(info),
            mean,
        )

    def row_of(self, image_id: str) -> int | None:
        i = int(np.searchsorted(self.ids, image_id))
        return i if i < len(self.ids) and self.ids[i] == image_id else None

    def audit(self) -> Audit | None:
        if self._audit is None:
            self._audit = Audit.load(self.path)
        return self._audit


class VectorView:
    """Queries over one generation's vectors and the recent ones of the same model."""

    def __init__(
        self, gen: GenVectors | None, recent: Recent, model: str | None, search_k: int = -1
    ) -> None:
        self.gen = gen if gen is not None and gen.model == model else None
        self.recent = recent
        self.model = model
        self.search_k = search_k
        # Recent vectors newer than the generation's (or of images it lacks) replace them;
        # the others are already in it.
        newer = np.ones(len(recent), bool)
        if self.gen is not None and len(self.gen.ids) and len(recent):
            rows = np.minimum(np.searchsorted(self.gen.ids, recent.ids), len(self.gen.ids) - 1)
            held = self.gen.ids[rows] == recent.ids
            newer = ~held | (recent.at > self.gen.at[rows])
        self._recent_rows = np.flatnonzero(newer)
        self._replaced: set[str] = set(recent.ids[self._recent_rows].tolist())
        self._recent_refined: np.ndarray | None = None

    def refined_space(self, vectors: np.ndarray) -> np.ndarray:
        """Raw vectors as the refined ones are compared: centred like the generation's."""
        if self.gen is None:
            return np.atleast_2d(vectors)
        return to_refined_space(vectors, self.gen.mean)

    def _recent_matrix(self, refined: bool) -> np.ndarray:
        raw = self.recent.matrix[self._recent_rows]
        if not refined:
            return raw
        if self._recent_refined is None:
            self._recent_refined = self.refined_space(raw) if len(raw) else raw
        return self._recent_refined

    @property
    def count(self) -> int:
        return (len(self.gen.ids) if self.gen is not None else 0) + len(self._recent_rows)

    def vector(self, image_id: str, refined: bool = False) -> tuple[np.ndarray, bool]:
        """The image's vector and whether it is a refined one."""
        if image_id in self._replaced:
            row = self.recent.row_of(image_id)
            if row is not None:
                vector = np.asarray(self.recent.matrix[row])
                return (self.refined_space(vector)[0] if refined else vector), False
        if self.gen is not None:
            row = self.gen.row_of(image_id)
            if row is not None:
                matrix = self.gen.refined if refined else self.gen.raw
                return np.asarray(matrix[row]), refined
        raise NoVector(
            f"image {image_id!r} has no vector (unknown id, not embedded yet, embeddings "
            "off, or its embedding failed)"
        )

    def cosine(self, a: str, b: str, refined: bool = False) -> float:
        va, _ = self.vector(a, refined)
        vb, _ = self.vector(b, refined)
        return float(np.dot(va, vb))

    def nearest(
        self,
        query: np.ndarray,
        k: int,
        refined: bool = False,
        exclude: str | None = None,
        query_refined: bool = False,
    ) -> list[Lookalike]:
        """The k stored images whose vectors have the highest cosine with ``query`` (itself
        a refined vector or not: ``query_refined``)."""
        q = np.asarray(query, dtype=np.float32)
        found: list[Lookalike] = []
        if self.gen is not None and len(self.gen.ids):
            found.extend(self._from_gen(q, k, refined, exclude, refined and query_refined))
        if len(self._recent_rows):
            scores = self._recent_matrix(refined) @ q
            ids = self.recent.ids[self._recent_rows]
            found.extend(
                Lookalike(str(i), float(s), False)
                for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
                if i != exclude
            )
        found.sort(key=lambda m: (-m.score, m.id))
        return found[:k]

    def _from_gen(
        self, q: np.ndarray, k: int, refined: bool, exclude: str | None, both_refined: bool
    ) -> list[Lookalike]:
        gen = self.gen
        assert gen is not None
        matrix = gen.refined if refined else gen.raw
        index = gen.refined_index if refined else gen.raw_index
        skip = gen.row_of(exclude) if exclude is not None else None
        want = k + min(len(self._replaced), 64)
        while True:
            if index is None:
                rows, scores = angular.exact_top_k(matrix, q, want, exclude=skip)
            else:
                rows, scores = angular.annoy_top_k(
                    index, matrix, q, want, self.search_k, exclude=skip
                )
            out = [
                Lookalike(str(gen.ids[r]), float(s), both_refined)
                for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
                if str(gen.ids[r]) not in self._replaced
            ]
            if len(out) >= k or len(rows) < want or want >= len(gen.ids):
                return out[:k]
            want *= 4
