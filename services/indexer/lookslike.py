"""``LOOKS_LIKE`` relationships: each image's top-k lookalikes by raw and by refined
embedding, and what changed since the last build (so a build rewrites only that).

Each generation keeps its table in ``looks_like.npz``; the next build compares its own with
it and writes only the pairs that are new or whose score moved by more than ``SCORE_STEP``,
and deletes the pairs that are gone. Without a comparable previous table (first build,
another model, another k) it writes everything and prunes what that run did not write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "looks_like.npz"
# A pair's stored score is rewritten only when it moved by more than this: refinement shifts
# every score a little at each build, and rewriting them all would cost a full write.
SCORE_STEP = 0.005


@dataclass
class LooksLike:
    """Pairs ``a -> b`` (b among a's top-k), their cosine, and raw/refined."""

    a: np.ndarray  # (m,) str
    b: np.ndarray  # (m,) str
    score: np.ndarray  # (m,) float32
    refined: np.ndarray  # (m,) bool
    rank: np.ndarray  # (m,) int16, 1 = most alike
    model: str
    k: int

    def __len__(self) -> int:
        return len(self.a)

    def keys(self) -> list[tuple[str, str, bool]]:
        return list(zip(self.a.tolist(), self.b.tolist(), self.refined.tolist(), strict=True))

    def rows(self, index: np.ndarray | None = None) -> list[dict[str, object]]:
        """Rows for ``cypher/looks_like_write.cypher``."""
        idx = np.arange(len(self.a)) if index is None else index
        return [
            {
                "a": str(self.a[i]),
                "b": str(self.b[i]),
                "score": round(float(self.score[i]), 4),
                "refined": bool(self.refined[i]),
            }
            for i in idx.tolist()
        ]

    def save(self, folder: Path) -> None:
        tmp = folder / ".looks_like.tmp.npz"
        np.savez(
            tmp,
            a=self.a,
            b=self.b,
            score=self.score,
            refined=self.refined,
            rank=self.rank,
            model=np.array(self.model),
            k=np.array(self.k),
        )
        tmp.rename(folder / FILE)

    @classmethod
    def load(cls, folder: Path) -> LooksLike | None:
        try:
            with np.load(folder / FILE) as z:
                return cls(
                    z["a"],
                    z["b"],
                    z["score"],
                    z["refined"],
                    z["rank"],
                    str(z["model"]),
                    int(z["k"]),
                )
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None


def from_top_k(
    ids: np.ndarray, rows: np.ndarray, scores: np.ndarray, refined: bool, model: str, k: int
) -> LooksLike:
    """Pairs from ``angular.all_top_k`` output (row indices into ``ids``; -1 = none)."""
    k = min(k, rows.shape[1]) if rows.ndim == 2 else 0
    r, s = rows[:, :k], scores[:, :k]
    src = np.repeat(np.arange(len(ids)), k)
    dst = r.reshape(-1)
    ok = dst >= 0
    rank = np.tile(np.arange(1, k + 1, dtype=np.int16), len(ids))
    return LooksLike(
        ids[src[ok]],
        ids[dst[ok]],
        s.reshape(-1)[ok].astype(np.float32),
        np.full(int(ok.sum()), refined),
        rank[ok],
        model,
        k,
    )


def concat(parts: list[LooksLike]) -> LooksLike:
    return LooksLike(
        np.concatenate([p.a for p in parts]),
        np.concatenate([p.b for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.refined for p in parts]),
        np.concatenate([p.rank for p in parts]),
        parts[0].model,
        parts[0].k,
    )


@dataclass(frozen=True)
class Diff:
    write: np.ndarray  # indices into the new table: pairs to (re)write
    delete: list[tuple[str, str, bool]]  # (a, b, refined) no longer among the top-k
    full: bool  # no comparable previous table: write all, prune by run


def diff(new: LooksLike, old: LooksLike | None) -> Diff:
    if old is None or old.model != new.model or old.k != new.k:
        return Diff(np.arange(len(new)), [], True)
    before = dict(zip(old.keys(), old.score.tolist(), strict=True))
    write = []
    now = new.keys()
    for i, key in enumerate(now):
        prior = before.get(key)
        if prior is None or abs(prior - float(new.score[i])) > SCORE_STEP:
            write.append(i)
    gone = sorted(set(before) - set(now))
    return Diff(np.asarray(write, dtype=np.int64), gone, False)
