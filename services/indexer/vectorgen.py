"""The vector half of an index generation: raw and refined vectors, their Annoy angular
indexes, the LOOKS_LIKE table and the audit, written into the same build folder as the hash
tables, so both halves are published together by one switch of CURRENT.

Files (beside the hash files, see generations.py)::

    vectors.ids.npy  sorted image ids        vectors.npy   (n, dim) float32 raw unit vectors
    vectors.at.npy   embedded_at per row     refined.npy   (n, dim) float32 refined vectors
    refined.mean.npy the mean the refinement centred on (for vectors embedded since)
    vectors.ann, refined.ann                 Annoy angular indexes (only past EXACT_MAX)
    looks_like.npz   top-k pairs (lookslike.py)   audit.npz   SIMILAR_TO evidence (audit.py)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.indexer import angular, audit, lookslike
from services.indexer.refine import RefineConfig, refine
from services.indexer.table import HashTable
from services.indexer.vectortable import VectorTable, lookup

log = logging.getLogger(__name__)

FORMAT = 1
META_KEY = "vectors"


@dataclass(frozen=True)
class VectorInputs:
    """Everything a build's vector half is made from."""

    table: VectorTable
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]  # SIMILAR_TO (source, target, rank)
    colours: Mapping[str, str | None]  # average colour per image
    fetched: set[str]  # images whose similar list is known
    refine: RefineConfig
    looks_like_k: int
    stream_upto: str  # the newest stream entry this build read


@dataclass(frozen=True)
class VectorOptions:
    trees: int = 10
    exact_max: int = angular.EXACT_MAX
    search_k: int = -1


def _knn(
    matrix: np.ndarray, k: int, folder: Path, name: str, options: VectorOptions
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Every row's k nearest (exact when small; else through an Annoy index also saved
    as ``<name>.ann`` for the readers)."""
    if len(matrix) <= options.exact_max:
        rows, scores = angular.all_top_k(matrix, k)
        return rows, scores, False
    path = folder / f"{name}.ann"
    angular.build_annoy(matrix, options.trees, path)
    index = angular.load_annoy(path, matrix.shape[1])
    try:
        rows, scores = angular.all_top_k(matrix, k, index=index, search_k=options.search_k)
    finally:
        index.unload()
    return rows, scores, True


def write(
    folder: Path, inputs: VectorInputs, hashes: HashTable, options: VectorOptions
) -> dict[str, Any]:
    """Write the vector files into a build folder; returns its part of meta.json."""
    started = time.perf_counter()
    t = inputs.table
    ids = t.ids
    np.save(folder / "vectors.ids.npy", ids)
    np.save(folder / "vectors.npy", t.vectors)
    np.save(folder / "vectors.at.npy", t.embedded_at)
    k = max(inputs.refine.knn, inputs.looks_like_k)
    raw_rows, raw_scores, annoy_raw = _knn(t.vectors, k, folder, "vectors", options)
    t_knn = time.perf_counter()
    source = lookup(ids, inputs.edges[0])
    target = lookup(ids, inputs.edges[1])
    both = (source >= 0) & (target >= 0)
    refined, mean = refine(
        t.vectors, raw_rows, raw_scores, (source[both], target[both]), inputs.refine
    )
    t_refine = time.perf_counter()
    np.save(folder / "refined.npy", refined)
    np.save(folder / "refined.mean.npy", mean)
    ref_rows, ref_scores, _ = _knn(refined, inputs.looks_like_k, folder, "refined", options)
    t_ref_knn = time.perf_counter()
    table = lookslike.concat(
        [
            lookslike.from_top_k(ids, raw_rows, raw_scores, False, t.model, inputs.looks_like_k),
            lookslike.from_top_k(ids, ref_rows, ref_scores, True, t.model, inputs.looks_like_k),
        ]
    )
    table.save(folder)
    raw_pairs = ~table.refined
    by_id = np.argsort(hashes.ids, kind="stable")
    found = audit.compute(
        inputs.edges,
        ids,
        t.vectors,
        refined,
        hashes.ids[by_id],
        hashes.kinds,
        hashes.values[by_id],
        hashes.present[by_id],
        inputs.colours,
        inputs.fetched,
        (table.a[raw_pairs], table.b[raw_pairs], table.score[raw_pairs]),
        t.model,
    )
    found.save(folder)
    return {
        META_KEY: {
            "format": FORMAT,
            "model": t.model,
            "dim": t.dim,
            "items": len(t),
            "annoy": annoy_raw,
            "trees": options.trees,
            "exact_max": options.exact_max,
            "refine": inputs.refine.as_dict(),
            "looks_like_k": inputs.looks_like_k,
            "looks_like": len(table),
            "audit_edges": len(found),
            "unlisted": len(found.unlisted_a),
            "stream_upto": inputs.stream_upto,
            "embedded_at_max": int(t.embedded_at.max()) if len(t) else 0,
            "seconds": {
                "knn": round(t_knn - started, 3),
                "refine": round(t_refine - t_knn, 3),
                "refined_knn": round(t_ref_knn - t_refine, 3),
                "total": round(time.perf_counter() - started, 3),
            },
        }
    }


def load_table(gen_dir: Path, meta: Mapping[str, Any]) -> VectorTable | None:
    """The raw vectors of a published generation (None when it has none)."""
    info = meta.get(META_KEY)
    if not info:
        return None
    try:
        return VectorTable(
            np.load(gen_dir / "vectors.ids.npy"),
            np.load(gen_dir / "vectors.npy"),
            np.load(gen_dir / "vectors.at.npy"),
            str(info["model"]),
        )
    except (FileNotFoundError, OSError, ValueError) as exc:
        log.warning(
            "cannot read the vectors of %s (%s): they will be embedded again", gen_dir.name, exc
        )
        return None
