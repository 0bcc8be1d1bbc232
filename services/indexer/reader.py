"""Read side of the index, for the API and the CLI: fresh, complete, thread-safe.

- Fresh: the published generation is mapped (Annoy mmaps its file; numpy arrays are opened
  with mmap_mode) and a newer one is picked up within ``check_interval`` seconds, by
  swapping one reference. A query takes that reference once, so it runs on one generation
  from start to end even while another thread swaps, and the old generation's maps are
  released when the last query using it returns.
- Complete: images hashed after the generation was built are fetched from the graph
  (``HashSource.hashes_since``, cached ``delta_ttl`` seconds so a burst of queries asks the
  graph once) and scanned exactly; a newly hashed image is findable at once. A re-hashed
  image's new hash replaces the generation's old one. The graph is not asked at all when
  the workers' mark (``WriteMarks``, lookalike.hashmark) shows that nothing was written
  since the generation's graph read: then the generation alone is complete, and its
  titles are current (``titles_of``).
- Exact where it matters, and a scan where the scan is faster: kinds with at most
  ``EXACT_SCAN_MAX`` hashes are simply scanned; larger ones answer near-duplicate radii
  (<= ``NEAR_RADIUS_MAX``) exactly from the multi-index tables, and nearest-k beyond the
  near-duplicate radius from an exact scan, or from Annoy's candidates re-ranked by exact
  distance where the generation has an Annoy index (kinds over ``build.ANNOY_MIN_ITEMS``
  hashes, where it is faster than the scan). Larger radii fall back to an exact scan. The
  scan is compiled (popscan.py, a C loop that costs a process nothing to load) and answers
  nearest first; a direct query with no recent hashes skips the merging of matches
  (``_gen_only``): on a scanned kind the reader costs that scan plus ~2 us, less than
  numpy's plain scan at every size (bench/README.md, index). Where the extension could not
  be built (no C compiler at install), kinds are scanned with numpy (bits.OrderedScanner),
  in the same order, and the reader says so once in its log.
- Mirror-invariant: with ``mirror=True`` the mirrored picture's hash is searched too (from
  the pixels for ``search_image``, derived from the hash otherwise; see bits.py).
- Vectors: the generation's raw and refined embeddings and the vectors embedded since
  (``VectorSource``, the Redis stream), through ``vectors()`` (a consistent ``VectorView``),
  ``vector_of``, ``cosine``, ``lookalikes`` and ``nearest_vector``; see vecread.py.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from annoy import AnnoyIndex
from PIL import Image

from lookalike import hashmark, localmatch
from lookalike.hashing import (
    HASH_BITS,
    HASH_KINDS,
    HashSet,
    decode_image,
    hash_image,
    hashes_both_ways,
    mirrored_hashes,
)
from services.indexer import generations as gens
from services.indexer import popscan
from services.indexer.bits import OrderedScanner, bit_rows, check_kind, mirror_value, parse_hex
from services.indexer.localpairs import QueryLocal, ViewSource
from services.indexer.multindex import CHUNKS, MultiIndex
from services.indexer.npmap import load_mapped
from services.indexer.ranking import Candidates, Ranked, Signature, rank, stack_vectors
from services.indexer.recent import Recent, VectorSource
from services.indexer.table import COLOR_BYTES, HashTable, parse_color
from services.indexer.titles import TitleTexts
from services.indexer.vecread import GenVectors, Lookalike, NoVector, VectorView
from services.indexer.verify import CANDIDATE_RADII, VerifyConfig

log = logging.getLogger(__name__)

# Multi-index lookups stay cheaper than a scan while each of the 4 chunks is searched with at
# most 2 flipped bits (137 buckets per chunk); radius 11 is the largest with r // 4 == 2.
NEAR_RADIUS_MAX = 3 * CHUNKS - 1
# Up to this many hashes of a kind, one exact (compiled) scan beats the multi-index lookups,
# whose 548 random reads of a 256 KB offset table miss the cache: it took 0.4x their time at
# 100k, 0.6x at 200k, and was level with them at 1M (bench/README.md, index).
EXACT_SCAN_MAX = 500_000
# nearest(k) in large kinds first takes every hash this close exactly, then scans or asks Annoy
# for the rest.
NEAR_RADIUS = 10
# The one ranking judges at most this many candidates per kind and orientation (the nearest):
# a copy is among a kind's nearest few, and a dense region of look-alikes (pages of text)
# must not make every search judge thousands.
RANK_CANDIDATES = 64
# Hashes are written with a hashed_at taken before their transaction commits, so a hash can
# become visible after the generation's newest hashed_at: re-read this much further back.
DELTA_SLACK_MS = 120_000


@functools.cache
def _say_numpy_scan() -> None:
    log.warning(
        "the compiled hash scan (services/indexer/_popscan.c) is not built: scanning with "
        "numpy, slower; reinstall Lookalike where a C compiler exists (scripts/setup.sh)"
    )


class HashSource(Protocol):
    """Where the reader learns of hashes newer than its generation (the graph, in service)."""

    def hashes_since(self, since_ms: int) -> HashTable: ...


class WriteMarks(Protocol):
    """Where the reader learns the newest image write the workers announced (epoch ms;
    None: not known), to skip asking the ``HashSource`` (lookalike.hashmark)."""

    def newest(self) -> int | None: ...


class Scanner(Protocol):
    """An exact scan of one kind's hashes, answering nearest first (ties by position):
    popscan.FusedScanner (compiled) or bits.OrderedScanner (numpy)."""

    def within(self, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]: ...

    def nearest(self, query: int, k: int) -> tuple[np.ndarray, np.ndarray]: ...


class UnknownImage(LookupError):
    """An image id that has no hashes in the index or among the recent hashes."""


class Match(NamedTuple):
    """One answer. A named tuple, not a frozen dataclass: building one costs ~0.1 us instead
    of ~1 us, which for nearest-10 was a third of the fixed cost of a query."""

    id: str
    distance: int
    mirrored: bool = False  # found through the mirrored picture's hash


@dataclass(frozen=True)
class GenerationInfo:
    name: str
    number: int
    path: Path
    built_at: int
    hashed_at_max: int
    images: int
    kinds: dict[str, Any]
    # When the build's graph read began (epoch ms; the titles are read first): None when
    # not known (a build without titles, as from a hash file).
    read_at: int | None = None


@dataclass
class _KindIndex:
    bits: int
    annoy: AnnoyIndex | None  # None: no Annoy index for this kind (nearest-k scans)
    rows: np.ndarray  # item -> row in the generation's tables
    multi: MultiIndex
    values: np.ndarray  # the kind's hashes, item order, contiguous: what scans read
    _local: threading.local = field(default_factory=threading.local)

    def __post_init__(self) -> None:
        # Usually every image has every kind: then item i is row i and needs no lookup.
        self.identity = len(self.rows) == 0 or int(self.rows[-1]) == len(self.rows) - 1

    def row_of(self, items: np.ndarray) -> np.ndarray:
        return items if self.identity else self.rows[items]

    def scanner(self) -> Scanner:
        """This thread's scanner over the kind: its buffers are reused query after query
        (allocating them per query made large scans slower than the tables)."""
        scanner: Scanner | None = getattr(self._local, "scanner", None)
        if scanner is None:
            compiled = popscan.COMPILED
            scanner = popscan.FusedScanner(self.values) if compiled else OrderedScanner(self.values)
            self._local.scanner = scanner
        return scanner


@dataclass
class _Generation:
    info: GenerationInfo
    ids: np.ndarray  # sorted
    values: np.ndarray
    kinds: tuple[str, ...]
    index: dict[str, _KindIndex]
    information: np.ndarray  # per row (NaN: not measured)
    color: np.ndarray  # per row, int8 colour layout cells
    vectors: GenVectors | None = None

    @classmethod
    def load(cls, path: Path) -> _Generation:
        meta = gens.read_meta(path)
        kinds = tuple(meta["kinds"])
        hashes = load_mapped(path / "hashes.npy")
        index = {}
        for k, kind in enumerate(kinds):
            bits = int(meta["kinds"][kind]["bits"])
            annoy = None
            if (path / f"{kind}.ann").exists():
                annoy = AnnoyIndex(bits, "hamming")
                annoy.load(str(path / f"{kind}.ann"), prefault=True)
            rows = load_mapped(path / f"{kind}.rows.npy")
            index[kind] = _KindIndex(
                bits,
                annoy,
                rows,
                MultiIndex.load(path, kind, bits),
                np.ascontiguousarray(hashes[rows, k]),
            )
        info = GenerationInfo(
            path.name,
            gens.gen_number(path.name),
            path,
            int(meta["built_at"]),
            int(meta["hashed_at_max"]),
            int(meta["images"]),
            meta["kinds"],
            int(meta["titles"]["read_at"]) if "titles" in meta else None,
        )
        ids = load_mapped(path / "ids.npy")
        information = (
            load_mapped(path / "info.npy")
            if (path / "info.npy").exists()
            else np.full(len(ids), np.nan, np.float32)
        )
        color = (
            load_mapped(path / "color.npy")
            if (path / "color.npy").exists()
            else np.zeros((len(ids), COLOR_BYTES), np.int8)
        )
        return cls(info, ids, hashes, kinds, index, information, color, GenVectors.load(path, meta))

    def row_of(self, image_id: str) -> int | None:
        i = int(np.searchsorted(self.ids, image_id))
        return i if i < len(self.ids) and self.ids[i] == image_id else None

    @functools.cached_property
    def texts(self) -> TitleTexts | None:
        return TitleTexts.load(self.info.path)


@dataclass
class _Delta:
    table: HashTable
    since: int
    fetched: float
    ids: set[str] = field(default_factory=set)
    # The workers' mark showed nothing written since the generation's graph read: the
    # (empty) table was not read from the graph.
    settled: bool = False


class IndexReader:
    """Queries over the newest index generation plus the hashes added since it was built."""

    def __init__(
        self,
        index_dir: Path,
        source: HashSource | None = None,
        *,
        search_k: int = 2000,
        delta_ttl: float = 1.0,
        check_interval: float = 1.0,
        delta_slack_ms: int = DELTA_SLACK_MS,
        max_pixels: int = 40_000_000,
        exact_scan_max: int = EXACT_SCAN_MAX,
        vectors: VectorSource | None = None,
        model: str | Callable[[], str | None] | None = None,
        verify: VerifyConfig | None = None,
        views: ViewSource | None = None,
        marks: WriteMarks | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        # The workers' mark of their newest write (None: always ask the source).
        self.marks = marks
        # The stored images' verification views (lookalike.viewstore; None: the ranking
        # judges without local evidence).
        self.views = views
        if not popscan.COMPILED:
            _say_numpy_scan()
        self.verify = verify or VerifyConfig()  # how the one ranking judges
        self.source = source
        self.vector_source = vectors
        # The embedding model to answer for (None: the generation's); a function is called
        # once, when vectors are first compared (naming the model checksums its weights).
        self._model = model
        self.search_k = search_k
        self.delta_ttl = delta_ttl
        self.check_interval = check_interval
        self.delta_slack_ms = delta_slack_ms
        self.max_pixels = max_pixels
        self.exact_scan_max = exact_scan_max
        self._gen: _Generation | None = None
        self._checked = 0.0
        self._load_lock = threading.Lock()
        self._delta: _Delta | None = None
        self._delta_lock = threading.Lock()
        self.reload()

    # ------------------------------------------------------------------ generations

    def reload(self, wait: bool = True) -> bool:
        """Switch to the published generation if it changed; True when it did.

        A generation that fails to load (say, removed between reading CURRENT and opening
        it) is logged and the current one kept; the next check tries again. With
        ``wait=False`` a reload already under way elsewhere is not waited for: queries keep
        answering from the generation they have while one thread maps the new one.
        """
        if not self._load_lock.acquire(blocking=wait):
            return False
        try:
            self._checked = time.monotonic()
            try:
                name = gens.current_name(self.index_dir)
            except (OSError, ValueError) as exc:
                log.warning("cannot read %s: %s", self.index_dir / gens.CURRENT, exc)
                return False
            if name is None or (self._gen is not None and self._gen.info.name == name):
                return False
            try:
                loaded = _Generation.load(self.index_dir / name)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("cannot load index generation %s: %s", name, exc)
                return False
            self._gen = loaded
            if self.vector_source is not None and loaded.vectors is not None:
                self.vector_source.prune(
                    np.asarray(loaded.vectors.ids), np.asarray(loaded.vectors.at)
                )
            log.info("index reader now on %s (%d images)", name, loaded.info.images)
            return True
        finally:
            self._load_lock.release()

    def _snapshot(self) -> _Generation | None:
        if time.monotonic() - self._checked >= self.check_interval:
            self.reload(wait=self._gen is None)
        return self._gen

    @property
    def generation(self) -> GenerationInfo | None:
        gen = self._snapshot()
        return gen.info if gen else None

    # ------------------------------------------------------------------ recent hashes

    def _recent(self, gen: _Generation | None) -> _Delta | None:
        if self.source is None:
            return None
        since = max(0, gen.info.hashed_at_max - self.delta_slack_ms) if gen else 0
        with self._delta_lock:
            d = self._delta
            if d is None or d.since != since or time.monotonic() - d.fetched > self.delta_ttl:
                if self._settled(gen):
                    d = _Delta(HashTable.empty(), since, time.monotonic(), settled=True)
                else:
                    table = self.source.hashes_since(since)
                    d = _Delta(table, since, time.monotonic(), set(table.ids.tolist()))
                self._delta = d
            return d

    def _settled(self, gen: _Generation | None) -> bool:
        """Whether the workers' mark shows nothing written since ``gen``'s graph read."""
        if gen is None or self.marks is None or gen.info.read_at is None:
            return False
        return hashmark.settled(self.marks.newest(), gen.info.read_at, self.delta_slack_ms)

    def titles_of(self, ids: Iterable[str]) -> dict[str, str]:
        """The titles the generation holds of ``ids`` ("" for an image it holds untitled),
        when they are current: the workers' mark shows nothing written since its graph
        read. Ids it does not answer for (all of them otherwise) are left out: ask the
        graph for those."""
        gen = self._snapshot()
        delta = self._recent(gen)
        if gen is None or delta is None or not delta.settled or gen.texts is None:
            return {}
        wanted = list(dict.fromkeys(ids))
        out = gen.texts.get(wanted)
        for image_id in wanted:
            if image_id not in out and gen.row_of(image_id) is not None:
                out[image_id] = ""
        return out

    # ------------------------------------------------------------------ queries

    def hashes_of(self, image_id: str) -> dict[str, str]:
        """The stored hashes of an image (newest first: recent hashes, then the index)."""
        gen = self._snapshot()
        return self._hashes_of(gen, self._recent(gen), image_id)

    def _hashes_of(
        self, gen: _Generation | None, delta: _Delta | None, image_id: str
    ) -> dict[str, str]:
        if delta is not None and image_id in delta.ids:
            t = delta.table
            i = int(np.flatnonzero(t.ids == image_id)[-1])
            return {
                k: format(int(t.values[i, j]), f"0{HASH_BITS[k] // 4}x")
                for j, k in enumerate(t.kinds)
                if t.present[i, j]
            }
        if gen is not None:
            row = gen.row_of(image_id)
            if row is not None:
                out = {}
                for j, k in enumerate(gen.kinds):
                    # present-ness per kind: the image is among the kind's items
                    ki = gen.index[k]
                    pos = int(np.searchsorted(ki.rows, row))
                    if pos < len(ki.rows) and ki.rows[pos] == row:
                        out[k] = format(int(gen.values[row, j]), f"0{ki.bits // 4}x")
                return out
        raise UnknownImage(
            f"image {image_id!r} has no hashes in the index (unknown id, not hashed yet, "
            "or its thumbnail could not be hashed)"
        )

    def _query_value(
        self,
        gen: _Generation | None,
        delta: _Delta | None,
        kind: str,
        hash: str | None,
        image_id: str | None,
    ) -> int:
        if (hash is None) == (image_id is None):
            raise ValueError("give exactly one of hash= or image_id=")
        if hash is not None:
            return parse_hex(kind, hash)
        hashes = self._hashes_of(gen, delta, image_id or "")
        if kind not in hashes:
            raise UnknownImage(f"image {image_id!r} has no {kind} hash")
        return int(hashes[kind], 16)

    def _queries(
        self, kind: str, hash: str | None, image_id: str | None, mirror: bool
    ) -> tuple[_Generation | None, _Delta | None, list[tuple[int, bool]]]:
        """One consistent view (generation + recent hashes) and the values to look up: the
        query hash, and with ``mirror`` the hash of the flipped picture too."""
        gen = self._snapshot()
        delta = self._recent(gen)
        value = self._query_value(gen, delta, kind, hash, image_id)
        queries = [(value, False)]
        if mirror:
            queries.append((mirror_value(kind, value), True))
        return gen, delta, queries

    def within(
        self,
        kind: str,
        *,
        hash: str | None = None,
        image_id: str | None = None,
        radius: int,
        mirror: bool = False,
    ) -> list[Match]:
        """Every image within ``radius`` bits (exact), nearest first. With ``image_id``
        the image itself is left out."""
        check_kind(kind)
        if radius < 0:
            raise ValueError(f"radius must be >= 0, not {radius}")
        gen, delta, queries = self._queries(kind, hash, image_id, mirror)
        if gen is not None and _gen_alone(delta, queries):
            return _gen_only(gen, self._gen_within(gen, kind, queries[0][0], radius), image_id)
        return self._within_merged(gen, delta, kind, queries, radius, image_id)

    def _within_merged(
        self,
        gen: _Generation | None,
        delta: _Delta | None,
        kind: str,
        queries: list[tuple[int, bool]],
        radius: int,
        exclude: str | None,
    ) -> list[Match]:
        """``within`` in general: the generation's and the recent hashes' matches of every
        query value, each image's best kept."""
        found: dict[str, tuple[int, bool]] = {}
        for q, mirrored in queries:
            for image, dist in self._within_value(gen, delta, kind, q, radius):
                _keep_best(found, image, dist, mirrored)
        return _ranked(found, exclude=exclude)

    def nearest(
        self,
        kind: str,
        *,
        hash: str | None = None,
        image_id: str | None = None,
        k: int = 10,
        mirror: bool = False,
        max_distance: int | None = None,
    ) -> list[Match]:
        """The ``k`` nearest images, nearest first. Exact, except beyond ``NEAR_RADIUS`` in
        kinds with an Annoy index: there farther neighbours are Annoy's candidates, re-ranked
        exactly."""
        check_kind(kind)
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}")
        gen, delta, queries = self._queries(kind, hash, image_id, mirror)
        want = k + (1 if image_id is not None else 0)
        if gen is not None and _gen_alone(delta, queries) and not self._uses_annoy(gen, kind):
            hits = _gen_only(gen, self._gen_nearest(gen, kind, queries[0][0], want), image_id)
            if max_distance is not None:
                hits = [m for m in hits if m.distance <= max_distance]
            return hits[:k]
        return self._nearest_merged(gen, delta, kind, queries, k, image_id, max_distance)

    def _nearest_merged(
        self,
        gen: _Generation | None,
        delta: _Delta | None,
        kind: str,
        queries: list[tuple[int, bool]],
        k: int,
        exclude: str | None,
        max_distance: int | None,
    ) -> list[Match]:
        """``nearest`` in general: the nearest of every query value among the generation's
        and the recent hashes, each image's best kept."""
        want = k + (1 if exclude is not None else 0)
        found: dict[str, tuple[int, bool]] = {}
        for q, mirrored in queries:
            for image, dist in self._nearest_value(gen, delta, kind, q, want):
                if max_distance is None or dist <= max_distance:
                    _keep_best(found, image, dist, mirrored)
        return _ranked(found, exclude=exclude, limit=k)

    def _uses_annoy(self, gen: _Generation, kind: str) -> bool:
        """Whether nearest-k in ``kind`` goes through Annoy (else: one exact scan)."""
        ki = gen.index.get(kind)
        return ki is not None and ki.annoy is not None and len(ki.rows) > self.exact_scan_max

    def search_image(
        self,
        image: bytes | Image.Image,
        *,
        kinds: Iterable[str] = ("phash", "dhash"),
        k: int = 10,
        max_distance: int | None = None,
        mirror: bool = True,
    ) -> dict[str, list[Match]]:
        """Nearest stored images to a picture, per hash kind. With ``mirror`` the flipped
        picture is hashed and searched too, so a mirrored copy is found."""
        if isinstance(image, bytes | bytearray):
            image = decode_image(bytes(image), max_pixels=self.max_pixels)
        elif isinstance(image, io.IOBase):
            image = decode_image(image.read(), max_pixels=self.max_pixels)
        hashes = hash_image(image).as_dict()
        flipped = mirrored_hashes(image).as_dict() if mirror else {}
        out: dict[str, list[Match]] = {}
        for kind in kinds:
            check_kind(kind)
            found: dict[str, tuple[int, bool]] = {}
            for m in self.nearest(kind, hash=hashes[kind], k=k, max_distance=max_distance):
                _keep_best(found, m.id, m.distance, m.mirrored)
            if mirror:
                for m in self.nearest(kind, hash=flipped[kind], k=k, max_distance=max_distance):
                    _keep_best(found, m.id, m.distance, True)
            out[kind] = _ranked(found, limit=k)
        return out

    # ------------------------------------------------------------------ one ranking

    def signature_of(self, image_id: str) -> Signature:
        """Everything the index knows of one image, for ``rank``."""
        gen = self._snapshot()
        return self._signature_of(gen, self._recent(gen), image_id)

    def _signature_of(
        self, gen: _Generation | None, delta: _Delta | None, image_id: str
    ) -> Signature:
        hashes = {k: int(v, 16) for k, v in self._hashes_of(gen, delta, image_id).items()}
        if delta is not None and image_id in delta.ids:
            t = delta.table
            i = int(np.flatnonzero(t.ids == image_id)[-1])
            assert t.info is not None and t.color is not None
            return Signature(hashes, float(t.info[i]), np.asarray(t.color[i]))
        assert gen is not None  # _hashes_of found the image in the generation
        row = gen.row_of(image_id)
        return Signature(hashes, float(gen.information[row]), np.asarray(gen.color[row]))

    def rank(
        self,
        query: Signature,
        *,
        k: int = 10,
        exclude: str | None = None,
        config: VerifyConfig | None = None,
        picture: Callable[[], np.ndarray | None] | None = None,
    ) -> list[Ranked]:
        """The ``k`` stored images most like ``query``, in the one order of ranking.py:
        candidates are, per candidate kind and orientation (direct, mirrored), the images
        within its candidate radius (at most the ``RANK_CANDIDATES`` nearest) or, when
        fewer than ``k + 1`` are, its ``RANK_CANDIDATES`` nearest, and with the query's
        embedding its ``RANK_CANDIDATES`` nearest by cosine; each judged on all its
        evidence (the embedding cosine of those with a vector; with the stored views, the
        query's verification view, made or read by ``picture``, compared with theirs)."""
        config = config or self.verify
        gen = self._snapshot()
        delta = self._recent(gen)
        want = max(k + (1 if exclude else 0), RANK_CANDIDATES)
        found: set[str] = set()
        for kind, radius in CANDIDATE_RADII.items():
            if kind not in query.hashes:
                continue
            for value in {query.hashes[kind], query.mirror_hash(kind)}:
                near = self._within_value(gen, delta, kind, value, radius)
                if len(near) < k + 1:
                    # The ``want`` nearest, whether or not recent hashes are scanned beside
                    # the generation (asking for k + 1 got more when there were some: the
                    # answer depended on their number).
                    near = self._nearest_value(gen, delta, kind, value, want)
                near.sort(key=lambda pair: (pair[1], pair[0]))
                found.update(image for image, _ in near[:want])
        view = self.vectors() if query.vector is not None else None
        if view is not None and view.count:
            assert query.vector is not None
            # only images with hashes: vectors may be known of images the index is yet to
            # hash (or that were never hashed), and hashes are the rest of the evidence
            recent = delta.ids if delta is not None else set()
            found.update(
                m.id
                for m in view.nearest(query.vector, want, exclude=exclude)
                if m.id in recent or (gen is not None and gen.row_of(m.id) is not None)
            )
        found.discard(exclude or "")
        candidates = self._candidates(gen, delta, sorted(found))
        if view is not None and view.count:
            candidates = replace(candidates, vectors=_vectors_of(view, candidates.ids))
        local = None
        if self.views is not None and picture is not None:
            local = QueryLocal(picture, self.views)
        return rank(query, candidates, k=k, config=config, exclude=exclude, local=local)

    def _candidates(
        self, gen: _Generation | None, delta: _Delta | None, ids: list[str]
    ) -> Candidates:
        """The columns of ``ids`` (recent hashes first, then the generation's)."""
        n = len(ids)
        values = np.zeros((n, len(HASH_KINDS)), np.uint64)
        present = np.zeros((n, len(HASH_KINDS)), bool)
        information = np.full(n, np.nan)
        color = np.zeros((n, COLOR_BYTES), np.int8)
        recent = delta.ids if delta is not None else set()
        from_delta = [i for i, image in enumerate(ids) if image in recent]
        if from_delta and delta is not None:
            t = delta.table
            latest = {image: row for row, image in enumerate(t.ids.tolist())}  # last wins
            rows = np.array([latest[ids[i]] for i in from_delta])
            for j, kind in enumerate(HASH_KINDS):
                if kind in t.kinds:
                    values[from_delta, j] = t.values[rows, t.kinds.index(kind)]
                    present[from_delta, j] = t.present[rows, t.kinds.index(kind)]
            assert t.info is not None and t.color is not None
            information[from_delta] = t.info[rows]
            color[from_delta] = t.color[rows]
        rest = [i for i, image in enumerate(ids) if image not in recent]
        if rest and gen is not None:
            rows = np.searchsorted(gen.ids, np.array([ids[i] for i in rest]))
            for j, kind in enumerate(HASH_KINDS):
                if kind in gen.kinds:
                    ki = gen.index[kind]
                    pos = np.minimum(np.searchsorted(ki.rows, rows), len(ki.rows) - 1)
                    values[rest, j] = gen.values[rows, gen.kinds.index(kind)]
                    present[rest, j] = ki.rows[pos] == rows if len(ki.rows) else False
            information[rest] = gen.information[rows]
            color[rest] = gen.color[rows]
        return Candidates(ids, values, present, information, color)

    def rank_id(
        self, image_id: str, *, k: int = 10, config: VerifyConfig | None = None
    ) -> list[Ranked]:
        """The near-duplicates and closest images of a stored image (itself left out), its
        stored embedding weighed when it has one."""
        query = replace(self.signature_of(image_id), vector=self.vector_or_none(image_id))
        views = self.views
        picture = None if views is None else functools.partial(views, image_id)
        return self.rank(query, k=k, exclude=image_id, config=config, picture=picture)

    def rank_image(
        self,
        image: bytes | Image.Image,
        *,
        k: int = 10,
        mirror: bool = True,
        config: VerifyConfig | None = None,
        vector: np.ndarray | None = None,
    ) -> tuple[HashSet, list[Ranked]]:
        """The stored images most like a picture (its hashes, and the ranked answer). With
        ``mirror`` the flipped picture is hashed from its pixels too; ``vector``: the
        picture's embedding (by the index's model), weighed too."""
        if isinstance(image, bytes | bytearray):
            image = decode_image(bytes(image), max_pixels=self.max_pixels)
        if mirror:
            hashed, flipped_set = hashes_both_ways(image)
            flipped: dict[str, str] | None = flipped_set.as_dict()
        else:
            hashed, flipped = hash_image(image), None
        query = Signature(
            {k: int(v, 16) for k, v in hashed.as_dict().items()},
            hashed.info,
            parse_color(hashed.color),
            {k: int(v, 16) for k, v in flipped.items()} if flipped else None,
        )
        if not mirror:  # the mirror image is never considered: compare it with itself
            query = Signature(query.hashes, query.information, query.color, query.hashes)
        decoded = image
        return hashed, self.rank(
            replace(query, vector=vector),
            k=k,
            config=config,
            picture=lambda: localmatch.view(decoded),
        )

    # ------------------------------------------------------------------ vectors

    @property
    def model(self) -> str | None:
        if callable(self._model):
            self._model = self._model()
        return self._model

    def vectors(self) -> VectorView:
        """One consistent view of every vector: the generation's and the recent ones."""
        gen = self._snapshot()
        gen_vectors = gen.vectors if gen is not None else None
        model = self.model or (gen_vectors.model if gen_vectors is not None else None)
        recent = Recent.empty()
        if self.vector_source is not None:
            recent, model = self.vector_source.recent(model)
        return VectorView(gen_vectors, recent, model, self.search_k)

    def any_vectors(self) -> bool:
        """Whether the generation holds a vector or one was embedded since, of any model: when
        none is, no query needs the model named."""
        gen = self._snapshot()
        if gen is not None and gen.vectors is not None and len(gen.vectors.ids):
            return True
        return self.vector_source is not None and bool(len(self.vector_source.recent(None)[0]))

    def vector_of(self, image_id: str, refined: bool = False) -> np.ndarray:
        """The image's unit vector (refined: by the last build's propagation; an image
        embedded since has only its raw one). Raises ``NoVector``."""
        return self.vectors().vector(image_id, refined)[0]

    def vector_or_none(self, image_id: str) -> np.ndarray | None:
        """The image's raw vector, or None when it has none."""
        try:
            return self.vectors().vector(image_id)[0]
        except NoVector:
            return None

    def cosine(self, a: str, b: str, refined: bool = False) -> float:
        """The cosine of two images' vectors. Raises ``NoVector``."""
        return self.vectors().cosine(a, b, refined)

    def lookalikes(self, image_id: str, k: int = 10, refined: bool = False) -> list[Lookalike]:
        """The ``k`` images whose vectors are nearest the image's, best first."""
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}")
        view = self.vectors()
        vector, is_refined = view.vector(image_id, refined)
        return view.nearest(vector, k, refined, exclude=image_id, query_refined=is_refined)

    def nearest_vector(
        self, vector: np.ndarray, k: int = 10, refined: bool = False
    ) -> list[Lookalike]:
        """The ``k`` images whose vectors are nearest ``vector`` (a query's raw embedding;
        with ``refined``, put in the refined vectors' space first)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}")
        view = self.vectors()
        query = view.refined_space(vector)[0] if refined else vector
        return view.nearest(query, k, refined)

    # ------------------------------------------------------------------ internals

    def _within_value(
        self, gen: _Generation | None, delta: _Delta | None, kind: str, q: int, radius: int
    ) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        if gen is not None and kind in gen.index:
            rows, dist = self._gen_within(gen, kind, q, radius)
            out.extend(_from_gen(gen, rows, dist, delta))
        out.extend(_from_delta(delta, kind, q, radius))
        return out

    def _gen_within(
        self, gen: _Generation, kind: str, q: int, radius: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The generation's rows within ``radius`` of ``q``, nearest first (ties by row, i.e.
        by id), and their distances; none when the generation has no such kind."""
        ki = gen.index.get(kind)
        if ki is None:
            return _NO_ROWS, _NO_DIST
        if len(ki.rows) > self.exact_scan_max and radius <= NEAR_RADIUS_MAX:
            pos, dist = ki.multi.within(q, radius)  # positions ascending
            if len(pos) > 1:
                order = dist.argsort(kind="stable")
                pos, dist = pos[order], dist[order]
        else:  # a small kind, or a radius beyond what the tables answer cheaply: scan
            pos, dist = ki.scanner().within(q, radius)
        return ki.row_of(pos), dist

    def _gen_nearest(
        self, gen: _Generation, kind: str, q: int, want: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The generation's ``want`` rows nearest ``q`` by one exact scan, nearest first (ties
        by row, i.e. by id); none when the generation has no such kind."""
        ki = gen.index.get(kind)
        if ki is None:
            return _NO_ROWS, _NO_DIST
        pos, dist = ki.scanner().nearest(q, want)
        return ki.row_of(pos), dist

    def _nearest_value(
        self, gen: _Generation | None, delta: _Delta | None, kind: str, q: int, want: int
    ) -> list[tuple[str, int]]:
        # The recent hashes are few: scan all of them, at any distance.
        recent = _from_delta(delta, kind, q, HASH_BITS[kind])
        if gen is None or kind not in gen.index:
            return recent
        ki = gen.index[kind]
        # Generation rows that a recent hash replaces are dropped after the search: ask for
        # as many more.
        extra = len(delta.ids) if delta is not None else 0
        if self._uses_annoy(gen, kind):
            near = self._within_value(gen, None, kind, q, NEAR_RADIUS)
            near = _without_recent(near, delta)
            if len(near) + sum(d <= NEAR_RADIUS for _, d in recent) >= want:
                return near + recent  # every hash within NEAR_RADIUS is here: exact top-k
            vector = bit_rows(np.array([q], dtype=np.uint64), ki.bits)[0].tolist()
            items = ki.annoy.get_nns_by_vector(
                vector, want + len(near), search_k=max(self.search_k, 4 * want)
            )
            rows = ki.rows[np.asarray(items, dtype=np.int64)]
            column = gen.kinds.index(kind)
            dist = np.bitwise_count(np.bitwise_xor(gen.values[rows, column], np.uint64(q)))
            return near + _from_gen(gen, rows, dist, delta) + recent
        # No Annoy index (or a small kind): one exact scan answers the near and the far.
        rows, dist = self._gen_nearest(gen, kind, q, want + extra)
        return _from_gen(gen, rows, dist, delta) + recent


_NO_ROWS = np.zeros(0, np.int64)
_NO_DIST = np.zeros(0, np.uint8)


def _gen_alone(delta: _Delta | None, queries: list[tuple[int, bool]]) -> bool:
    """Whether the generation alone answers: one direct query (no mirror) and no recent
    hashes to add or to replace the generation's with."""
    return len(queries) == 1 and (delta is None or not delta.ids)


def _gen_only(
    gen: _Generation, found: tuple[np.ndarray, np.ndarray], exclude: str | None
) -> list[Match]:
    """The matches of one direct query answered by the generation alone (no mirror, no recent
    hashes), in ``_ranked``'s order without its dict and tuple sort: the rows come nearest
    first, ties by row, and the generation's ids are sorted, so that is (distance, id)."""
    rows, dist = found
    matches = list(map(Match, gen.ids[rows].tolist(), dist.tolist()))
    if exclude is not None:
        return [m for m in matches if m.id != exclude]
    return matches


def _from_gen(
    gen: _Generation, rows: np.ndarray, dist: np.ndarray, delta: _Delta | None
) -> list[tuple[str, int]]:
    pairs = list(zip(gen.ids[rows].tolist(), dist.tolist(), strict=True))
    return _without_recent(pairs, delta)


def _without_recent(pairs: list[tuple[str, int]], delta: _Delta | None) -> list[tuple[str, int]]:
    """Drop generation matches of images hashed again since the build: their recent hash,
    scanned from the delta, is the one that counts."""
    if delta is None or not delta.ids:
        return pairs
    return [(i, d) for i, d in pairs if i not in delta.ids]


def _from_delta(delta: _Delta | None, kind: str, q: int, radius: int) -> list[tuple[str, int]]:
    if delta is None or not len(delta.table) or kind not in delta.table.kinds:
        return []
    rows, values = delta.table.column(kind)
    d = np.bitwise_count(np.bitwise_xor(values, np.uint64(q)))
    hit = np.flatnonzero(d <= radius)
    return list(zip(delta.table.ids[rows[hit]].tolist(), d[hit].tolist(), strict=True))


def _keep_best(found: dict[str, tuple[int, bool]], image: str, dist: int, mirrored: bool) -> None:
    """Keep an image's best match: nearest, then direct before mirrored. Plain tuples until
    the end: building Match objects only for what is returned keeps a small query's fixed
    cost below the scan's."""
    old = found.get(image)
    if old is None or (dist, mirrored) < old:
        found[image] = (dist, mirrored)


def _ranked(
    found: dict[str, tuple[int, bool]], exclude: str | None = None, limit: int | None = None
) -> list[Match]:
    """Nearest first; ties: direct before mirrored, then by id."""
    order = sorted((d, m, i) for i, (d, m) in found.items() if i != exclude)
    return [Match(i, d, m) for d, m, i in order[:limit]]


def _vectors_of(view: VectorView, ids: list[str]) -> np.ndarray | None:
    """The raw vectors of ``ids`` (NaN rows for those without one), or None if none has."""
    rows: list[np.ndarray | None] = []
    for image_id in ids:
        try:
            rows.append(view.vector(image_id)[0])
        except NoVector:
            rows.append(None)
    return stack_vectors(rows)
