"""The audit of the catalogue's SIMILAR_TO edges: the evidence for each, and what it misses.

For every edge ``a -> b`` the catalogue lists: the embedding cosine (raw and refined), the
perceptual hash distances, the distance between the two images' average colours (CIELAB
Delta E 1976) and whether b lists a too. Sorted by raw cosine, the first edges are the
least supported: pairs the catalogue calls similar that Lookalike's model does not. And the
other way round: pairs whose raw cosine is at least ``STRONG`` (a near-certain lookalike)
where a was fetched (its list is known) yet neither lists the other.

Computed by the indexer at each build over that generation's vectors and hashes, and kept
beside them (``audit.npz``), so the API pages through it without touching the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.indexer.vectortable import lookup

FILE = "audit.npz"
# A raw cosine this high is a lookalike, not a resemblance: on bench/bench_embed.py's pictures
# an original and its edits score 0.82-0.99 and two different paintings at most ~0.65.
STRONG = 0.75
NO_DISTANCE = -1


@dataclass
class Audit:
    # one entry per SIMILAR_TO edge, in (source, rank) order
    source: np.ndarray
    target: np.ndarray
    rank: np.ndarray  # int16
    cos_raw: np.ndarray  # float32, NaN when an end has no vector
    cos_refined: np.ndarray
    hash_distance: dict[str, np.ndarray]  # kind -> int16, NO_DISTANCE when an end lacks it
    colour: np.ndarray  # float32 Delta E, NaN when unknown
    reciprocal: np.ndarray  # bool
    # strong lookalikes the catalogue does not list, strongest first
    unlisted_a: np.ndarray
    unlisted_b: np.ndarray
    unlisted_raw: np.ndarray
    unlisted_refined: np.ndarray
    model: str
    strong: float

    def __len__(self) -> int:
        return len(self.source)

    def least_supported(self) -> np.ndarray:
        """Edge indices, least supported first: lowest raw cosine (edges without vectors
        last), ties by refined cosine, then by (source, rank)."""
        raw = np.where(np.isnan(self.cos_raw), np.inf, self.cos_raw)
        refined = np.where(np.isnan(self.cos_refined), np.inf, self.cos_refined)
        return np.lexsort((np.arange(len(raw)), refined, raw))

    def save(self, folder: Path) -> None:
        tmp = folder / ".audit.tmp.npz"
        np.savez(
            tmp,
            source=self.source,
            target=self.target,
            rank=self.rank,
            cos_raw=self.cos_raw,
            cos_refined=self.cos_refined,
            colour=self.colour,
            reciprocal=self.reciprocal,
            unlisted_a=self.unlisted_a,
            unlisted_b=self.unlisted_b,
            unlisted_raw=self.unlisted_raw,
            unlisted_refined=self.unlisted_refined,
            model=np.array(self.model),
            strong=np.array(self.strong),
            kinds=np.array(list(self.hash_distance), dtype=str),
            **{f"hash_{k}": v for k, v in self.hash_distance.items()},
        )
        tmp.rename(folder / FILE)

    @classmethod
    def load(cls, folder: Path) -> Audit | None:
        try:
            z = np.load(folder / FILE)
        except (FileNotFoundError, OSError, ValueError):
            return None
        with z:
            kinds = [str(k) for k in z["kinds"].tolist()]
            return cls(
                z["source"],
                z["target"],
                z["rank"],
                z["cos_raw"],
                z["cos_refined"],
                {k: z[f"hash_{k}"] for k in kinds},
                z["colour"],
                z["reciprocal"],
                z["unlisted_a"],
                z["unlisted_b"],
                z["unlisted_raw"],
                z["unlisted_refined"],
                str(z["model"]),
                float(z["strong"]),
            )


def hex_to_lab(colours: list[str | None]) -> np.ndarray:
    """ "#rrggbb" colours as CIELAB (D65) rows; NaN rows for missing or malformed ones."""
    rgb = np.full((len(colours), 3), np.nan)
    for i, c in enumerate(colours):
        if isinstance(c, str) and len(c) == 7 and c[0] == "#":
            try:
                rgb[i] = [int(c[j : j + 2], 16) / 255.0 for j in (1, 3, 5)]
            except ValueError:
                continue
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (
        linear
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    )
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def _cosines(ids: np.ndarray, matrix: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra, rb = lookup(ids, a), lookup(ids, b)
    ok = (ra >= 0) & (rb >= 0)
    out = np.full(len(a), np.nan, np.float32)
    if ok.any():
        out[ok] = np.einsum("ij,ij->i", matrix[ra[ok]], matrix[rb[ok]])
    return out


def compute(
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    vector_ids: np.ndarray,
    raw: np.ndarray,
    refined: np.ndarray,
    hash_ids: np.ndarray,
    hash_kinds: tuple[str, ...],
    hash_values: np.ndarray,
    hash_present: np.ndarray,
    colours: Mapping[str, str | None],
    fetched: set[str],
    lookalikes: tuple[np.ndarray, np.ndarray, np.ndarray],
    model: str,
    strong: float = STRONG,
) -> Audit:
    """The audit. ``edges``: (source, target, rank) of every SIMILAR_TO edge; ``vector_ids``
    sorted, rows of ``raw``/``refined``; ``hash_*``: the generation's hash table (ids
    sorted); ``lookalikes``: (a, b, raw cosine) pairs to check against the edges."""
    source = np.asarray(edges[0], dtype=str)
    target = np.asarray(edges[1], dtype=str)
    rank = np.asarray(edges[2], dtype=np.int16)
    order = np.lexsort((rank, source))
    source, target, rank = source[order], target[order], rank[order]
    listed = set(zip(source.tolist(), target.tolist(), strict=True))
    reciprocal = np.array(
        [(b, a) in listed for a, b in zip(source.tolist(), target.tolist(), strict=True)],
        dtype=bool,
    )
    ha, hb = lookup(hash_ids, source), lookup(hash_ids, target)
    distances: dict[str, np.ndarray] = {}
    for k, kind in enumerate(hash_kinds):
        d = np.full(len(source), NO_DISTANCE, np.int16)
        ok = (ha >= 0) & (hb >= 0)
        ok[ok] = hash_present[ha[ok], k] & hash_present[hb[ok], k]
        if ok.any():
            d[ok] = np.bitwise_count(np.bitwise_xor(hash_values[ha[ok], k], hash_values[hb[ok], k]))
        distances[kind] = d
    names = sorted(set(source.tolist()) | set(target.tolist()))
    lab = hex_to_lab([colours.get(n) for n in names])
    where = {n: i for i, n in enumerate(names)}
    la = lab[[where[s] for s in source.tolist()]] if len(source) else np.zeros((0, 3))
    lb = lab[[where[t] for t in target.tolist()]] if len(target) else np.zeros((0, 3))
    colour = np.linalg.norm(la - lb, axis=1).astype(np.float32)

    a, b, score = (np.asarray(x) for x in lookalikes)
    strong_pairs: dict[tuple[str, str], float] = {}
    for x, y, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        if s < strong or (x, y) in listed or (y, x) in listed:
            continue
        if x not in fetched and y not in fetched:
            continue  # neither list is known: nothing to say about the catalogue
        key = (x, y) if x < y else (y, x)
        strong_pairs[key] = max(s, strong_pairs.get(key, -1.0))
    pairs = sorted(strong_pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ua = np.asarray([p[0][0] for p in pairs], dtype=str)
    ub = np.asarray([p[0][1] for p in pairs], dtype=str)
    return Audit(
        source,
        target,
        rank,
        _cosines(vector_ids, raw, source, target),
        _cosines(vector_ids, refined, source, target),
        distances,
        colour,
        reciprocal,
        ua,
        ub,
        _cosines(vector_ids, raw, ua, ub),
        _cosines(vector_ids, refined, ua, ub),
        model,
        strong,
    )


SECTIONS = ("least_supported", "edges", "unlisted")


def _num(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 4)


def summary(found: Audit) -> dict[str, object]:
    """Totals over every edge: how many have vectors, how many are reciprocal, the raw
    cosines' quantiles, how many strong lookalikes the lists miss."""
    raw = found.cos_raw[~np.isnan(found.cos_raw)]
    quantiles = (
        {f"p{q}": round(float(np.percentile(raw, q)), 4) for q in (10, 50, 90)} if len(raw) else {}
    )
    return {
        "edges": len(found),
        "with_vectors": len(raw),
        "reciprocal": int(found.reciprocal.sum()),
        "cos_raw": quantiles,
        "unlisted": len(found.unlisted_a),
        "strong": found.strong,
        "model": found.model,
    }


def page(found: Audit, section: str, offset: int, limit: int) -> tuple[int, list[dict]]:
    """One page of a section: (total, items). ``least_supported``: edges, lowest raw cosine
    first; ``edges``: every edge by (source, rank); ``unlisted``: strong lookalikes the
    catalogue does not list, strongest first."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {', '.join(SECTIONS)}, not {section!r}")
    if section == "unlisted":
        total = len(found.unlisted_a)
        return total, [
            {
                "a": str(found.unlisted_a[i]),
                "b": str(found.unlisted_b[i]),
                "cos_raw": _num(found.unlisted_raw[i]),
                "cos_refined": _num(found.unlisted_refined[i]),
            }
            for i in range(offset, min(total, offset + limit))
        ]
    order = found.least_supported() if section == "least_supported" else np.arange(len(found))
    chosen = order[offset : offset + limit]
    return len(found), [
        {
            "source": str(found.source[i]),
            "target": str(found.target[i]),
            "rank": int(found.rank[i]),
            "cos_raw": _num(found.cos_raw[i]),
            "cos_refined": _num(found.cos_refined[i]),
            "hash_distance": {
                k: (int(v[i]) if v[i] != NO_DISTANCE else None)
                for k, v in found.hash_distance.items()
            },
            "colour_distance": _num(found.colour[i]),
            "reciprocal": bool(found.reciprocal[i]),
        }
        for i in chosen.tolist()
    ]
