"""A column table of image hashes (ids x kinds) parsed and checked from graph rows.

Both the builder (all hashed images) and the reader (images hashed since the index was
built) turn rows like ``{"id": ..., "phash": "c3a1...", ..., "hashed_at": ms}`` into this
table. Bad rows are not fatal: a hash that is not hex of the kind's width, or one computed
with other hashing parameters, is left out of that kind and reported in ``rejected``, so one
corrupt node never stops the index from being rebuilt and is never compared silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.hashing import COLOR_GRID, HASH_KINDS
from services.indexer.bits import BadHash, parse_hex

COLOR_BYTES = COLOR_GRID * COLOR_GRID * 2


def parse_color(value: object) -> np.ndarray:
    """A stored colour layout (hex) as int8 cells; zeros when missing or malformed."""
    if isinstance(value, str) and len(value) == 2 * COLOR_BYTES:
        try:
            return np.frombuffer(bytes.fromhex(value), dtype=np.int8)
        except ValueError:
            pass
    return np.zeros(COLOR_BYTES, np.int8)


@dataclass
class HashTable:
    ids: np.ndarray  # (n,) str
    kinds: tuple[str, ...]
    values: np.ndarray  # (n, len(kinds)) uint64
    present: np.ndarray  # (n, len(kinds)) bool
    hashed_at: np.ndarray  # (n,) int64 epoch ms (0 when unknown)
    rejected: list[str] = field(default_factory=list)
    source_rows: int = 0  # rows read, rejected ones included
    # (n,) float32: each picture's information (lookalike.hashing.information); NaN when
    # unknown, which the verifier treats as enough (hashes made before it was measured)
    info: np.ndarray | None = None
    # (n, COLOR_BYTES) int8: each picture's colour layout (lookalike.hashing.color_layout);
    # all zero when unknown, which reads as "no colour" (never held against a pair)
    color: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.info is None:
            self.info = np.full(len(self.ids), np.nan, np.float32)
        if self.color is None:
            self.color = np.zeros((len(self.ids), COLOR_BYTES), np.int8)

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, uint64 values) of the images that have a ``kind`` hash."""
        k = self.kinds.index(kind)
        rows = np.flatnonzero(self.present[:, k])
        return rows, self.values[rows, k]

    @property
    def hashed_at_max(self) -> int:
        return int(self.hashed_at.max()) if len(self.hashed_at) else 0

    @classmethod
    def empty(cls, kinds: tuple[str, ...] = HASH_KINDS) -> HashTable:
        return cls(
            np.zeros(0, dtype="<U1"),
            kinds,
            np.zeros((0, len(kinds)), np.uint64),
            np.zeros((0, len(kinds)), bool),
            np.zeros(0, np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        ids: Iterable[str],
        values: Mapping[str, np.ndarray],
        hashed_at: np.ndarray | None = None,
        info: np.ndarray | None = None,
        color: Iterable[str] | None = None,
    ) -> HashTable:
        """From uint64 columns (every image has every kind given), e.g. synthetic hashes."""
        id_array = np.asarray(list(ids), dtype=str)
        kinds = tuple(values)
        cols = [np.asarray(values[k], dtype=np.uint64) for k in kinds]
        for kind, col in zip(kinds, cols, strict=True):
            if len(col) != len(id_array):
                raise ValueError(f"{len(col)} {kind} hashes for {len(id_array)} ids")
        if len(set(id_array.tolist())) != len(id_array):
            raise ValueError("image ids must be unique")
        matrix = np.stack(cols, axis=1) if cols else np.zeros((len(id_array), 0), np.uint64)
        stamps = (
            np.zeros(len(id_array), np.int64)
            if hashed_at is None
            else np.asarray(hashed_at, np.int64)
        )
        if info is not None and len(info) != len(id_array):
            raise ValueError(f"{len(info)} information values for {len(id_array)} ids")
        return cls(
            id_array,
            kinds,
            matrix,
            np.ones(matrix.shape, bool),
            stamps,
            [],
            len(id_array),
            None if info is None else np.asarray(info, np.float32),
            None if color is None else _colors([parse_color(c) for c in color]),
        )

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        kinds: tuple[str, ...] = HASH_KINDS,
        hash_version: str | None = None,
        max_rejected: int = 100,
    ) -> HashTable:
        """Parse graph rows. Rows with another ``hash_version`` (when one is given and the row
        has one) are rejected whole; a bad hash is rejected for its kind only. Later rows
        for the same id replace earlier ones."""
        by_id: dict[str, int] = {}
        ids: list[str] = []
        vals: list[list[int]] = []
        pres: list[list[bool]] = []
        stamps: list[int] = []
        infos: list[float] = []
        colors: list[np.ndarray] = []
        rejected: list[str] = []
        n_rejected = 0
        n_rows = 0

        def reject(message: str) -> None:
            nonlocal n_rejected
            n_rejected += 1
            if len(rejected) < max_rejected:
                rejected.append(message)

        for row in rows:
            n_rows += 1
            image_id = row.get("id")
            if not isinstance(image_id, str) or not image_id:
                reject(f"row without an image id: {dict(row)!r}"[:200])
                continue
            version = row.get("hash_version")
            if hash_version and version and version != hash_version:
                reject(f"{image_id}: hashed with {version!r}, not the current {hash_version!r}")
                continue
            v: list[int] = []
            p: list[bool] = []
            for kind in kinds:
                raw = row.get(kind)
                if raw is None:
                    v.append(0)
                    p.append(False)
                    continue
                try:
                    v.append(parse_hex(kind, raw))
                    p.append(True)
                except BadHash as exc:
                    reject(f"{image_id}: {exc}")
                    v.append(0)
                    p.append(False)
            stamp = row.get("hashed_at")
            stamp = int(stamp) if isinstance(stamp, int | float) else 0
            info = row.get("hash_info")
            info = float(info) if isinstance(info, int | float) else float("nan")
            color = parse_color(row.get("hash_color"))
            if image_id in by_id:
                i = by_id[image_id]
                vals[i], pres[i], stamps[i], infos[i], colors[i] = v, p, stamp, info, color
            else:
                by_id[image_id] = len(ids)
                ids.append(image_id)
                vals.append(v)
                pres.append(p)
                stamps.append(stamp)
                infos.append(info)
                colors.append(color)
        if n_rejected > len(rejected):
            rejected.append(f"... and {n_rejected - len(rejected)} more")
        n = len(ids)
        return cls(
            np.asarray(ids, dtype=str) if n else np.zeros(0, dtype="<U1"),
            kinds,
            np.asarray(vals, dtype=np.uint64).reshape(n, len(kinds)),
            np.asarray(pres, dtype=bool).reshape(n, len(kinds)),
            np.asarray(stamps, dtype=np.int64),
            rejected,
            n_rows,
            np.asarray(infos, dtype=np.float32),
            _colors(colors),
        )


def _colors(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros((0, COLOR_BYTES), np.int8)
