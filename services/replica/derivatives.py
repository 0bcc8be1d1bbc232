"""The replica's derivative cache: encoded IIIF image responses kept on disk, and their ingest.

Why: the real catalogue's image service (Wellcome's DLCS) serves thumbnails generated at
ingest from a cache/CDN; it does not draw and JPEG-encode each one per request. A replica that
renders on request is less faithful, and when it runs inside a benchmark's process it charges
that remote server's work to the crawler being measured. So, like Cantaloupe's derivative
cache, each rendered response is stored once under its request and served from disk after.

- Key: ``(asset, region, size, rotation, quality.format)``, the IIIF path segments as
  requested, hashed (with the cache's *namespace*) into ``DIR/ab/abcd….jpg``.
- Namespace: the collection's manifest plus what decides the encoded bytes (render version,
  Pillow and libjpeg versions). The directory records it in ``derivatives.json``; opening the
  directory with another namespace (a rebuilt collection, a Pillow upgrade) empties it first,
  so a cached file is always byte-identical to what rendering gives now.
- Writes: to a temporary file in the same folder, then ``os.replace``: a reader sees a whole
  file or none. Writers (threads and processes) take an exclusive ``flock`` on ``DIR/.lock``,
  which also holds the shared byte count of the cache, so the size limit holds across processes.
- When full (the stored bytes would pass ``max_mb``): **new derivatives are no longer stored**;
  they are rendered on request (the in-memory cache in ``app`` still keeps recent ones) and
  counted as ``not_stored_full``. Nothing is evicted: pre-rendered thumbnails stay put, and no
  reader can see a file vanish. Empty the directory (``DerivativeCache.clear``) to start over.
- ``prerender`` is the ingest: it renders a list of requests into the cache in a process pool,
  skipping what is already there, so a second run costs only ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import PIL
from PIL import features

log = logging.getLogger(__name__)

# Bump when iiif.render or the image sources change the bytes they produce.
RENDER_VERSION = 1
FORMAT = 1
DEFAULT_MAX_MB = 1024.0
MARKER = "derivatives.json"
LOCK = ".lock"
_USAGE_WIDTH = 20  # the byte count in the lock file: fixed-width decimal, rewritten in place
_NAME = re.compile(r"[0-9a-f]{40}\.[a-z]+")
_SUBDIR = re.compile(r"[0-9a-f]{2}")

Key = tuple[str, str, str, str, str]  # asset, region, size, rotation, quality.format


def _transient(name: str) -> bool:
    """Files another process opening the same new directory may have made a moment ago."""
    return name == LOCK or name.startswith((".probe-", f"{MARKER}."))


class DerivativeCacheError(RuntimeError):
    """The derivative cache directory cannot be used (not creatable, not writable, not ours)."""


def collection_namespace(collection) -> dict:
    """What decides the bytes of a derivative besides its request: the collection (its whole
    manifest, build key included) and the rendering code and libraries."""
    manifest = json.dumps(collection.manifest, sort_keys=True, ensure_ascii=False)
    return {
        "collection": hashlib.sha256(manifest.encode()).hexdigest()[:24],
        "render_version": RENDER_VERSION,
        "pillow": PIL.__version__,
        "libjpeg": features.version("jpg"),
    }


def thumbnail_key(asset: str, size: int | str) -> Key:
    """The key of ``/image/{asset}/full/!n,n/0/default.jpg``: the request the crawler makes
    (``lookalike.catalogue.iiif_thumbnail_url`` with ``settings.thumbnail_size``)."""
    size_text = f"!{size},{size}" if isinstance(size, int) else size
    return (asset, "full", size_text, "0", "default.jpg")


class DerivativeCache:
    """Encoded pictures on disk under ``directory``, at most ``max_mb`` MiB of file bytes.

    ``reconcile`` (default): recount the stored bytes and remove temporary files left by a
    crashed writer, under the lock; an ingest's pool workers skip it (their parent just did).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        namespace: dict,
        max_mb: float = DEFAULT_MAX_MB,
        reconcile: bool = True,
    ) -> None:
        if not max_mb > 0:
            raise DerivativeCacheError(f"derivative cache size limit must be > 0 MB, not {max_mb}")
        self.directory = Path(directory)
        self.namespace = namespace
        self.max_bytes = int(max_mb * 2**20)
        self._tag = json.dumps(namespace, sort_keys=True)
        self._thread_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._warned_full = False
        self._lock_fd = self._open(reconcile)

    # -- opening -------------------------------------------------------------------------

    def _open(self, reconcile: bool) -> int:
        where = f"derivative cache directory {self.directory}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DerivativeCacheError(f"{where} cannot be created: {exc}") from exc
        if not self.directory.is_dir():
            raise DerivativeCacheError(f"{where} is not a directory")
        marker = self.directory / MARKER
        if not marker.exists() and any(not _transient(p.name) for p in self.directory.iterdir()):
            raise DerivativeCacheError(
                f"{where} is not empty and is not a derivative cache (no {MARKER}); "
                "refusing to use it: give an empty or new directory"
            )
        try:
            fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DerivativeCacheError(f"{where} is not writable: {exc}") from exc
        try:
            with self._locked(fd):
                self._check_writable()
                stored = self._read_marker(marker)
                if stored != self.namespace:
                    if stored is not None:
                        log.warning(
                            "%s was made for %s, now %s: emptying it", where, stored, self.namespace
                        )
                    self._remove_files()
                    self._write_atomic(
                        marker,
                        json.dumps(
                            {"format": FORMAT, "namespace": self.namespace}, indent=1
                        ).encode(),
                    )
                    reconcile = True
                if reconcile:
                    self._write_usage(fd, self._scan())
        except OSError as exc:
            os.close(fd)
            raise DerivativeCacheError(f"{where} is not usable: {exc}") from exc
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_writable(self) -> None:
        """Root ignores permissions on open(), so try a real write (a read-only mount fails)."""
        probe = self.directory / f".probe-{os.getpid()}-{threading.get_ident()}"
        try:
            probe.write_bytes(b"ok")
        except OSError as exc:
            raise DerivativeCacheError(
                f"derivative cache directory {self.directory} is not writable: {exc}"
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    @staticmethod
    def _read_marker(marker: Path) -> dict | None:
        try:
            body = json.loads(marker.read_text())
        except (OSError, ValueError):
            return None
        return body.get("namespace") if body.get("format") == FORMAT else None

    def _our_files(self) -> Iterator[os.DirEntry]:
        for sub in os.scandir(self.directory):
            if sub.is_dir(follow_symlinks=False) and _SUBDIR.fullmatch(sub.name):
                yield from os.scandir(sub.path)

    def _scan(self) -> int:
        """Bytes of the stored files; temporary files (a writer crashed) are removed. Only
        called under the lock, when no writer is between its write and its rename."""
        total = 0
        for entry in self._our_files():
            if _NAME.fullmatch(entry.name):
                total += entry.stat(follow_symlinks=False).st_size
            elif entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        return total

    def _remove_files(self) -> None:
        for entry in list(self._our_files()):
            if _NAME.fullmatch(entry.name) or entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    # -- the lock and the shared byte count ----------------------------------------------

    @contextlib.contextmanager
    def _locked(self, fd: int | None = None) -> Iterator[None]:
        """Threads of this process through the thread lock (flock is per open file, so the
        threads sharing ``fd`` would not exclude each other), processes through flock."""
        fd = self._lock_fd if fd is None else fd
        with self._thread_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _read_usage(fd: int) -> int:
        raw = os.pread(fd, _USAGE_WIDTH, 0).strip()
        return int(raw) if raw.isdigit() else 0

    @staticmethod
    def _write_usage(fd: int, value: int) -> None:
        os.pwrite(fd, str(value).rjust(_USAGE_WIDTH).encode(), 0)

    # -- entries -------------------------------------------------------------------------

    def path_for(self, key: Key) -> Path:
        digest = hashlib.blake2b(
            "\x1f".join((self._tag, *key)).encode(), digest_size=20
        ).hexdigest()
        ext = key[4].rpartition(".")[2]
        if not re.fullmatch(r"[a-z]+", ext):
            raise ValueError(f"bad format in derivative key {key!r}")
        return self.directory / digest[:2] / f"{digest}.{ext}"

    def contains(self, key: Key) -> bool:
        return self.path_for(key).is_file()

    def get(self, key: Key) -> bytes | None:
        """The stored bytes, or None (counted as a hit or a miss)."""
        try:
            data = self.path_for(key).read_bytes()
        except FileNotFoundError:
            data = None
        self._count("hits" if data else "misses")
        return data or None

    def put(self, key: Key, data: bytes) -> str:
        """Store ``data`` under ``key``: ``stored``, ``present`` (already there),
        ``full`` (would pass the size limit; not stored) or ``error`` (an OSError, logged:
        the caller still has the bytes, so nothing is lost)."""
        if not data:
            raise ValueError(f"refusing to store an empty derivative for {key!r}")
        path = self.path_for(key)
        try:
            outcome = self._put(path, data)
        except OSError as exc:
            log.warning("derivative cache: could not store %s: %s", path, exc)
            outcome = "error"
        self._count(outcome)
        if outcome == "full" and not self._warned_full:
            self._warned_full = True
            log.warning(
                "derivative cache %s is full (%.0f MB): new derivatives are rendered on "
                "request and not stored",
                self.directory,
                self.max_bytes / 2**20,
            )
        return outcome

    def _put(self, path: Path, data: bytes) -> str:
        with self._locked():
            if path.exists():
                return "present"
            used = self._read_usage(self._lock_fd)
            if used + len(data) > self.max_bytes:
                return "full"
            path.parent.mkdir(exist_ok=True)
            self._write_atomic(path, data)
            self._write_usage(self._lock_fd, used + len(data))
        return "stored"

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def get_or_render(self, key: Key, render: Callable[[], bytes]) -> bytes:
        data = self.get(key)
        if data is None:
            data = render()
            self.put(key, data)
        return data

    def reconcile(self) -> None:
        """Recount the stored bytes from the files (after a writer was killed)."""
        with self._locked():
            self._write_usage(self._lock_fd, self._scan())

    def clear(self) -> None:
        with self._locked():
            self._remove_files()
            self._write_usage(self._lock_fd, 0)

    # -- figures -------------------------------------------------------------------------

    @property
    def usage_bytes(self) -> int:
        """Bytes stored, by every process sharing the directory."""
        return self._read_usage(self._lock_fd)

    def _count(self, what: str) -> None:
        with self._thread_lock:
            self._counts[what] += 1

    def counts(self) -> dict[str, int]:
        """This instance's hits, misses and put outcomes (stored, present, full, error)."""
        with self._thread_lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._thread_lock:
            self._counts.clear()

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> DerivativeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# --------------------------------------------------------------------------- ingest


@dataclass
class PrerenderReport:
    requested: int  # keys asked for
    present: int  # already in the cache before (a rerun: all of them)
    stored: int  # rendered and stored now
    not_stored_full: int  # left out: the cache reached its size limit (the rest not rendered)
    errors: int  # rendered but not stored (an OSError, logged)
    seconds: float
    usage_mb: float  # the cache's size after

    def as_dict(self) -> dict:
        return asdict(self)


_worker: dict = {}


def _worker_init(collection_dir: str, directory: str, max_mb: float) -> None:
    from services.replica.collection import Collection

    collection = Collection.load(collection_dir)
    _worker["collection"] = collection
    _worker["cache"] = DerivativeCache(
        directory, namespace=collection_namespace(collection), max_mb=max_mb, reconcile=False
    )


def _render_one(key: Key) -> str:
    return render_into(_worker["collection"], _worker["cache"], key)


def render_into(collection, cache: DerivativeCache, key: Key) -> str:
    """Render one request of ``collection`` into ``cache``; the ``put`` outcome."""
    from services.replica import iiif

    if cache.contains(key):
        return "present"
    asset, region, size, rotation, quality_format = key
    source = collection.image_source(asset)
    if source is None:
        raise KeyError(f"the collection at {collection.path} has no asset {asset!r}")
    request = iiif.parse_image_request(region, size, rotation, quality_format, source)
    return cache.put(key, iiif.render(source, request))


def thumbnail_keys(
    collection, image_ids: Iterable[str] | None = None, sizes: Iterable[int | str] = (400,)
) -> list[Key]:
    """The crawler's thumbnail requests (``thumbnail_key``) for ``image_ids`` (default: every
    image) at each size; images whose picture the replica does not serve are left out."""
    keys = []
    for image_id in collection.ids if image_ids is None else image_ids:
        asset = collection.asset_id(image_id)
        if asset is not None and collection.image_source(asset) is not None:
            keys.extend(thumbnail_key(asset, size) for size in sizes)
    return keys


def prerender(
    collection,
    directory: str | os.PathLike,
    keys: Iterable[Key],
    *,
    max_mb: float = DEFAULT_MAX_MB,
    processes: int = 2,
    progress: bool | None = None,
) -> PrerenderReport:
    """Render ``keys`` of ``collection`` into the derivative cache at ``directory``, in a
    pool of ``processes`` (spawned: the caller may run server threads), skipping those already
    stored. ``progress``: a tqdm bar on stderr (default: when stderr is a terminal). Stops at
    the first request the size limit refuses (the rest would be refused too)."""
    started = time.monotonic()
    keys = list(dict.fromkeys(keys))
    cache = DerivativeCache(directory, namespace=collection_namespace(collection), max_mb=max_mb)
    try:
        missing = [k for k in keys if not cache.contains(k)]
        outcomes: Counter[str] = Counter(present=len(keys) - len(missing))
        if progress is None:
            progress = sys.stderr.isatty()
        from tqdm import tqdm

        bar = tqdm(
            total=len(missing),
            desc="pre-rendering thumbnails",
            unit="img",
            disable=not progress or not missing,
            file=sys.stderr,
        )
        with bar, contextlib.ExitStack() as stack:
            if processes <= 1 or len(missing) < 32:
                results: Iterable[str] = (render_into(collection, cache, k) for k in missing)
            else:
                pool = stack.enter_context(
                    mp.get_context("spawn").Pool(
                        processes,
                        initializer=_worker_init,
                        initargs=(str(collection.path), str(cache.directory), max_mb),
                    )
                )
                results = pool.imap_unordered(_render_one, missing, chunksize=16)
            for outcome in results:
                outcomes[outcome] += 1
                bar.update(1)
                if outcome == "full":
                    break  # leaving the with block terminates the pool
        if outcomes["full"]:
            # Pool workers may have stored more before they were stopped, or been stopped
            # mid-write: count what is on disk, and recount the bytes.
            cache.reconcile()
            outcomes["stored"] = sum(1 for k in missing if cache.contains(k))
            outcomes["full"] = len(missing) - outcomes["stored"] - outcomes["error"]
        return PrerenderReport(
            requested=len(keys),
            present=outcomes["present"],
            stored=outcomes["stored"],
            not_stored_full=outcomes["full"],
            errors=outcomes["error"],
            seconds=round(time.monotonic() - started, 2),
            usage_mb=round(cache.usage_bytes / 2**20, 2),
        )
    finally:
        cache.close()
