"""The indexer sidecar: decide when to rebuild, build from the graph, publish, pair duplicates.

One build: read every hashed image from the graph, write and publish a new generation
(build.py), then find near-duplicate candidates on it, verify them and group them
(duplicates.py), and write them back to the graph as NEAR_DUPLICATE relationships and
``dup_group`` marks. The loop rebuilds when
``min_new`` images were hashed since the current generation, when ``period_s`` passed and
something changed, when someone asked (``request_rebuild``: the REBUILD file), or when there
is no generation yet. Graph outages are logged and retried; they never end the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.graph import GraphStore, GraphUnavailable
from lookalike.hashing import HASH_BITS, HASH_KINDS
from lookalike.settings import Settings
from services.indexer import generations as gens
from services.indexer.build import BuildResult, build_generation
from services.indexer.duplicates import (
    Duplicate,
    Pair,
    find_pairs,
    group_duplicates,
    update_pairs,
    verify_pairs,
)
from services.indexer.graph_io import (
    WriteReport,
    count_hashed,
    count_new,
    count_new_titles,
    read_all_hashes,
    read_all_titles,
    write_near_duplicates,
)
from services.indexer.multindex import MultiIndex
from services.indexer.table import COLOR_BYTES, HashTable
from services.indexer.verify import CANDIDATE_RADII, VerifyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexerConfig:
    index_dir: Path
    trees: int = 10
    min_new: int = 1000
    period_s: float = 600.0
    poll_s: float = 5.0
    kinds: tuple[str, ...] = HASH_KINDS
    candidate_radii: Mapping[str, int] = field(default_factory=lambda: dict(CANDIDATE_RADII))
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    n_jobs: int = 1
    keep: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IndexerConfig:
        values: dict[str, object] = {
            "index_dir": settings.index_dir,
            "trees": settings.index_trees,
            "min_new": settings.index_rebuild_min_new,
            "period_s": settings.index_rebuild_period_s,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunReport:
    build: BuildResult
    pairs: int  # verified near-duplicate pairs
    groups: int
    graph: WriteReport | None
    seconds: float
    joined: dict[str, int] = field(default_factory=dict)  # images re-joined per kind; -1 all
    candidates: int = 0  # candidate pairs judged


PAIRS = "pairs.npz"


def _kind_column(gen_dir: Path, kind: str, ids: np.ndarray, values: np.ndarray,
                 kinds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows = np.load(gen_dir / f"{kind}.rows.npy")
    return ids[rows], np.asarray(values[rows, kinds.index(kind)])


def _save_pairs(gen_dir: Path, pairs: list[Pair], key: str) -> None:
    tmp = gen_dir / ".pairs.tmp.npz"
    np.savez(
        tmp, key=np.array(key),
        a=np.array([p.a for p in pairs], dtype=str), b=np.array([p.b for p in pairs], dtype=str),
        kind=np.array([p.kind for p in pairs], dtype=str),
        distance=np.array([p.distance for p in pairs], dtype=np.int16),
        mirrored=np.array([p.mirrored for p in pairs], dtype=bool),
    )
    tmp.rename(gen_dir / PAIRS)


def _load_pairs(gen_dir: Path, key: str) -> list[Pair] | None:
    try:
        with np.load(gen_dir / PAIRS) as z:
            if str(z["key"]) != key:
                return None
            return [Pair(a, b, k, int(d), bool(m)) for a, b, k, d, m in zip(
                z["a"].tolist(), z["b"].tolist(), z["kind"].tolist(), z["distance"].tolist(),
                z["mirrored"].tolist(), strict=True)]
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None


def pairs_of_generation(
    gen_dir: Path, thresholds: Mapping[str, int | None], previous: Path | None = None,
    mirror: bool = True,
) -> tuple[list[Pair], dict[str, int]]:
    """Near-duplicate candidates over a published generation (pairs within ``thresholds``,
    the candidate radii, in some kind), saved beside it (pairs.npz).

    When ``previous`` (an earlier generation) has pairs made with the same radii and
    hash version, only images whose hashes are new or changed are joined again
    (``update_pairs``); otherwise every kind is joined in full. Returns the pairs and, per
    kind, how many images were joined (``-1``: all).
    """
    meta = gens.read_meta(gen_dir)
    key = json.dumps({"thresholds": dict(thresholds), "mirror": mirror,
                      "hash_version": meta["hash_version"]}, sort_keys=True)
    kinds = list(meta["kinds"])
    ids = np.asarray(np.load(gen_dir / "ids.npy"))
    values = np.load(gen_dir / "hashes.npy", mmap_mode="r")
    before = _load_pairs(previous, key) if previous is not None else None
    if before is not None and previous is not None:
        old_meta = gens.read_meta(previous)
        old_kinds = list(old_meta["kinds"])
        old_ids = np.asarray(np.load(previous / "ids.npy"))
        old_values = np.load(previous / "hashes.npy", mmap_mode="r")
    pairs: list[Pair] = []
    joined: dict[str, int] = {}
    for kind in kinds:
        threshold = thresholds.get(kind)
        if threshold is None:
            continue
        kind_ids, kind_values = _kind_column(gen_dir, kind, ids, values, kinds)
        multi = MultiIndex.load(gen_dir, kind, HASH_BITS[kind])
        if before is not None and kind in old_kinds:
            o_ids, o_values = _kind_column(previous, kind, old_ids, old_values, old_kinds)
            old = dict(zip(o_ids.tolist(), o_values.tolist(), strict=True))
            found, joined[kind] = update_pairs(before, kind, kind_ids, kind_values, multi,
                                               threshold, old, mirror=mirror)
        else:
            found = find_pairs(kind_ids, kind, kind_values, multi, threshold, mirror=mirror)
            joined[kind] = -1
        pairs.extend(found)
    _save_pairs(gen_dir, pairs, key)
    return pairs, joined


def _evidence_columns(gen_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A generation's information and colour columns (absent in older generations)."""
    try:
        info = np.load(gen_dir / "info.npy")
    except FileNotFoundError:
        info = np.full(n, np.nan, np.float32)
    try:
        color = np.load(gen_dir / "color.npy")
    except FileNotFoundError:
        color = np.zeros((n, COLOR_BYTES), np.int8)
    return info, color


def verify_generation(gen_dir: Path, candidates: list[Pair],
                      config: VerifyConfig | None = None) -> list[Duplicate]:
    """The candidates of a generation that verification accepts (duplicates.verify_pairs)."""
    meta = gens.read_meta(gen_dir)
    ids = np.asarray(np.load(gen_dir / "ids.npy"))
    values = np.load(gen_dir / "hashes.npy", mmap_mode="r")
    info, color = _evidence_columns(gen_dir, len(ids))
    return verify_pairs(ids, values, tuple(meta["kinds"]), info, color, candidates, config)


class Indexer:
    def __init__(self, store: GraphStore, config: IndexerConfig) -> None:
        self.store = store
        self.config = config

    def _current_meta(self) -> dict | None:
        try:
            return gens.read_meta(gens.current_path(self.config.index_dir))
        except (gens.NoGeneration, FileNotFoundError):
            return None

    def due(self, now_ms: int | None = None) -> str | None:
        """Why a rebuild is due now, or None."""
        if gens.take_rebuild_request(self.config.index_dir):
            return "requested"
        meta = self._current_meta()
        if meta is None:
            return "no index yet"
        new = count_new(self.store, meta["hashed_at_max"])
        if new >= self.config.min_new:
            return f"{new} new hashes"
        # Titles arrive with fetches, which do not always bring new hashes (a re-fetch of an
        # unchanged thumbnail): counted on their own. A generation without a title index
        # (an offline build) gets one at the next period.
        fetched = (count_new_titles(self.store, meta["titles"]["read_at"])
                   if "titles" in meta else 1)
        if fetched >= self.config.min_new:
            return f"{fetched} images fetched since the title index was built"
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        if now - meta["built_at"] >= self.config.period_s * 1000:
            if new:
                return f"{new} new hashes and {self.config.period_s:.0f}s passed"
            if fetched:
                return f"{fetched} images fetched and {self.config.period_s:.0f}s passed"
            if count_hashed(self.store) != meta.get("source_rows", meta["images"]):
                return "hashed images removed or changed"
        return None

    def build_once(self, reason: str = "on demand", table: HashTable | None = None,
                   write_graph: bool = True) -> RunReport:
        """Read (unless ``table`` is given), build, publish, pair and write back. The title
        index is read from the graph too, unless ``table`` is given (an offline build)."""
        started = time.perf_counter()
        titles = None
        if table is None:
            titles = read_all_titles(self.store)
            table = read_all_hashes(self.store, self.config.kinds)
        result = build_generation(
            self.config.index_dir, table, trees=self.config.trees, n_jobs=self.config.n_jobs,
            keep=self.config.keep, extra_meta={"reason": reason}, titles=titles,
        )
        previous = [n for n in gens.generations(self.config.index_dir) if n < result.number]
        candidates, joined = pairs_of_generation(
            result.path, self.config.candidate_radii,
            self.config.index_dir / gens.gen_name(previous[-1]) if previous else None,
        )
        log.info("near-duplicate join per kind (images joined, -1 = all): %s", joined)
        pairs = verify_generation(result.path, candidates, self.config.verify)
        groups = group_duplicates(pairs)
        report = None
        if write_graph:
            report = write_near_duplicates(self.store, pairs, groups, run=result.number)
        seconds = time.perf_counter() - started
        log.info(
            "%s (%s): %d images, %d candidates, %d verified near-duplicate pairs in %d "
            "groups, %.1fs", result.path.name, reason, result.images, len(candidates),
            len(pairs), len({g for g, _ in groups.values()}), seconds,
        )
        return RunReport(result, len(pairs), len({g for g, _ in groups.values()}), report,
                         seconds, joined, len({(p.a, p.b) for p in candidates}))

    def run(
        self, stop: threading.Event | None = None,
        on_build: Callable[[RunReport], None] | None = None,
    ) -> None:
        """Poll every ``poll_s`` seconds until ``stop`` is set; rebuild when due."""
        stop = stop or threading.Event()
        failures = 0
        while not stop.is_set():
            try:
                reason = self.due()
                if reason:
                    report = self.build_once(reason)
                    if on_build:
                        on_build(report)
                failures = 0
            except gens.IndexerBusy as exc:
                log.warning("%s; waiting", exc)
            except GraphUnavailable as exc:
                failures += 1
                log.error("graph unavailable (%s); retrying", exc)
            stop.wait(min(self.config.poll_s * 2**min(failures, 5), 300.0))
