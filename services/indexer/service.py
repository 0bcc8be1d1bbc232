"""The indexer sidecar: decide when to rebuild, build from the graph, publish, pair duplicates.

One build: read every hashed image from the graph, then (with embeddings) the vectors
waiting in Redis, write and publish a new generation (build.py, vectorgen.py), then find
near-duplicate candidates on it, verify them and group them (duplicates.py), and write them
back to the graph as NEAR_DUPLICATE relationships and ``dup_group`` marks, and LOOKS_LIKE
relationships for the lookalikes. Only then are the vectors it took in deleted from Redis,
and images whose vectors are missing (or made by another model) are handed to the workers
to embed again. The loop rebuilds when ``min_new`` images were hashed (or vectors arrived)
since the current generation, when ``period_s`` passed and something changed, when someone
asked (``request_rebuild``: the REBUILD file), or when there is no generation yet. Graph
outages are logged and retried; they never end the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import redis

from lookalike import vectors as stream
from lookalike.graph import GraphStore, GraphUnavailable
from lookalike.hashing import HASH_BITS, HASH_KINDS
from lookalike.settings import Settings, SettingsError
from lookalike.viewstore import ViewStore
from services.indexer import generations as gens
from services.indexer import lookslike, vectorgen
from services.indexer.angular import EXACT_MAX
from services.indexer.build import BuildResult, ExtraFiles, build_generation
from services.indexer.duplicates import (
    Cosines,
    Duplicate,
    Pair,
    embedding_candidates,
    find_pairs,
    group_duplicates,
    pair_cosines,
    update_pairs,
    verify_pairs,
)
from services.indexer.graph_io import (
    LooksLikeReport,
    WriteReport,
    count_hashed,
    count_looks_like,
    count_new,
    count_new_titles,
    hash_table,
    read_all_titles,
    read_edges,
    read_index_rows,
    write_looks_like,
    write_near_duplicates,
)
from services.indexer.localpairs import (
    LocalPairs,
    PairLocal,
    deferred_pairs,
    load_memo,
    save_memo,
)
from services.indexer.multindex import MultiIndex
from services.indexer.refine import RefineConfig
from services.indexer.table import COLOR_BYTES, HashTable
from services.indexer.vectortable import Merge, graph_embeddings, lookup, merge
from services.indexer.verify import CANDIDATE_RADII, VerifyConfig

# Hands images to the workers to embed: [(image id, thumbnail info URL), ...].
Reembed = Callable[[list[tuple[str, str]]], None]

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
    # Embeddings: the current model's version (None: no vectors in the index).
    model: str | None = None
    refine: RefineConfig = field(default_factory=RefineConfig)
    looks_like_k: int = 10
    vector_exact_max: int = EXACT_MAX
    search_k: int = -1
    reembed_limit: int = 0  # images handed to the workers to embed again per build
    # The workers' verification views (lookalike.viewstore; None: judge without pixels).
    view_dir: Path | None = None
    local_per_build: int = 0  # most pairs compared on their views per build (0: every one)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IndexerConfig:
        values: dict[str, object] = {
            "index_dir": settings.index_dir,
            "trees": settings.index_trees,
            "min_new": settings.index_rebuild_min_new,
            "period_s": settings.index_rebuild_period_s,
            "model": stream.current_model(settings),
            "looks_like_k": settings.looks_like_k,
            "reembed_limit": settings.embed_reembed_per_build,
            "verify": VerifyConfig.from_settings(settings),
            "view_dir": settings.view_dir if settings.view_store_mb > 0 else None,
            "local_per_build": settings.index_local_pairs_per_build,
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
    vectors: int = 0  # images with vectors in the generation
    looks_like: LooksLikeReport | None = None
    missing: int = 0  # images the graph calls embedded whose vectors were lost
    reembed: int = 0  # images handed to the workers to embed (again)
    local: int = 0  # judged pairs whose two pictures' views were compared
    local_reused: int = 0  # ... of which the previous build's evidence still held
    local_deferred: int = 0  # pairs left to compare in the next build (the budget)


def open_indexer(store: GraphStore, settings: Settings, **overrides: object) -> Indexer:
    """The indexer as the settings describe it: their index folder and rebuild policy, and
    with embeddings on, the Redis the workers hand their vectors over in and the workers to
    hand lost ones back to."""
    config = IndexerConfig.from_settings(settings, **overrides)
    client = None
    if config.model is not None:
        try:
            client = redis.Redis.from_url(settings.redis())
        except SettingsError as exc:
            log.warning("%s: building with the vectors already indexed", exc)
    return Indexer(store, config, client, celery_reembed if client is not None else None)


def celery_reembed(items: list[tuple[str, str]]) -> None:
    """Queue ``lookalike.embed_images`` tasks for the workers, 16 images each."""
    from workers.app import app

    for start in range(0, len(items), 16):
        app.send_task("lookalike.embed_images", args=[[list(i) for i in items[start : start + 16]]])


PAIRS = "pairs.npz"


def _kind_column(
    gen_dir: Path, kind: str, ids: np.ndarray, values: np.ndarray, kinds: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.load(gen_dir / f"{kind}.rows.npy")
    return ids[rows], np.asarray(values[rows, kinds.index(kind)])


def _save_pairs(gen_dir: Path, pairs: list[Pair], key: str) -> None:
    tmp = gen_dir / ".pairs.tmp.npz"
    np.savez(
        tmp,
        key=np.array(key),
        a=np.array([p.a for p in pairs], dtype=str),
        b=np.array([p.b for p in pairs], dtype=str),
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
            return [
                Pair(a, b, k, int(d), bool(m))
                for a, b, k, d, m in zip(
                    z["a"].tolist(),
                    z["b"].tolist(),
                    z["kind"].tolist(),
                    z["distance"].tolist(),
                    z["mirrored"].tolist(),
                    strict=True,
                )
            ]
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None


def pairs_of_generation(
    gen_dir: Path,
    thresholds: Mapping[str, int | None],
    previous: Path | None = None,
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
    key = json.dumps(
        {"thresholds": dict(thresholds), "mirror": mirror, "hash_version": meta["hash_version"]},
        sort_keys=True,
    )
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
            found, joined[kind] = update_pairs(
                before, kind, kind_ids, kind_values, multi, threshold, old, mirror=mirror
            )
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


def verify_generation(
    gen_dir: Path,
    candidates: list[Pair],
    config: VerifyConfig | None = None,
    local: LocalPairs | None = None,
) -> list[Duplicate]:
    """The candidates of a generation that verification accepts (duplicates.verify_pairs),
    with the embedding cosines of its vectors when it has some, and ``local`` evidence."""
    meta = gens.read_meta(gen_dir)
    ids = np.asarray(np.load(gen_dir / "ids.npy"))
    values = np.load(gen_dir / "hashes.npy", mmap_mode="r")
    info, color = _evidence_columns(gen_dir, len(ids))
    return verify_pairs(
        ids,
        values,
        tuple(meta["kinds"]),
        info,
        color,
        candidates,
        config,
        _generation_cosines(gen_dir, meta, ids),
        local,
    )


def _generation_cosines(gen_dir: Path, meta: Mapping[str, Any], ids: np.ndarray) -> Cosines | None:
    """Cosines of a generation's hashed images (rows of ``ids``) by its raw vectors (memory
    mapped: only the judged pairs' rows are read); None when it has no vectors."""
    if not meta.get(vectorgen.META_KEY):
        return None
    try:
        vector_ids = np.load(gen_dir / "vectors.ids.npy")
        vectors = np.load(gen_dir / "vectors.npy", mmap_mode="r")
    except (FileNotFoundError, OSError, ValueError) as exc:
        log.warning(
            "cannot read the vectors of %s (%s): judging pairs by hashes alone", gen_dir.name, exc
        )
        return None
    return partial(pair_cosines, vectors, rows=lookup(vector_ids, ids))


def embedding_candidates_of(gen_dir: Path, config: VerifyConfig) -> list[Pair]:
    """Candidates no hash radius proposes: each hashed image's raw LOOKS_LIKE neighbours
    (the generation's top-k by embedding) at least ``config.min_cosine`` alike."""
    table = lookslike.LooksLike.load(gen_dir)
    if table is None or config.min_cosine is None:
        return []
    hashed = np.asarray(np.load(gen_dir / "ids.npy"))
    keep = (
        ~table.refined
        & (table.score >= config.min_cosine)
        & (lookup(hashed, table.a) >= 0)
        & (lookup(hashed, table.b) >= 0)
    )
    return embedding_candidates(table.a[keep], table.b[keep], table.score[keep])


class Indexer:
    def __init__(
        self,
        store: GraphStore,
        config: IndexerConfig,
        redis_client: redis.Redis | None = None,
        reembed: Reembed | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.redis = redis_client
        self.reembed = reembed
        self._waiting_for: int | None = None  # new hashes last reported as not enough yet
        # (generation, its pairs left to compare): read from its memo once, not every poll
        self._deferred: tuple[Path, int] | None = None

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
        if new != self._waiting_for:
            self._waiting_for = new
            log.info(
                "%d new hashes since the current generation; rebuilding at %d "
                "(LOOKALIKE_INDEX_REBUILD_MIN_NEW) or after the rebuild period",
                new,
                self.config.min_new,
            )
        # Titles arrive with fetches, which do not always bring new hashes (a re-fetch of an
        # unchanged thumbnail): counted on their own. A generation without a title index
        # (an offline build) gets one at the next period.
        fetched = count_new_titles(self.store, meta["titles"]["read_at"]) if "titles" in meta else 1
        if fetched >= self.config.min_new:
            return f"{fetched} images fetched since the title index was built"
        vectors = self._pending_vectors()
        if vectors >= self.config.min_new:
            return f"{vectors} new vectors"
        # At once, not after the period: the budget bounds each build, and until the pairs
        # are compared their verdicts are the hashes' alone.
        waiting = self._deferred_pairs() if self.config.view_dir else 0
        if waiting:
            return f"{waiting} candidate pairs wait to be compared on their views"
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        if now - meta["built_at"] >= self.config.period_s * 1000:
            if new:
                return f"{new} new hashes and {self.config.period_s:.0f}s passed"
            if fetched:
                return f"{fetched} images fetched and {self.config.period_s:.0f}s passed"
            if vectors:
                return f"{vectors} new vectors and {self.config.period_s:.0f}s passed"
            if count_hashed(self.store) != meta.get("source_rows", meta["images"]):
                return "hashed images removed or changed"
        return None

    def build_once(
        self, reason: str = "on demand", table: HashTable | None = None, write_graph: bool = True
    ) -> RunReport:
        """Read (unless ``table`` is given), build, publish, pair and write back. The title
        index is read from the graph too, unless ``table`` is given (an offline build)."""
        started = time.perf_counter()
        rows = None
        titles = None
        if table is None:
            titles = read_all_titles(self.store)
            rows = read_index_rows(self.store)  # the graph first, then the stream: see vectors
            table = hash_table(rows, self.config.kinds)
        vector_inputs, merged = self._vectors(rows) if rows is not None else (None, None)
        extra: ExtraFiles | None = None
        if vector_inputs is not None:
            options = vectorgen.VectorOptions(
                self.config.trees, self.config.vector_exact_max, self.config.search_k
            )
            hashes = table

            def extra(folder: Path) -> dict[str, Any]:
                return vectorgen.write(folder, vector_inputs, hashes, options)

        previous_gen = self._current_path()
        result = build_generation(
            self.config.index_dir,
            table,
            trees=self.config.trees,
            n_jobs=self.config.n_jobs,
            keep=self.config.keep,
            extra_meta={"reason": reason},
            titles=titles,
            extra_files=extra,
        )
        previous = [n for n in gens.generations(self.config.index_dir) if n < result.number]
        candidates, joined = pairs_of_generation(
            result.path,
            self.config.candidate_radii,
            self.config.index_dir / gens.gen_name(previous[-1]) if previous else None,
        )
        log.info("near-duplicate join per kind (images joined, -1 = all): %s", joined)
        candidates = [*candidates, *embedding_candidates_of(result.path, self.config.verify)]
        local = self._local(
            self.config.index_dir / gens.gen_name(previous[-1]) if previous else None
        )
        pairs = verify_generation(result.path, candidates, self.config.verify, local)
        if local is not None:
            save_memo(result.path, local.found, local.deferred)
        groups = group_duplicates(pairs)
        report = None
        looks = None
        if write_graph:
            report = write_near_duplicates(self.store, pairs, groups, run=result.number)
            if vector_inputs is not None:
                looks = self._write_looks_like(result, previous_gen)
        reembed = self._after_publish(merged) if merged is not None else 0
        seconds = time.perf_counter() - started
        log.info(
            "%s (%s): %d images, %d candidates (%d compared locally, %d as at the last "
            "build, %d left for the next), %d verified near-duplicate pairs in %d groups, %.1fs",
            result.path.name,
            reason,
            result.images,
            len(candidates),
            local.compared if local is not None else 0,
            local.reused if local is not None else 0,
            local.deferred if local is not None else 0,
            len(pairs),
            len({g for g, _ in groups.values()}),
            seconds,
        )
        return RunReport(
            result,
            len(pairs),
            len({g for g, _ in groups.values()}),
            report,
            seconds,
            joined,
            len({(p.a, p.b) for p in candidates}),
            vectors=len(merged.table) if merged is not None else 0,
            looks_like=looks,
            missing=len(merged.missing) if merged is not None else 0,
            reembed=reembed,
            local=local.compared if local is not None else 0,
            local_reused=local.reused if local is not None else 0,
            local_deferred=local.deferred if local is not None else 0,
        )

    def _deferred_pairs(self) -> int:
        """How many pairs the current generation's build left to compare."""
        current = self._current_path()
        if self._deferred is None or self._deferred[0] != current:
            self._deferred = (current, deferred_pairs(current)) if current else None
        return self._deferred[1] if self._deferred else 0

    def _local(self, previous: Path | None) -> PairLocal | None:
        """Local evidence from the workers' views, read pair by pair, reusing what the
        ``previous`` generation's build found for pairs whose views are unchanged."""
        if self.config.view_dir is None:
            return None
        # Read only: the workers that write the views keep the store within its budget.
        views = ViewStore(self.config.view_dir, max_bytes=0)
        return PairLocal(
            views.get,
            versions=views.version,
            memo=load_memo(previous),
            budget=self.config.local_per_build or None,
        )

    # ------------------------------------------------------------------ vectors

    def _current_path(self) -> Path | None:
        try:
            return gens.current_path(self.config.index_dir)
        except gens.NoGeneration:
            return None

    def _pending_vectors(self) -> int:
        if self.config.model is None or self.redis is None:
            return 0
        try:
            return stream.pending(self.redis)
        except redis.RedisError as exc:
            log.warning("cannot count the vectors waiting in Redis: %s", exc)
            return 0

    def _vectors(
        self, rows: list[dict[str, Any]]
    ) -> tuple[vectorgen.VectorInputs | None, Merge | None]:
        """What the new generation's vector half is made of: the graph's word (``rows``,
        read before the stream), the previous generation's vectors and the stream's."""
        model = self.config.model
        if model is None:
            return None, None
        graph = graph_embeddings(rows)
        entries: list[stream.VectorEntry] = []
        upto = "0-0"
        if self.redis is not None:
            try:
                entries, upto, bad = stream.read_all(self.redis)
                if bad:
                    log.warning("%d malformed vectors in Redis were skipped", bad)
            except redis.RedisError as exc:
                log.warning(
                    "cannot read the vectors waiting in Redis (%s): building with "
                    "those already indexed",
                    exc,
                )
        previous = None
        current = self._current_path()
        if current is not None:
            previous = vectorgen.load_table(current, gens.read_meta(current))
        merged = merge(model, graph, previous, entries, int(time.time() * 1000))
        if merged.dim_rejected:
            log.warning(
                "%d vectors had another width than the model's and were dropped",
                merged.dim_rejected,
            )
        edges = read_edges(self.store)
        colours = {r["id"]: r.get("average_color") for r in rows}
        fetched = {r["id"] for r in rows if r.get("fetched")}
        inputs = vectorgen.VectorInputs(
            merged.table,
            edges,
            colours,
            fetched,
            self.config.refine,
            self.config.looks_like_k,
            upto,
        )
        return inputs, merged

    def _write_looks_like(
        self, result: BuildResult, previous_gen: Path | None
    ) -> LooksLikeReport | None:
        table = lookslike.LooksLike.load(result.path)
        if table is None:
            return None
        old = lookslike.LooksLike.load(previous_gen) if previous_gen is not None else None
        if old is not None and count_looks_like(self.store) != len(old):
            old = None  # the graph is not what the last build left: write it all
        diff = lookslike.diff(table, old)
        report = write_looks_like(self.store, table, diff, run=result.number)
        log.info(
            "LOOKS_LIKE: %d written, %d removed (%s)",
            report.written,
            report.removed,
            "full" if report.full else "changes only",
        )
        return report

    def _after_publish(self, merged: Merge) -> int:
        """Once the generation holds the vectors: delete them from Redis, clear the marks of
        re-embeds seen through, and hand the missing ones to the workers. Returns how many
        images were handed over."""
        if self.redis is None:
            return 0
        try:
            stream.delete(self.redis, merged.consumed)
            asked = stream.requested_reembeds(self.redis)
            have = set(merged.table.ids.tolist())
            stream.forget_reembed(self.redis, [i for i in asked if i in have])
            if merged.missing:
                log.warning(
                    "%d images are embedded by the current model in the graph but "
                    "their vectors were lost (Redis flushed or the stream capped while "
                    "the indexer was away): embedding them again",
                    len(merged.missing),
                )
            if not self.config.reembed_limit or self.reembed is None:
                return 0
            want = (merged.missing + merged.unembedded)[: self.config.reembed_limit]
            due = stream.request_reembed(self.redis, want, int(time.time() * 1000))
        except redis.RedisError as exc:
            log.warning("cannot clean up the vectors in Redis (%s); next build will", exc)
            return 0
        items = [(i, merged.thumbnails[i]) for i in due if merged.thumbnails.get(i)]
        if items:
            self.reembed(items)
        return len(items)

    def run(
        self,
        stop: threading.Event | None = None,
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
            stop.wait(min(self.config.poll_s * 2 ** min(failures, 5), 300.0))
