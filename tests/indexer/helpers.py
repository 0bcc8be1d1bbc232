"""Shared bits of the indexer tests: hash tables made from synthetic pictures, an in-memory
HashSource (the unit tests' stand-in for the graph; the end-to-end tests use the real one)."""

from __future__ import annotations

import threading

import numpy as np

from services.indexer.synthetic import make_hashes
from services.indexer.table import HashTable


def synthetic_table(n: int, seed: int = 0, variants: float = 0.05) -> HashTable:
    s = make_hashes(n, kinds=("phash", "dhash", "ahash"), variant_fraction=variants, seed=seed)
    ids = [f"s{seed}i{i:06d}" for i in range(s.size)]
    return HashTable.from_arrays(ids, s.hashes, np.full(s.size, 1_000, np.int64))


class MemorySource:
    """Rows added with ``add`` become visible to ``hashes_since``, like hashes in the graph."""

    def __init__(self, kinds: tuple[str, ...] = ("phash", "dhash", "ahash")) -> None:
        self.kinds = kinds
        self.rows: list[dict] = []
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, image_id: str, hashed_at: int, **hashes: str) -> None:
        with self._lock:
            self.rows.append({"id": image_id, "hashed_at": hashed_at, **hashes})

    def hashes_since(self, since_ms: int) -> HashTable:
        with self._lock:
            self.calls += 1
            rows = [r for r in self.rows if r["hashed_at"] >= since_ms]
        return HashTable.from_rows(rows, self.kinds)
