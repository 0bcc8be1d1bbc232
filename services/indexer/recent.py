"""Vectors embedded since the index generation was built, for the reader: read from the Redis
stream (``lookalike.vectors``) as they arrive, so a fresh vector is searchable at once.

The stream is read forward only (``XRANGE`` after the last id seen), at most once per
``ttl`` seconds, so a burst of queries costs one round trip and a quiet stream almost
nothing. What a newer generation holds is pruned when the reader switches to it. A stream
that was flushed (its newest id is older than the last one seen) is read again from the
start.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import redis

from lookalike import vectors as stream
from lookalike.vectors import VectorEntry, stream_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recent:
    """An immutable view of the recent vectors of one model, rows sorted by id."""

    ids: np.ndarray  # (n,) str, sorted
    at: np.ndarray  # (n,) int64
    matrix: np.ndarray  # (n, dim) float32

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> Recent:
        return cls(np.zeros(0, dtype="<U1"), np.zeros(0, np.int64), np.zeros((0, 0), np.float32))

    def row_of(self, image_id: str) -> int | None:
        i = int(np.searchsorted(self.ids, image_id))
        return i if i < len(self.ids) and self.ids[i] == image_id else None


class VectorSource(Protocol):
    """Where the reader learns of vectors newer than its generation."""

    def recent(self, model: str | None) -> tuple[Recent, str | None]:
        """The recent vectors of ``model`` (None: of the newest model seen), and that model."""
        ...

    def prune(self, ids: np.ndarray, at: np.ndarray) -> None:
        """Forget vectors a generation holds (same id, not newer)."""
        ...


class StreamVectors:
    """``VectorSource`` over the Redis stream; thread-safe."""

    def __init__(self, client: redis.Redis, ttl: float = 1.0, page: int = 2000) -> None:
        self.client = client
        self.ttl = ttl
        self.page = page
        self._entries: dict[str, VectorEntry] = {}
        self._last = "0-0"
        self._read_at = -1e9
        self._views: dict[str | None, tuple[Recent, str | None]] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        newest = stream.last_id(self.client)
        if newest is None or stream_key(newest) < stream_key(self._last):
            if self._entries or self._last != "0-0":
                log.info("the vector stream was flushed or made anew: reading it again")
            self._entries.clear()
            self._last = "0-0"
            self._views.clear()
        if newest is None:
            return
        while True:
            good, last, bad = stream.read_after(self.client, self._last, self.page)
            if last == self._last:
                return
            self._last = last
            for entry in good:
                old = self._entries.get(entry.image_id)
                if old is None or entry.embedded_at >= old.embedded_at:
                    self._entries[entry.image_id] = entry
            self._views.clear()
            if len(good) + bad < self.page:
                return

    def recent(self, model: str | None) -> tuple[Recent, str | None]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl:
                try:
                    self._refresh()
                except redis.RedisError as exc:
                    log.warning(
                        "cannot read recent vectors from Redis (%s); answering from "
                        "the index generation alone",
                        exc,
                    )
                self._read_at = time.monotonic()
            if model not in self._views:
                self._views[model] = self._view(model)
            return self._views[model]

    def _view(self, model: str | None) -> tuple[Recent, str | None]:
        entries = list(self._entries.values())
        if model is None and entries:
            model = max(entries, key=lambda e: (e.embedded_at, e.stream_id)).model
        chosen = sorted((e for e in entries if e.model == model), key=lambda e: e.image_id)
        if not chosen:
            return Recent.empty(), model
        dims = {len(e.vector) for e in chosen}
        if len(dims) > 1:  # one model, one width: keep the newest width
            width = len(max(chosen, key=lambda e: e.embedded_at).vector)
            chosen = [e for e in chosen if len(e.vector) == width]
        return Recent(
            np.asarray([e.image_id for e in chosen], dtype=str),
            np.asarray([e.embedded_at for e in chosen], dtype=np.int64),
            np.stack([e.vector for e in chosen]).astype(np.float32, copy=False),
        ), model

    def prune(self, ids: np.ndarray, at: np.ndarray) -> None:
        with self._lock:
            held = dict(zip(ids.tolist(), at.tolist(), strict=True)) if len(ids) else {}
            before = len(self._entries)
            self._entries = {
                i: e for i, e in self._entries.items() if e.embedded_at > held.get(i, -1)
            }
            if len(self._entries) != before:
                self._views.clear()
