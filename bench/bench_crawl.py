"""Crawl benchmark: images/s of a real crawl next to hashing-only images/s, same run, same cores.

What it measures, on the replica's scale collection (procedurally drawn thumbnails):

- crawl: real Celery worker processes crawl the replica breadth-first from ``--seeds`` random
  seeds, deep enough to exhaust what those seeds reach (>= ``--images`` images). For every
  image the crawl fetches its record and similar list (catalogue API), stores node, neighbours
  and SIMILAR_TO edges in the graph, downloads its thumbnail (IIIF), hashes it (5 perceptual
  hashes), embeds it (the learned model, unless ``--no-embeddings``; the vector goes to Redis
  for the indexer) and stores the hashes and the embedding's record. **Crawl images/s =
  images both fetched and hashed (and embedded), divided by the crawl's wall time** (from the
  crawl's ``created_at`` to its ``finished_at``, both set in Redis; the crawl is ``done`` only
  when the last hash is stored).
- baseline: decoding, hashing and embedding alone (``lookalike.hashing``, the embedder;
  without embedding with ``--no-embeddings``) over a sample of the same thumbnails,
  already in memory, in a ``multiprocessing`` pool with as many processes as the crawl has task
  slots; once before the crawl (on the replica's own rendering of them) and once after (on the
  bytes the workers cached, which must be identical); the ratio uses the mean of the two, as
  the machine may be shared.
- ratio = crawl images/s / hashing-only images/s (target >= 0.5), with where the crawl's
  time went: Celery task counts per task, lease re-dispatches, replica requests, failures,
  Redis commands, and CPU seconds of each part (workers, the replica, the graph server, Redis)
  read from /proc, with the time they were runnable but waiting for a CPU. The CPU ratio
  (hashing-only CPU per image / the crawl's CPU per image) is what the ratio becomes when both
  keep the cores busy, whatever else runs on the machine.

The replica serves pre-rendered thumbnails, as the real image service does (the catalogue's
DLCS serves thumbnails made at ingest from a cache, it does not draw them per request): before
the crawl, untimed, every thumbnail the crawl will request (``full/!n,n/0/default.jpg``, n the
workers' ``thumbnail_size``, of each image the seeds reach and of the warm-up's) is rendered
into the replica's derivative cache (``services/replica/derivatives.py``), kept in
``<collection>/derivatives``: with ``--cache`` the next run reuses it at no cost. The replica
then reads them from disk instead of drawing and JPEG-encoding them, so the CPU measured is the
crawler's, not a remote server's rendering; the output counts where the replica's pictures
came from (all from the cache when the pre-rendered keys match the crawler's requests).

Everything is started here and stopped at the end: the embedded stack in a temporary state
folder (or the servers NEO4J_URI / REDIS_URL name; the graph is then emptied first, so it
needs ``--allow-clear``), the replica (``run_replica``, a thread of this process: it shares
the same 2 cores, and its CPU is reported separately) and the workers
(``celery -A workers.app worker``).

    python bench/bench_crawl.py --cache /tmp/lookalike-bench   # 20,000 images: ~15 min on
                                                               # 2 idle cores, ~25 min busy
    python bench/bench_crawl.py --images 2000 --seeds 10       # quick look, ~5 min
    python bench/bench_crawl.py --images 2000 --py-spy DIR     # also profile workers + replica

With REDIS_URL set, make sure no other workers consume the ``lookalike`` queue of that Redis.

Prints a table and writes the figures to ``bench/results/crawl.json``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import math
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import labels, publish

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "crawl.json"
TARGET_RATIO = 0.5
REPLICA = "replica (this process's threads)"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class _Redispatches(logging.Handler):
    """Counts "re-dispatching ... (lease expired)" warnings of ``workers.tasks`` in this
    process (``control.wait_for`` doubles as a watchdog) instead of printing each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "lease expired" in message:
            self.count += 1
        else:
            log(f"{record.name}: {message}")


REDISPATCHES = _Redispatches()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CPU accounting


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (the command name may hold spaces: split after it)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, group: bool = False, children: bool = False) -> float:
    """CPU seconds (user+system) of a process, or of its whole process group.

    ``group``: every live process whose process group is ``pid`` (a Celery worker and its
    prefork children, started in their own session). ``children``: add the CPU of reaped
    children of ``pid`` (a pool child that exited).
    """
    total = 0.0
    pids: list[int | str] = [pid]
    if group:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for p in pids:
        f = _stat_fields(p)
        if f is None:
            continue
        if group and int(f[2]) != pid:  # field 5, pgrp
            continue
        ticks = int(f[11]) + int(f[12])  # fields 14, 15: utime, stime
        if children and int(p) == pid:
            ticks += int(f[13]) + int(f[14])  # fields 16, 17: cutime, cstime
        total += ticks / CLK_TCK
    return total


def group_pids(pgid: int) -> list[int]:
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and (f := _stat_fields(p)) is not None and int(f[2]) == pgid
    ]


def cpu_wait_seconds(pids: list[int]) -> float:
    """Seconds the threads of ``pids`` spent runnable but waiting for a CPU (schedstat).

    Tells a crawl starved of CPU (a busy, shared machine) from one waiting on I/O. Threads
    that already exited are not counted, so it is a lower bound.
    """
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    return total / 1e9


def self_cpu() -> float:
    """This process only (its threads: the replica server), not its reaped children."""
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------- the servers


@dataclass
class Stack:
    env: dict[str, str]  # what every process of the benchmark gets
    backend: str
    pids: dict[str, int] = field(default_factory=dict)  # embedded servers, for CPU accounting


@contextmanager
def servers(state_dir: Path, allow_clear: bool) -> Iterator[Stack]:
    """The embedded stack in ``state_dir``, or the servers NEO4J_URI / REDIS_URL name."""
    from lookalike import stack
    from lookalike.settings import load_settings

    if os.environ.get("NEO4J_URI") and not allow_clear:
        sys.exit(
            "NEO4J_URI is set: this benchmark empties that graph before crawling. "
            "Re-run with --allow-clear if that is what you want."
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env.update({"LOOKALIKE_STATE_DIR": str(state_dir), "PYTHONPATH": str(REPO)})
    settings = load_settings(env)
    record = stack.up(settings)
    try:
        pids = {name: int(record[name]["pid"]) for name in ("graph", "redis") if name in record}
        backend = "neo4j (NEO4J_URI)" if settings.neo4j_uri else "arcadedb-embedded (Bolt)"
        yield Stack(env, backend, pids)
    finally:
        stack.down(settings)


@dataclass
class Workers:
    """Real Celery worker processes, each in its own session (so the group can be killed)."""

    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, n: int, pool: str, concurrency: int) -> None:
        from workers.app import worker_command

        for k in range(n):
            out = (self.logs / f"worker{k}.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    worker_command(
                        pool=pool,
                        concurrency=concurrency,
                        loglevel="WARNING",
                        name=f"bench{k}-{os.getpid()}@%h",
                        heartbeat=False,
                    ),
                    env=self.env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"a worker exited with code {proc.returncode}:\n" + self.log_tail()
                )

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid, group=True) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def count_in_logs(self, text: str) -> int:
        return sum(f.read_text(errors="replace").count(text) for f in self.logs.glob("worker*.log"))

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-chars:]}"
            for f in sorted(self.logs.glob("worker*.log"))
        )


class Profiler:
    """Optional py-spy sampling of the worker processes and of this process (the replica).

    Writes collapsed stacks (``--format raw``: one ``frame;frame;... count`` line per stack,
    the input of flamegraph.pl / inferno / speedscope), idle threads excluded, so sample
    counts are CPU time.
    """

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start(self, targets: dict[str, tuple[int, bool]]) -> None:
        """Sample each ``name: (pid, with its subprocesses)``."""
        if self.out_dir is None:
            return
        exe = shutil.which("py-spy")
        if exe is None:
            sys.exit("--py-spy needs py-spy: pip install py-spy")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, (pid, subprocesses) in targets.items():
            path = self.out_dir / f"{name}.txt"
            self.procs.append(
                (
                    name,
                    path,
                    subprocess.Popen(
                        [
                            exe,
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            "50",
                            "--format",
                            "raw",
                            "--nonblocking",
                            "-o",
                            str(path),
                            *(["--subprocesses"] if subprocesses else []),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    ),
                )
            )

    def stop(self) -> dict[str, Any]:
        """Stop sampling (idempotent); summaries of what was recorded."""
        out: dict[str, Any] = {}
        procs, self.procs = self.procs, []
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for name, path, proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if path.exists():
                out[name] = {"file": str(path), **summarise_stacks(path)}
        return out


# What the neo4j driver logs (WARNING) each time it retries a transaction that failed with a
# transient error: on ArcadeDB, two workers' writes colliding on the same page.
DRIVER_RETRY = "Transaction failed and will be retried"

# Frames that say which step of the crawl a sample belongs to (py-spy names them
# "func (path)" or "Class.method (path)"); the first listed frame found on the stack wins.
PHASES: list[tuple[str, str]] = [
    ("check_thumbnail (lookalike/catalogue/thumbnails.py)", "hash: check_thumbnail (the decode)"),
    ("hash_image (lookalike/hashing.py)", "hash: the five hashes"),
    (
        "CatalogueClient.fetch_thumbnail_decoded (lookalike/catalogue/client.py)",
        "hash: thumbnail download",
    ),
    ("Embedder.embed (lookalike/embedding/embedder.py)", "embed: the model"),
    ("needs (workers/pipeline.py)", "hash: needs graph read"),
    ("ThumbnailCache.put (lookalike/thumbcache.py)", "hash: thumbnail cache write"),
    ("publish_vectors (workers/pipeline.py)", "embed: vectors to the Redis stream"),
    ("store_thumbnails (workers/pipeline.py)", "hash: set_hashes graph write"),
    ("CatalogueClient.get_image (lookalike/catalogue/client.py)", "fetch: catalogue request"),
    ("store_fetched_many (workers/pipeline.py)", "fetch: graph write"),
    ("CrawlState.start_fetches (workers/frontier.py)", "frontier: Redis scripts"),
    ("CrawlState.complete_fetches (workers/frontier.py)", "frontier: Redis scripts"),
    ("CrawlState.complete_hash (workers/frontier.py)", "frontier: Redis scripts"),
    ("CrawlState.maybe_finish (workers/frontier.py)", "frontier: Redis scripts"),
    ("dispatch (workers/tasks.py)", "dispatch: publish tasks"),
    ("requeue_stale (workers/tasks.py)", "watchdog"),
    (
        "build_tracer.<locals>.trace_task (celery/app/trace.py)",
        "task: Redis checks and Celery per-task work",
    ),
    ("render (services/replica/iiif.py)", "replica: draw + encode thumbnail"),
    ("get_image (services/replica/routes_catalogue.py)", "replica: catalogue document"),
    ("WorkerThread.run (cheroot/workers/threadpool.py)", "replica: HTTP handling"),
    ("HTTPServer.serve (cheroot/server.py)", "replica: HTTP handling"),
    ("wait_for (workers/control.py)", "bench: following the crawl"),
]
# Leaf frames where a thread waits (on a socket, a pipe, a lock) rather than computes.
WAITS = {
    "BoltSocketBase._wait_for_io",
    "SocketBuffer._read_from_socket",
    "SocketIO.readinto",
    "_epoll.poll",
    "_PollLikeSelector.select",
    "EpollSelector.select",
    "Condition.wait",
    "Connection._recv",
    "Connection._poll",
    "sleep",
    "select",
    "poll",
    "Event.wait",
}


def summarise_stacks(path: Path, top: int = 30) -> dict[str, Any]:
    """Sample share per crawl phase (see ``PHASES``; waits apart) and per function."""
    inclusive: collections.Counter[str] = collections.Counter()
    phases: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        # "func (file.py:123)" -> "func (file.py)": aggregate over line numbers.
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        present = set(frames)
        phase = next(
            (name for marker, name in PHASES if marker in present),
            "other: Celery consumer and pool, outside tasks",
        )
        if frames[-1].split(" (")[0] in WAITS:
            phase += " [waiting]"
        phases[phase] += n
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "phases_pct": {k: share(v) for k, v in phases.most_common()},
        "top_inclusive_pct": {
            k: share(v) for k, v in inclusive.most_common(top) if not k.startswith("process ")
        },
    }


# --------------------------------------------------------------------------- the workload


@dataclass
class Plan:
    seeds: list[str]
    depth: int
    reach: dict[str, int]  # image id -> BFS depth, what the crawl must fetch
    warmup_seed: str


def plan_crawl(collection: Any, images: int, n_seeds: int, seed: int) -> Plan:
    """Seeds and the depth that exhausts what they reach; refuse if that is < ``images``."""
    rng = random.Random(seed)
    seeds = rng.sample(collection.ids, n_seeds)
    reach = collection.bfs(seeds, 10_000)
    if len(reach) < images:
        sys.exit(
            f"{n_seeds} seeds reach only {len(reach):,} of the collection's "
            f"{len(collection):,} images, fewer than --images {images:,}; use more --seeds "
            "or a larger --collection-size"
        )
    depth = max(reach.values())
    warmup = next(
        i
        for i in rng.sample(collection.ids, min(len(collection), 50))
        if i not in reach or reach[i] > 0
    )
    return Plan(seeds, depth, reach, warmup)


def thumbnail_sample(collection: Any, ids: list[str], size: int) -> list[bytes]:
    """The bytes the replica serves for ``…/full/!size,size/0/default.jpg``, rendered afresh
    (no HTTP, not read from the derivative cache): comparing them with what the workers got
    also checks that the pre-rendered thumbnails are the rendered bytes."""
    return [collection.thumbnail_bytes(collection.asset_id(i), f"!{size},{size}") for i in ids]


def prerender_crawl_thumbnails(
    collection: Any, plan: Plan, size: int, directory: Path
) -> dict[str, Any]:
    """Render every thumbnail the crawl (and its warm-up) will request into the replica's
    derivative cache, skipping those an earlier run left there."""
    from lookalike.catalogue import iiif_thumbnail_url
    from services.replica.derivatives import (
        DEFAULT_MAX_MB,
        prerender,
        thumbnail_key,
        thumbnail_keys,
    )

    # The keys must be the crawler's requests: build one URL with the crawler's own recipe
    # (CatalogueClient.thumbnail_url) and read the key back from its path.
    probe = next(iter(plan.reach))
    info = collection.document(probe, "http://replica.test")["thumbnail"]["url"]
    path = iiif_thumbnail_url(info, size).split("://", 1)[1].split("/", 1)[1]
    service, *segments = path.split("/")
    if service != "image" or tuple(segments) != thumbnail_key(collection.asset_id(probe), size):
        sys.exit(
            f"the crawler requests {path}, which is not what would be pre-rendered: "
            f"{thumbnail_key(collection.asset_id(probe), size)}"
        )
    ids = sorted(set(plan.reach) | set(collection.bfs([plan.warmup_seed], 1)))
    keys = thumbnail_keys(collection, ids, sizes=(size,))
    max_mb = max(DEFAULT_MAX_MB, len(keys) / 16)  # 64 KiB a thumbnail: ample
    report = prerender(
        collection, directory, keys, max_mb=max_mb, processes=max(1, min(2, os.cpu_count() or 1))
    )
    if report.not_stored_full or report.errors:
        sys.exit(
            f"pre-rendering into {directory} left {report.not_stored_full} out (full) "
            f"and {report.errors} with errors"
        )
    return {"dir": str(directory), "size": f"!{size},{size}", "max_mb": max_mb, **report.as_dict()}


# --------------------------------------------------------------------------- the baseline

_MAX_PIXELS = 4_000_000
_EMBEDDER: Any = None


def _pool_init(max_pixels: int, embeddings: bool) -> None:
    global _EMBEDDER, _MAX_PIXELS
    _MAX_PIXELS = max_pixels
    if embeddings:
        from lookalike.settings import load_settings
        from lookalike.vectors import embedder

        _EMBEDDER = embedder(load_settings(embeddings=True))


def _hash_one(data: bytes) -> str:
    """What a crawl does with a thumbnail, alone: decode once, hash, embed."""
    from lookalike.hashing import decode_image, hash_image

    image = decode_image(data, max_pixels=_MAX_PIXELS)
    if _EMBEDDER is not None:
        _EMBEDDER.embed(image)
    return hash_image(image).phash


def hashing_only(
    thumbs: list[bytes], processes: int, max_pixels: int, embeddings: bool
) -> dict[str, Any]:
    """images/s of decoding, hashing (and embedding) alone over in-memory thumbnails, in a
    pool of ``processes``."""
    ctx = mp.get_context("spawn")  # a clean child: this process runs server threads
    with ctx.Pool(processes, initializer=_pool_init, initargs=(max_pixels, embeddings)) as pool:
        # Warm-up (untimed): imports and first-call costs in every child.
        pool.map(_hash_one, thumbs[: processes * 4], chunksize=1)
        children = [p.pid for p in pool._pool]  # type: ignore[attr-defined]
        cpu0 = sum(cpu_seconds(pid) for pid in children)
        started = time.perf_counter()
        phashes = pool.map(_hash_one, thumbs, chunksize=8)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(pid) for pid in children) - cpu0
    return {
        "images": len(thumbs),
        "processes": processes,
        "seconds": round(elapsed, 2),
        "images_per_s": round(len(thumbs) / elapsed, 2),
        "cpu_ms_per_image": round(1000 * cpu / len(thumbs), 2),
        "phash": phashes,
    }


# --------------------------------------------------------------------------- the crawl


def celery_task_totals(timeout: float = 5.0) -> dict[str, int]:
    """Tasks each worker ran since it started, summed over workers (``inspect stats``)."""
    from workers.app import app

    stats = app.control.inspect(timeout=timeout).stats() or {}
    totals: collections.Counter[str] = collections.Counter()
    for worker in stats.values():
        totals.update(worker.get("total", {}))
    return dict(totals)


def redis_commands(url: str) -> dict[str, dict[str, float]]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("commandstats")
    finally:
        client.close()
    return {
        k.removeprefix("cmdstat_"): {"calls": v["calls"], "usec": v["usec"]}
        for k, v in info.items()
    }


def wait_ready(workers: Workers, expected: int, timeout: float = 120.0) -> None:
    """Until every worker answers a ping (it consumes from the broker)."""
    from workers.app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers.check_alive()
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= expected:
            return
    raise RuntimeError(f"workers did not answer within {timeout:.0f}s:\n{workers.log_tail()}")


def run_crawl(
    settings: Any,
    plan: Plan,
    workers: Workers,
    timeout: float,
    progress_every: float,
) -> tuple[dict[str, Any], list[dict[str, float]], float]:
    """Start the crawl, follow it (printing progress) until it is done; return the final
    summary, a timeline of (seconds, fetched, hashed) and the observed wall seconds."""
    from workers import control

    started = time.monotonic()
    record = control.start_crawl(settings, plan.seeds, plan.depth)
    timeline: list[dict[str, float]] = []
    last_print = [started]

    def show(summary: dict[str, Any]) -> None:
        now = time.monotonic()
        c = summary["counts"]
        t = round(now - started, 1)
        if not timeline or t - timeline[-1]["t"] >= 5:
            timeline.append({"t": t, "fetched": c["fetched"], "hashed": c["hashed"]})
        if now - last_print[0] >= progress_every:
            last_print[0] = now
            workers.check_alive()
            total = len(plan.reach)
            log(
                f"  {t:6.0f}s  level {summary['level']:>2}/{plan.depth}  fetched "
                f"{c['fetched']:>6,}/{total:,}  hashed {c['hashed']:>6,}  "
                f"({min(c['fetched'], c['hashed']) / max(t, 1e-9):5.1f} images/s)  "
                f"hash queue {summary['hash_queue']:>5,}  failed {c['failed_total']}"
            )

    try:
        final = control.wait_for(
            settings, record["id"], timeout=timeout, poll=1.0, on_progress=show
        )
    except TimeoutError:
        control.cancel_crawl(settings, record["id"])
        final = control.get_crawl(settings, record["id"]) or {}
        final["timed_out"] = True
    observed = time.monotonic() - started
    return final, timeline, observed


# --------------------------------------------------------------------------- report


def table(r: dict[str, Any]) -> str:
    c, b, w = r["crawl"], r["baseline"], r["where_the_time_goes"]
    pics, d = c["replica"]["pictures"], r["replica_derivatives"]
    on = r.get("embeddings", {}).get("on", False)
    alone = "hash+embed only" if on else "hashing only"
    lines = [
        f"crawl benchmark: replica scale collection of {r['collection']['images']:,} images, "
        f"{len(r['crawl']['seeds'])} seeds, depth {c['depth']}, graph on {r['backend']}",
        f"{r['cpus']} CPUs, {r['workers']['processes']} worker process(es) x concurrency "
        f"{r['workers']['concurrency']} ({r['workers']['pool']}), "
        f"{r['workers'].get('batch', 1)} images per fetch task; rate limit "
        f"{r['workers']['rate_limit']:g}/s; load average {r['loadavg_1min'][0]} at start, "
        f"{r['loadavg_1min'][1]} at end; {r.get('label', {}).get('date', '')} commit "
        f"{r.get('label', {}).get('commit', '?')}",
        f"embeddings: {r['embeddings']['model'] if on else 'off'}",
        "the replica serves pre-rendered thumbnails from its derivative cache, as the real "
        "image service does, so the CPU measured is the crawler's",
        "",
        "                                         images      seconds    images/s",
        f"  crawl (fetched + {'hashed+embedded' if on else 'hashed'}) "
        f"{c['images']:>10,} {c['wall_seconds']:>12.1f} {c['images_per_s']:>11.2f}",
        f"  {alone}, before the crawl {b['before']['images']:>10,} "
        f"{b['before']['seconds']:>12.1f} {b['before']['images_per_s']:>11.2f}",
        f"  {alone}, after the crawl  {b['after']['images']:>10,} "
        f"{b['after']['seconds']:>12.1f} {b['after']['images_per_s']:>11.2f}",
        f"  ratio crawl / {alone} (mean of both): {r['ratio']:.3f}   (target >= "
        f"{TARGET_RATIO}: {'met' if r['ratio'] >= TARGET_RATIO else 'NOT met'})",
        "",
        f"crawl: {c['fetched']:,} fetched, {c['hashed']:,} hashed, {c.get('embedded', 0):,} "
        f"embedded, {c['hash_skipped']} "
        f"unchanged, {c['edges']:,} edges, {c['failed_total']} failures {c['failed'] or ''}; "
        f"expected {c['expected']:,} (BFS over the replica's lists): "
        f"{'OK' if c['as_expected'] else 'MISMATCH'}",
        f"  Celery tasks run: {c['tasks']}",
        f"  re-dispatched because their {c['lease_s']:g}s lease expired (queued, not lost): "
        f"{sum(c['lease_redispatches'].values()):,}",
        f"  graph transactions retried after colliding with another worker's (the neo4j "
        f"driver's warnings): {c.get('graph_write_retries', 0):,}",
        f"  replica requests: {c['replica']['requests']}  statuses: {c['replica']['statuses']}",
        f"  replica pictures: {pics['derivative_hits']:,} from the derivative cache, "
        f"{pics['memory_hits']:,} from memory, {pics['rendered']:,} rendered on request"
        f"{'' if not pics['rendered'] else ' (NOT pre-rendered: keys missed)'}; pre-rendered "
        f"{d['requested']:,} ({d['stored']:,} now in {d['seconds']:.0f}s untimed, "
        f"{d['present']:,} reused)",
        f"  same thumbnails: {b['same_bytes']}/{b['checked']} sample thumbnails byte-identical in "
        f"the workers' cache; {b['same_phash']}/{b['checked']} phash equal to the graph's",
        "",
        "CPU seconds during the crawl (ms per image in brackets):",
    ]
    for name, sec in w["cpu_seconds"].items():
        lines.append(f"  {name:<34} {sec:>8.1f}  ({w['cpu_ms_per_image'][name]:6.1f} ms)")
    waits = ", ".join(
        f"{k.split(' (')[0]} {v:.0f}s" for k, v in w["waiting_for_cpu_seconds"].items()
    )
    lines += [
        f"  busy: {w['cpu_busy_pct']:.0f}% of {r['cpus']} CPUs x the crawl's wall time; "
        f"runnable but waiting for a CPU: {waits}",
        f"  {alone}: {w['baseline_cpu_ms_per_image']:.1f} ms CPU per image -> CPU ratio "
        f"{w['cpu_ratio']:.3f} ({w['cpu_ratio_without_replica']:.3f} without the replica's CPU)",
    ]
    prof = r.get("profile") or {}
    for name, p in prof.items():
        lines.append(f"py-spy {name} ({p['samples']:,} samples), share by phase:")
        for phase, pct in p["phases_pct"].items():
            lines.append(f"  {pct:5.1f}%  {phase}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--images",
        type=int,
        default=20_000,
        help="crawl at least this many images (default 20,000)",
    )
    p.add_argument(
        "--collection-size",
        type=int,
        default=None,
        help="images in the scale collection (default: --images + 2%%, since a few "
        "images are listed by nobody and cannot be reached)",
    )
    p.add_argument("--seeds", type=int, default=50, help="random seeds of the crawl")
    p.add_argument("--seed", type=int, default=7, help="random seed for picking them")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder to keep (and reuse) built collections in; default: a temp dir",
    )
    p.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    p.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="pool size of each worker (tasks wait on HTTP and the graph: more "
        "slots than cores keep the cores busy)",
    )
    p.add_argument("--pool", choices=["prefork", "threads", "solo"], default="prefork")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=10_000.0,
        help="LOOKALIKE_RATE_LIMIT for the workers: requests/s to the replica "
        "(the default 10/s would make the limiter the whole story)",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=None,
        help="LOOKALIKE_CRAWL_LEASE_S for the crawl (default: the setting's, 120 s); "
        "a queued image not finished within it is dispatched again",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="LOOKALIKE_CRAWL_BATCH for the workers: images per fetch task "
        "(default: the setting's, 16)",
    )
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="crawl (and time the baseline) without the learned embeddings "
        "(LOOKALIKE_EMBEDDINGS=0)",
    )
    p.add_argument(
        "--baseline-images",
        type=int,
        default=2000,
        help="thumbnails of the crawl timed in the hashing-only baseline (0: all)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="give up on the crawl after")
    p.add_argument("--progress", type=float, default=15.0, help="seconds between progress lines")
    p.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the workers and the replica with py-spy into DIR",
    )
    p.add_argument(
        "--keep-state",
        type=Path,
        default=None,
        metavar="DIR",
        help="use DIR as the state folder and keep it (logs, graph) afterwards",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON figures")
    p.add_argument(
        "--allow-clear",
        action="store_true",
        help="with NEO4J_URI set: allow emptying that graph first",
    )
    args = p.parse_args(argv)
    if args.images < 10:
        p.error("--images must be at least 10")
    if args.collection_size is None:
        args.collection_size = math.ceil(args.images * 1.02) + 10
    if args.collection_size < args.images:
        p.error("--collection-size must be at least --images")
    if not 1 <= args.seeds <= 1000:
        p.error("--seeds must be from 1 to 1000")
    if args.workers < 1 or args.concurrency < 1:
        p.error("--workers and --concurrency must be positive")
    if args.rate_limit <= 0:
        p.error("--rate-limit must be positive")
    return args


@contextmanager
def state_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-crawl-") as tmp:
        yield Path(tmp)


def build_collection(args: argparse.Namespace, scratch: Path) -> Path:
    from services.replica.scale import build_scale_collection

    root = args.cache if args.cache is not None else scratch / "collections"
    root.mkdir(parents=True, exist_ok=True)
    return build_scale_collection(root / f"scale-{args.collection_size}-0", args.collection_size)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.getLogger("workers.tasks").addHandler(REDISPATCHES)
    started = time.time()
    load_before = os.getloadavg()[0]
    processes = args.workers * args.concurrency

    with state_folder(args.keep_state) as state_dir:
        from services.replica.collection import Collection

        log(f"1/8 building (or reusing) a scale collection of {args.collection_size:,} images")
        t = time.monotonic()
        coll_dir = build_collection(args, state_dir)
        collection = Collection.load(coll_dir)
        build_s = time.monotonic() - t
        plan = plan_crawl(collection, args.images, args.seeds, args.seed)
        log(
            f"    {coll_dir} ({build_s:.1f}s); {args.seeds} seeds reach {len(plan.reach):,} "
            f"images by depth {plan.depth}"
        )

        with servers(state_dir, args.allow_clear) as stk:
            stk.env["LOOKALIKE_EMBEDDINGS"] = "0" if args.no_embeddings else "1"
            # This process acts like the CLI: same state folder and servers as the workers.
            os.environ.update({k: v for k, v in stk.env.items() if k.startswith("LOOKALIKE_")})
            from lookalike.graph import GraphStore
            from lookalike.settings import load_settings
            from services.replica.server import run_replica

            crawler_size = load_settings(stk.env).thumbnail_size  # what the workers will ask
            log(
                f"2/8 stack up; pre-rendering every thumbnail the crawl will request "
                f"(!{crawler_size},{crawler_size}) into the replica's derivative cache "
                "(untimed; the real image service serves thumbnails made at ingest)"
            )
            derivatives = prerender_crawl_thumbnails(
                collection, plan, crawler_size, coll_dir / "derivatives"
            )
            log(
                f"    {derivatives['requested']:,} thumbnails: {derivatives['stored']:,} "
                f"rendered now, {derivatives['present']:,} already there from an earlier "
                f"run; {derivatives['seconds']:.1f}s, {derivatives['usage_mb']:.1f} MB in "
                f"{derivatives['dir']}"
            )

            log("3/8 rendering the baseline's thumbnail sample (untimed)")
            base_settings = load_settings()
            with GraphStore.connect(base_settings) as store:
                store.clear()
                store.ensure_schema()
            rng = random.Random(args.seed + 1)
            crawl_ids = sorted(plan.reach)
            sample_ids = (
                crawl_ids
                if args.baseline_images <= 0 or args.baseline_images >= len(crawl_ids)
                else rng.sample(crawl_ids, args.baseline_images)
            )
            thumbs = thumbnail_sample(collection, sample_ids, base_settings.thumbnail_size)

            embeddings = not args.no_embeddings
            from lookalike.vectors import current_model

            model = current_model(base_settings) if embeddings else None
            if embeddings and model is None:
                raise SystemExit(
                    "embeddings are on but the model cannot be named: run "
                    "`lookalike model install`, or pass --no-embeddings"
                )
            log(
                f"4/8 {'hash+embed' if embeddings else 'hashing'}-only baseline before the "
                f"crawl: {len(thumbs):,} thumbnails, {processes} processes"
            )
            before = hashing_only(thumbs, processes, base_settings.max_thumbnail_pixels, embeddings)
            log(f"    {before['images_per_s']:.2f} images/s")

            with run_replica(
                collection, derivatives_dir=derivatives["dir"], derivatives_mb=derivatives["max_mb"]
            ) as replica:
                env = {
                    **stk.env,
                    **replica.env(),
                    "LOOKALIKE_RATE_LIMIT": str(args.rate_limit),
                    "LOOKALIKE_RATE_BURST": str(max(10, int(min(args.rate_limit, 1000)))),
                    **({"LOOKALIKE_CRAWL_LEASE_S": str(args.lease)} if args.lease else {}),
                    **({"LOOKALIKE_CRAWL_BATCH": str(args.batch)} if args.batch else {}),
                }
                os.environ.update({k: v for k, v in env.items() if k.startswith("LOOKALIKE_")})
                settings = load_settings(max_depth=max(plan.depth, 6))
                workers = Workers(env, state_dir)
                profiler = Profiler(args.py_spy)
                try:
                    log(
                        f"5/8 starting {args.workers} worker(s) x {args.concurrency} "
                        f"({args.pool}); warm-up crawl"
                    )
                    workers.start(args.workers, args.pool, args.concurrency)
                    wait_ready(workers, args.workers)
                    warm, _, _ = run_crawl(
                        settings, Plan([plan.warmup_seed], 1, {}, ""), workers, 300, 1e9
                    )
                    if warm.get("status") != "done":
                        raise RuntimeError(
                            f"the warm-up crawl ended {warm.get('status')}:\n" + workers.log_tail()
                        )
                    # Forget the warm-up: empty graph and thumbnail cache, fresh counters.
                    with GraphStore.connect(settings) as store:
                        store.clear()
                    shutil.rmtree(settings.thumbnail_dir, ignore_errors=True)
                    replica.reset_stats()
                    tasks_before = celery_task_totals()
                    REDISPATCHES.count = 0
                    worker_redispatches = workers.count_in_logs("lease expired")
                    driver_retries = workers.count_in_logs(DRIVER_RETRY)
                    redis_before = redis_commands(settings.redis())

                    log(
                        f"6/8 crawling {len(plan.reach):,} images from {args.seeds} seeds to "
                        f"depth {plan.depth}"
                    )
                    # Workers with their prefork children; this process without them (the
                    # workers are its children too): its busy threads are the replica's.
                    profiler.start(
                        {f"worker{k}": (p.pid, True) for k, p in enumerate(workers.procs)}
                        | {"replica": (os.getpid(), False)}
                    )

                    def cpu_waits() -> dict[str, float]:
                        return {
                            "workers (Celery, all processes)": cpu_wait_seconds(
                                [q for w in workers.procs for q in group_pids(w.pid)]
                            ),
                            **{
                                f"{n} server": cpu_wait_seconds([pid])
                                for n, pid in stk.pids.items()
                            },
                        }

                    waits0 = cpu_waits()
                    cpu0 = {
                        "workers (Celery, all processes)": workers.cpu(),
                        REPLICA: self_cpu(),
                        **{f"{n} server": cpu_seconds(pid) for n, pid in stk.pids.items()},
                    }
                    final, timeline, observed = run_crawl(
                        settings, plan, workers, args.timeout, args.progress
                    )
                    cpu1 = {
                        "workers (Celery, all processes)": workers.cpu(),
                        REPLICA: self_cpu(),
                        **{f"{n} server": cpu_seconds(pid) for n, pid in stk.pids.items()},
                    }
                    waits1 = cpu_waits()
                    profile = profiler.stop()
                    tasks_after = celery_task_totals()
                    redispatches = {
                        "by_this_process (control.wait_for)": REDISPATCHES.count,
                        "by_workers (watch_crawl)": workers.count_in_logs("lease expired")
                        - worker_redispatches,
                    }
                    driver_retries = workers.count_in_logs(DRIVER_RETRY) - driver_retries
                    redis_after = redis_commands(settings.redis())
                    replica_stats = replica.stats()
                finally:
                    profiler.stop()
                    workers.stop()

            log("7/8 reading the crawl's thumbnails back; hashing-only baseline after the crawl")
            from lookalike.thumbcache import ThumbnailCache

            cache = ThumbnailCache(settings.thumbnail_dir, 1 << 62)
            cached = [cache.get(i) for i in sample_ids]
            same_bytes = sum(1 for a, b in zip(cached, thumbs, strict=True) if a == b)
            after_thumbs = [a if a is not None else b for a, b in zip(cached, thumbs, strict=True)]
            after = hashing_only(
                after_thumbs, processes, base_settings.max_thumbnail_pixels, embeddings
            )
            log(f"    {after['images_per_s']:.2f} images/s")
            with GraphStore.connect(settings) as store:
                stored = store.get_images(sample_ids)
                graph_counts = store.counts()
            same_phash = sum(
                1
                for i, ph in zip(sample_ids, after["phash"], strict=True)
                if stored.get(i, {}).get("phash") == ph
            )

    log("8/8 results")
    c = final.get("counts", {})
    wall = (
        (final["finished_at"] - final["created_at"]) / 1000
        if final.get("finished_at")
        else observed
    )
    images = min(c.get("fetched", 0), c.get("hashed", 0))
    if embeddings:
        images = min(images, c.get("embedded", 0))
    crawl_rate = images / wall if wall > 0 else 0.0
    base_rate = (before["images_per_s"] + after["images_per_s"]) / 2
    cpu = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
    total_cpu = sum(cpu.values())
    cpu["total"] = round(total_cpu, 1)
    redis_delta = {
        k: {
            "calls": v["calls"] - redis_before.get(k, {}).get("calls", 0),
            "usec": v["usec"] - redis_before.get(k, {}).get("usec", 0),
        }
        for k, v in redis_after.items()
    }
    redis_top = dict(
        sorted(
            ((k, v) for k, v in redis_delta.items() if v["calls"]),
            key=lambda kv: -kv[1]["usec"],
        )[:8]
    )
    base_cpu = round((before["cpu_ms_per_image"] + after["cpu_ms_per_image"]) / 2, 2)
    crawl_cpu = 1000 * total_cpu / max(images, 1)
    replica_cpu = 1000 * cpu[REPLICA] / max(images, 1)
    tasks = {k: tasks_after.get(k, 0) - tasks_before.get(k, 0) for k in tasks_after}
    tasks = {k.removeprefix("lookalike."): v for k, v in sorted(tasks.items()) if v}
    for b in (before, after):
        b.pop("phash", None)
    results: dict[str, Any] = {
        "benchmark": "crawl",
        **labels(),
        "backend": stk.backend,
        "started_at": int(started),
        "wall_seconds": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "label": labels(),
        "embeddings": {"on": embeddings, "model": model},
        "collection": {
            "images": len(collection),
            "build_seconds": round(build_s, 1),
            "path": str(coll_dir),
        },
        "workers": {
            "processes": args.workers,
            "concurrency": args.concurrency,
            "pool": args.pool,
            "rate_limit": args.rate_limit,
            "batch": settings.crawl_batch,
        },
        "crawl": {
            "id": final.get("id"),
            "status": final.get("status"),
            "timed_out": bool(final.get("timed_out")),
            "seeds": plan.seeds,
            "depth": plan.depth,
            "what_is_counted": "images both fetched (record + similar list stored) and "
            "hashed (thumbnail downloaded, 5 hashes stored"
            + (", embedded: vector to Redis, its record in the graph" if embeddings else "")
            + "), per second from the crawl's created_at to its "
            "finished_at",
            "images": images,
            "wall_seconds": round(wall, 2),
            "observed_seconds": round(observed, 2),
            "images_per_s": round(crawl_rate, 2),
            "fetched": c.get("fetched", 0),
            "hashed": c.get("hashed", 0),
            "embedded": c.get("embedded", 0),
            "hash_skipped": c.get("hash_skipped", 0),
            "nodes": c.get("nodes", 0),
            "edges": c.get("edges", 0),
            "failed": c.get("failed", {}),
            "failed_total": c.get("failed_total", 0),
            "expected": len(plan.reach),
            "as_expected": c.get("fetched") == len(plan.reach) == c.get("nodes")
            and not c.get("failed_total")
            and (not embeddings or c.get("embedded") == c.get("hashed")),
            "graph_counts": graph_counts,
            "tasks": tasks,
            "lease_s": settings.crawl_lease_s,
            "lease_redispatches": redispatches,
            "graph_write_retries": driver_retries,
            "replica": {
                k: replica_stats[k]
                for k in ("requests", "statuses", "faults", "max_per_second", "pictures")
            },
            "redis_top_commands": redis_top,
            "redis_commands_total": sum(v["calls"] for v in redis_delta.values()),
            "timeline": timeline,
        },
        "replica_derivatives": {
            "what": "thumbnails pre-rendered (untimed) into the replica's derivative cache "
            "before the crawl, as the real image service serves them from a cache",
            **derivatives,
        },
        "baseline": {
            "what": "decode + lookalike.hashing.hash_image"
            + (" + the embedder" if embeddings else "")
            + " over in-memory thumbnails of the crawl, "
            f"multiprocessing pool of {processes} (= crawl concurrency)",
            "before": before,
            "after": after,
            "images_per_s_mean": round(base_rate, 2),
            "checked": len(sample_ids),
            "same_bytes": same_bytes,
            "same_phash": same_phash,
        },
        "ratio": round(crawl_rate / base_rate, 3) if base_rate else 0.0,
        "target_ratio": TARGET_RATIO,
        "where_the_time_goes": {
            "cpu_seconds": cpu,
            "cpu_ms_per_image": {k: round(1000 * v / max(images, 1), 1) for k, v in cpu.items()},
            # Runnable but not running: the machine had no CPU free for them.
            "waiting_for_cpu_seconds": {k: round(waits1[k] - waits0[k], 1) for k in waits0},
            "cpu_busy_pct": round(100 * total_cpu / (wall * (os.cpu_count() or 1)), 1)
            if wall
            else 0.0,
            "baseline_cpu_ms_per_image": base_cpu,
            # What the wall ratio would be if both ran their cores flat out: independent of
            # other load on a shared machine, and of latency that more concurrency would hide.
            "cpu_ratio": round(base_cpu / crawl_cpu, 3) if crawl_cpu else 0.0,
            # The same without the replica's CPU: the real catalogue runs elsewhere.
            "cpu_ratio_without_replica": round(base_cpu / (crawl_cpu - replica_cpu), 3)
            if crawl_cpu > replica_cpu
            else 0.0,
        },
        "profile": profile,
    }
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
