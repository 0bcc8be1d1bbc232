"""Build one index generation from a hash table and publish it atomically.

Per hash kind a generation holds a multi-index table (every hash within a small radius,
exact; see multindex.py), the row mapping from index items to images and, for kinds with
more than ``ANNOY_MIN_ITEMS`` hashes, an Annoy hamming index (one 0/1 vector per bit;
nearest neighbours at any distance, approximate). With embeddings, the vector half
(vectorgen.py) is written into the same folder, so hashes and vectors are published together.
Everything is written into a hidden build folder and published by ``publish`` only when
complete, so a build that dies half-way changes nothing readers see.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from lookalike.hashing import HASH_BITS, algorithm_version
from services.indexer import generations as gens
from services.indexer.bits import bit_rows
from services.indexer.multindex import CHUNKS, MultiIndex
from services.indexer.table import HashTable
from services.indexer.titles import TitleTable, titles_meta

log = logging.getLogger(__name__)

FORMAT = 1
# Kinds with at most this many hashes get no Annoy index: there the reader's exact scan
# answers nearest-k faster than Annoy does, and exactly (nearest-10 at 1M hashes: 0.22 ms;
# Annoy alone 0.82 ms at 0.90 recall), and Annoy was ~95% of the build time and two thirds of
# the size. Not measured past 1M: the scan grows linearly, so the two would meet near 4M.
# Above it, Annoy serves nearest-k beyond the near-duplicate radius (bench/README.md, index).
ANNOY_MIN_ITEMS = 4_000_000


@dataclass(frozen=True)
class BuildResult:
    path: Path
    number: int
    images: int
    seconds: float
    removed: list[str]


def build_annoy(
    values: np.ndarray,
    bits: int,
    trees: int,
    path: Path,
    *,
    seed: int = 42,
    n_jobs: int = 1,
    batch: int = 50_000,
) -> None:
    """An Annoy hamming index of ``values`` (item i = values[i]) saved to ``path``."""
    index = AnnoyIndex(bits, "hamming")
    index.set_seed(seed)
    for start in range(0, len(values), batch):
        for offset, row in enumerate(bit_rows(values[start : start + batch], bits).tolist()):
            index.add_item(start + offset, row)
    # Annoy refuses to build (and later to load) an index without items; an empty kind
    # still gets a valid file with no trees worth searching.
    index.build(trees if len(values) else 1, n_jobs=n_jobs)
    index.save(str(path))
    index.unload()


# Writes more files into a build folder (the vector half); returns its part of meta.json.
ExtraFiles = Callable[[Path], dict[str, Any]]


def write_generation(
    folder: Path,
    table: HashTable,
    *,
    trees: int,
    number: int,
    n_jobs: int = 1,
    extra_meta: dict[str, Any] | None = None,
    annoy_min_items: int = ANNOY_MIN_ITEMS,
    extra_files: ExtraFiles | None = None,
) -> dict[str, Any]:
    """Write every file of a generation into ``folder`` (meta.json last); return the meta."""
    started = time.perf_counter()
    # Rows sorted by id: readers find an image's row by binary search on the mapped ids.
    order = np.argsort(table.ids, kind="stable")
    table = HashTable(
        table.ids[order],
        table.kinds,
        table.values[order],
        table.present[order],
        table.hashed_at[order],
        table.rejected,
        table.source_rows,
        None if table.info is None else table.info[order],
        None if table.color is None else table.color[order],
    )
    np.save(folder / "ids.npy", table.ids)
    np.save(folder / "hashes.npy", table.values)
    np.save(folder / "info.npy", table.info)
    np.save(folder / "color.npy", table.color)
    np.save(folder / "present.npy", table.present)
    kinds_meta: dict[str, Any] = {}
    for kind in table.kinds:
        rows, values = table.column(kind)
        bits = HASH_BITS[kind]
        np.save(folder / f"{kind}.rows.npy", rows.astype(np.int64))
        t0 = time.perf_counter()
        annoy = len(values) > annoy_min_items
        if annoy:
            build_annoy(values, bits, trees, folder / f"{kind}.ann", n_jobs=n_jobs)
        t1 = time.perf_counter()
        MultiIndex.build(values, bits=bits, chunks=CHUNKS).save(folder, kind)
        kinds_meta[kind] = {
            "items": len(values),
            "bits": bits,
            "trees": trees if annoy else 0,
            "annoy": annoy,
            "chunks": CHUNKS,
            "annoy_seconds": round(t1 - t0, 3),
            "multindex_seconds": round(time.perf_counter() - t1, 3),
        }
    more = extra_files(folder) if extra_files is not None else {}
    meta = {
        "format": FORMAT,
        "generation": number,
        "built_at": int(time.time() * 1000),
        "build_seconds": round(time.perf_counter() - started, 3),
        "images": len(table),
        "source_rows": table.source_rows,
        "hashed_at_max": table.hashed_at_max,
        "hash_version": algorithm_version(),
        "kinds": kinds_meta,
        "rejected": table.rejected,
        **more,
        **(extra_meta or {}),
    }
    tmp = folder / (gens.META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.rename(folder / gens.META)
    return meta


def build_generation(
    index_dir: Path,
    table: HashTable,
    *,
    trees: int,
    n_jobs: int = 1,
    keep: int = 2,
    extra_meta: dict[str, Any] | None = None,
    annoy_min_items: int = ANNOY_MIN_ITEMS,
    titles: tuple[TitleTable, int] | None = None,
    extra_files: ExtraFiles | None = None,
) -> BuildResult:
    """Write, publish and clean up: the whole life of one generation, under the builder lock.

    ``titles``: the title-word index and when its titles were read (epoch ms), stored in the
    same generation; ``extra_files`` writes more of it (the vector half). Raises
    ``IndexerBusy`` when another process is building in the same folder.
    """
    started = time.perf_counter()
    with gens.builder_lock(index_dir):
        number = gens.next_number(index_dir)
        folder = gens.new_build_dir(index_dir, number)
        meta = dict(extra_meta or {})
        if titles is not None:
            titles[0].save(folder)
            meta["titles"] = titles_meta(*titles)
        write_generation(
            folder,
            table,
            trees=trees,
            number=number,
            n_jobs=n_jobs,
            extra_meta=meta,
            annoy_min_items=annoy_min_items,
            extra_files=extra_files,
        )
        final = gens.publish(index_dir, folder, number)
        removed = gens.cleanup(index_dir, keep=keep)
    seconds = time.perf_counter() - started
    log.info("published %s: %d images in %.1fs", final.name, len(table), seconds)
    return BuildResult(final, number, len(table), seconds, removed)
