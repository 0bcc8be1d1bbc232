"""The vectors an index generation holds, and how a build decides which ones those are.

A build knows three things: the vectors of the previous generation, the vectors waiting in
the Redis stream (``lookalike.vectors``), and what the graph says each image is embedded
by (``embed_model``, ``embedded_at``). The graph has the last word: a vector is kept only
when the graph names its model (the current one) and its time; a vector the graph does not
name yet stays in the stream for the next build (its graph write may still be committing);
an image the graph calls embedded whose vector is nowhere is *missing*, and is embedded
again. Pure functions: the I/O is in graph_io.py and service.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.vectors import VectorEntry

# A stream vector the graph does not mention is left in the stream this long (its graph
# write may still be committing, or retried); older ones are dropped.
UNCONFIRMED_KEEP_MS = 10 * 60 * 1000


def lookup(sorted_ids: np.ndarray, wanted: Any) -> np.ndarray:
    """The row of each wanted id in ``sorted_ids``, -1 where absent."""
    wanted = np.asarray(wanted, dtype=str)
    if not len(sorted_ids) or not len(wanted):
        return np.full(len(wanted), -1, np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == wanted, pos, -1).astype(np.int64)


@dataclass
class VectorTable:
    """Unit vectors of one model, rows sorted by image id."""

    ids: np.ndarray  # (n,) str, sorted
    vectors: np.ndarray  # (n, dim) float32
    embedded_at: np.ndarray  # (n,) int64 epoch ms
    model: str

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    @classmethod
    def empty(cls, model: str, dim: int = 0) -> VectorTable:
        return cls(
            np.zeros(0, dtype="<U1"), np.zeros((0, dim), np.float32), np.zeros(0, np.int64), model
        )

    @classmethod
    def from_rows(cls, model: str, rows: Iterable[tuple[str, int, np.ndarray]]) -> VectorTable:
        """From ``(id, embedded_at, vector)``; the newest row of an id wins."""
        best: dict[str, tuple[int, np.ndarray]] = {}
        for image_id, at, vector in rows:
            old = best.get(image_id)
            if old is None or at >= old[0]:
                best[image_id] = (int(at), vector)
        ids = sorted(best)
        if not ids:
            return cls.empty(model)
        return cls(
            np.asarray(ids, dtype=str),
            np.stack([best[i][1] for i in ids]).astype(np.float32, copy=False),
            np.asarray([best[i][0] for i in ids], dtype=np.int64),
            model,
        )

    def row_of(self, image_id: str) -> int | None:
        i = int(np.searchsorted(self.ids, image_id))
        return i if i < len(self.ids) and self.ids[i] == image_id else None

    def rows(self) -> Iterable[tuple[str, int, np.ndarray]]:
        for k in range(len(self.ids)):
            yield str(self.ids[k]), int(self.embedded_at[k]), self.vectors[k]


@dataclass(frozen=True)
class GraphEmbedding:
    """What the graph says of one image's embedding."""

    model: str | None
    embedded_at: int
    thumbnail: str | None  # the thumbnail it was (or would be) embedded from
    failed: bool = False  # the last try failed (recorded): not asked for again


@dataclass
class Merge:
    """The outcome of ``merge``: what the new generation holds and what to do about the
    rest."""

    table: VectorTable
    consumed: list[str] = field(default_factory=list)  # stream ids to delete
    missing: list[str] = field(default_factory=list)  # embedded by the model, vector lost
    unembedded: list[str] = field(default_factory=list)  # not embedded by the current model
    dropped: int = 0  # vectors of other models or superseded thumbnails
    dim_rejected: int = 0  # vectors whose width is not the model's
    thumbnails: dict[str, str] = field(default_factory=dict)  # of missing/unembedded images


def graph_embeddings(rows: Iterable[Mapping[str, Any]]) -> dict[str, GraphEmbedding]:
    """Index rows (``index_hashes_page``) as image id -> GraphEmbedding."""
    out: dict[str, GraphEmbedding] = {}
    for row in rows:
        image_id = row.get("id")
        if not isinstance(image_id, str):
            continue
        at = row.get("embedded_at")
        out[image_id] = GraphEmbedding(
            row.get("embed_model") if isinstance(row.get("embed_model"), str) else None,
            int(at) if isinstance(at, int | float) else 0,
            row.get("hashed_thumbnail") if isinstance(row.get("hashed_thumbnail"), str) else None,
            bool(row.get("embed_error")),
        )
    return out


def merge(
    model: str,
    graph: Mapping[str, GraphEmbedding],
    previous: VectorTable | None,
    stream: Sequence[VectorEntry],
    now_ms: int,
    unconfirmed_keep_ms: int = UNCONFIRMED_KEEP_MS,
) -> Merge:
    """The vectors of the next generation: for every image the graph calls embedded by
    ``model`` at time t, the vector of that model and time, from the stream or the previous
    generation. See the module's docstring for the rest."""
    have: dict[str, tuple[int, np.ndarray]] = {}
    dropped = 0
    dim: int | None = None

    def offer(image_id: str, at: int, vector: np.ndarray) -> None:
        nonlocal dropped
        g = graph.get(image_id)
        if g is None or g.model != model or g.embedded_at != at:
            dropped += 1
            return
        have[image_id] = (at, vector)

    if previous is not None and previous.model == model:
        for image_id, at, vector in previous.rows():
            offer(image_id, at, vector)
            dim = dim or len(vector)
    elif previous is not None:
        dropped += len(previous)
    consumed: list[str] = []
    dim_rejected = 0
    for entry in stream:
        g = graph.get(entry.image_id)
        confirmed_at = g.embedded_at if g is not None and g.model is not None else 0
        if entry.embedded_at > confirmed_at and now_ms - entry.embedded_at < unconfirmed_keep_ms:
            continue  # the graph does not know it yet: keep it for the next build
        consumed.append(entry.stream_id)
        if entry.model != model:
            dropped += 1
            continue
        if dim is None:
            dim = len(entry.vector)
        if len(entry.vector) != dim:
            dim_rejected += 1
            continue
        offer(entry.image_id, entry.embedded_at, entry.vector)
    missing, unembedded = [], []
    for image_id, g in graph.items():
        if g.model == model:
            if image_id not in have:
                missing.append(image_id)
        elif not g.failed and g.thumbnail:
            unembedded.append(image_id)
    table = VectorTable.from_rows(model, ((i, at, v) for i, (at, v) in have.items()))
    if not len(table) and dim:
        table = VectorTable.empty(model, dim)
    thumbnails = {i: graph[i].thumbnail or "" for i in missing + unembedded}
    return Merge(
        table, consumed, sorted(missing), sorted(unembedded), dropped, dim_rejected, thumbnails
    )
