"""A crawl's state in Redis: the breadth-first frontier, seen set, leases and counts.

Why scripts: several worker processes finish images at the same moment. Each completion is
one Lua script (``workers/lua/``), so "remove from pending, record neighbours, and if this
level is now empty open the next one" happens atomically; exactly one completion opens each
level.

Breadth-first across all workers: only one level is dispatched at a time. Neighbours found
at depth d are collected in a sorted set scored by (parent's position, rank), so when level
d+1 opens its images are in the order a sequential breadth-first walk would visit them, and
``max_images`` cuts that order deterministically.

Leases: every dispatched image is in a ``pending`` hash. While it waits in the broker's queue
its value is ``-dispatch_time``; the worker that starts it ``claim``s it, setting a deadline
``now + lease``. A worker killed mid-task leaves an expired deadline; ``stale()`` finds those
so they are dispatched again. An image still marked queued is only presumed lost once the
broker's queue is empty (its message died with a worker that had reserved it), so a long
queue never causes duplicate work. Tasks are idempotent on the image id, and a late duplicate
completion is ignored.

Hashing: each stored image is hashed once per crawl. The worker that fetches an image hashes
it in the same task; a listed image that will be fetched later waits in ``deferred`` until then,
and only images that will not be fetched (past the depth limit, cut by the budget, failed)
get hash tasks of their own. ``start_fetch`` tells the fetching worker whether it is expected
to hash, and what the image was last hashed from (``HINTS``) and embedded from (``EMBED_HINTS``),
so that it can hash and embed before its graph write and store the results in the same
transaction; its completion then counts the hash at once. The expectation can be wrong only
when another worker's listing races it, which costs a hash done twice (the second finds the
graph current), never a hash missed. "Hashing" here is the whole look at a thumbnail: its
perceptual hashes and, when embeddings are on, its vector.

Finishing: every completion script also checks whether the crawl is now done (fetching over,
no hash outstanding) and says so, so no extra round trip is spent asking.

Keys (prefix ``lk:crawl:<id>:``): meta, counts, failures, seen, done, nodes, order:<d>,
pending:<d>, next:<d>, hashing, deferred, thumbs, attempts. ``lk:crawls`` indexes crawls by
creation; ``lk:hashed`` and ``lk:embedded`` hold the hints.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from lookalike.redis_scripts import source

PREFIX = "lk:crawl:"
INDEX = "lk:crawls"
# Per image, what it was last hashed from ("<algorithm version> <thumbnail URL>"), across
# crawls: a hint, so a fetch hashes before its graph write only images likely unhashed. The
# graph has the last word: a wrong hint costs a wasted hash or a second write, never a wrong
# result.
HINTS = "lk:hashed"
# The same for embeddings: "<model version> <thumbnail URL>" per image, so a model change (or a
# new thumbnail) makes the next fetch embed the image again.
EMBED_HINTS = "lk:embedded"
STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")

# The scripts, in workers/lua/. The completions end with maybe_finish (its function file
# first), so finishing a crawl costs no extra round trip.
_COMPLETE_FETCH = source("workers", "maybe_finish_function", "complete_fetch")
_COMPLETE_HASH = source("workers", "maybe_finish_function", "complete_hash")
_MAYBE_FINISH = source("workers", "maybe_finish_function", "maybe_finish")
_CLAIM = source("workers", "claim")
_START_FETCH = source("workers", "start_fetch")


def now_ms() -> int:
    return int(time.time() * 1000)


def hash_hint(version: str, thumbnail_url: str) -> str:
    """An image's entry in HINTS (what its hashes were computed from), or in EMBED_HINTS
    (``version``: the model's; what its vector was computed from)."""
    return f"{version} {thumbnail_url}"


@dataclass
class FetchOutcome:
    duplicate: bool
    to_hash: list[str]  # images to queue hash tasks for
    advanced: bool
    next_level: list[str]
    hash_self: bool = False  # the fetching worker hashes the fetched image (its lease)
    hashed: bool = False  # ... and already did: the hashes were stored with the fetch
    finished: bool = False  # this completion ended the crawl


@dataclass(frozen=True)
class FetchStart:
    """A claimed fetch: whether it is expected to hash the image, and the image's hints."""

    will_hash: bool
    hint: str
    embed_hint: str = ""


@dataclass(frozen=True)
class Completion:
    """One fetched image, for ``complete_fetches``: see ``complete_fetch``."""

    image_id: str
    neighbours: list[str]
    stored: list[tuple[str, str]]
    edges: int
    prehashed: str | None = None
    embed_hint: str | None = None  # with ``prehashed``: what the image is now embedded from
    embedded: bool = False  # ... and a vector was made for it


def _outcome(out: dict[str, Any]) -> FetchOutcome:
    if out.get("duplicate"):
        return FetchOutcome(True, [], False, [])
    # cjson encodes an empty Lua table as {} rather than [].
    to_hash = out["hash"] if isinstance(out["hash"], list) else []
    nxt = out["next"] if isinstance(out["next"], list) else []
    return FetchOutcome(
        False,
        to_hash,
        bool(out["advance"]),
        nxt,
        bool(out["hash_self"]),
        bool(out["hashed"]),
        bool(out["finished"]),
    )


class CrawlState:
    """One crawl's keys in Redis, and the atomic steps that move it forward."""

    def __init__(self, client: redis.Redis, crawl_id: str, lease_s: float = 120.0) -> None:
        self.r = client
        self.id = crawl_id
        self.p = f"{PREFIX}{crawl_id}:"
        self.lease_ms = int(lease_s * 1000)
        self._complete_fetch = client.register_script(_COMPLETE_FETCH)
        self._complete_hash = client.register_script(_COMPLETE_HASH)
        self._maybe_finish = client.register_script(_MAYBE_FINISH)
        self._claim = client.register_script(_CLAIM)
        self._start_fetch = client.register_script(_START_FETCH)

    # ------------------------------------------------------------------ creation

    def create(
        self, seeds: list[str], depth: int, max_images: int | None, kind: str = "crawl"
    ) -> None:
        ts = now_ms()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            self.p + "meta",
            mapping={
                "id": self.id,
                "status": "running",
                "kind": kind,
                "seeds": json.dumps(seeds),
                "depth": depth,
                "max_images": max_images or 0,
                "level": 0,
                "fetch_done": 0,
                "created_at": ts,
                "started_at": ts,
            },
        )
        pipe.hset(
            self.p + "counts", mapping={"fetched": 0, "hashed": 0, "edges": 0, "depth_reached": 0}
        )
        if seeds:
            pipe.sadd(self.p + "seen", *seeds)
            pipe.hset(self.p + "pending:0", mapping={s: -ts for s in seeds})
            pipe.hset(self.p + "order:0", mapping={s: i for i, s in enumerate(seeds, 1)})
        else:
            pipe.hset(self.p + "meta", "fetch_done", 1)
        pipe.zadd(INDEX, {self.id: ts})
        pipe.execute()

    def exists(self) -> bool:
        return bool(self.r.exists(self.p + "meta"))

    # ------------------------------------------------------------------ reading

    def meta(self) -> dict[str, str]:
        return {as_text(k): as_text(v) for k, v in self.r.hgetall(self.p + "meta").items()}

    def status(self) -> str | None:
        s = self.r.hget(self.p + "meta", "status")
        return as_text(s) if s else None

    def is_active(self) -> bool:
        return self.status() == "running"

    def summary(self) -> dict[str, Any]:
        meta = self.meta()
        if not meta:
            return {}
        counts = {as_text(k): int(v) for k, v in self.r.hgetall(self.p + "counts").items()}
        failed = {k[len("failed:") :]: v for k, v in counts.items() if k.startswith("failed:")}
        level = int(meta.get("level", 0))
        queued = {str(d): self.r.hlen(self.p + f"pending:{d}") for d in range(level, level + 1)}
        queued[str(level + 1)] = self.r.zcard(self.p + f"next:{level + 1}")
        return {
            "id": self.id,
            "status": meta["status"],
            "kind": meta.get("kind", "crawl"),
            "seeds": json.loads(meta.get("seeds", "[]")),
            "depth": int(meta.get("depth", 0)),
            "max_images": int(meta.get("max_images", 0)) or None,
            "level": level,
            "created_at": int(meta.get("created_at", 0)),
            "finished_at": int(meta["finished_at"]) if "finished_at" in meta else None,
            "error": meta.get("error"),
            "counts": {
                "fetched": counts.get("fetched", 0),
                "hashed": counts.get("hashed", 0),
                "hash_skipped": counts.get("hash_skipped", 0),
                "embedded": counts.get("embedded", 0),
                "edges": counts.get("edges", 0),
                "nodes": self.r.scard(self.p + "nodes"),
                "depth_reached": counts.get("depth_reached", 0),
                "failed": failed,
                "failed_total": sum(failed.values()),
            },
            "queued": queued,
            "hash_queue": self.r.hlen(self.p + "hashing"),
        }

    def failures(self) -> dict[str, str]:
        return {as_text(k): as_text(v) for k, v in self.r.hgetall(self.p + "failures").items()}

    def image_ids(self) -> list[str]:
        """Every image this crawl stored (fetched ones and their listed neighbours)."""
        return sorted(as_text(m) for m in self.r.smembers(self.p + "nodes"))

    def fetched_ids(self) -> list[str]:
        return sorted(as_text(m) for m in self.r.smembers(self.p + "done"))

    def pending(self, depth: int) -> list[str]:
        return sorted(as_text(k) for k in self.r.hkeys(self.p + f"pending:{depth}"))

    def thumbnail_url(self, image_id: str) -> str | None:
        url = self.r.hget(self.p + "thumbs", image_id)
        return as_text(url) if url else None

    # ------------------------------------------------------------------ progress

    def is_pending(self, image_id: str, depth: int) -> bool:
        return bool(self.r.hexists(self.p + f"pending:{depth}", image_id))

    def is_hash_pending(self, image_id: str) -> bool:
        return bool(self.r.hexists(self.p + "hashing", image_id))

    def claim(self, image_id: str, depth: int | None) -> bool:
        """Start work on an image: take its lease. False if the crawl no longer runs or the
        image is no longer pending (a duplicate delivery)."""
        key = self.p + ("hashing" if depth is None else f"pending:{depth}")
        return bool(
            self._claim(keys=[self.p + "meta", key], args=[image_id, now_ms() + self.lease_ms])
        )

    def start_fetch(self, image_id: str, depth: int) -> FetchStart | None:
        """``claim`` a fetch and say whether it is expected to hash the image too, in one
        round trip; None if the fetch is not to be done."""
        return self.start_fetches([image_id], depth)[0]

    def start_fetches(self, image_ids: list[str], depth: int) -> list[FetchStart | None]:
        """``start_fetch`` for several images of one level, in one round trip (a pipeline:
        each image is still its own atomic script)."""
        pipe = self.r.pipeline(transaction=False)
        deadline = now_ms() + self.lease_ms
        for image_id in image_ids:
            self._start_fetch(
                keys=[self.p, HINTS, EMBED_HINTS], args=[image_id, depth, deadline], client=pipe
            )
        out: list[FetchStart | None] = []
        for ok, will_hash, hint, embed_hint in pipe.execute():
            out.append(
                FetchStart(bool(will_hash), as_text(hint), as_text(embed_hint)) if ok else None
            )
        return out

    def complete_fetch(
        self,
        image_id: str,
        depth: int,
        neighbours: list[str],
        stored: list[tuple[str, str]],
        edges: int,
        inline_hash: bool = False,
        prehashed: str | None = None,
    ) -> FetchOutcome:
        """Record a fetched image; returns what to hash and, if the level closed, what next.

        With ``inline_hash`` the fetching worker hashes the images it fetches itself
        (``hash_self``), and listed images that will be fetched later wait for that instead
        of getting hash tasks: one task per image instead of two. ``prehashed`` (the image's
        hint): the worker hashed it before the graph write, so if the image is this fetch's
        to hash, it is counted as hashed now (``hashed``).
        """
        return self.complete_fetches(
            depth, [Completion(image_id, neighbours, stored, edges, prehashed)], inline_hash
        )[0]

    def complete_fetches(
        self, depth: int, completions: list[Completion], inline_hash: bool = False
    ) -> list[FetchOutcome]:
        """``complete_fetch`` for several images of one level, in order, in one round trip
        (each is still its own atomic script, so at most one of them opens the next level)."""
        pipe = self.r.pipeline(transaction=False)
        ts = now_ms()
        for c in completions:
            self._complete_fetch(
                keys=[self.p, HINTS, EMBED_HINTS],
                args=[
                    c.image_id,
                    depth,
                    ts,
                    self.lease_ms,
                    json.dumps(c.neighbours),
                    json.dumps([list(s) for s in c.stored]),
                    "1" if inline_hash else "0",
                    c.edges,
                    "1" if c.prehashed else "0",
                    c.prehashed or "",
                    c.embed_hint or "",
                    "1" if c.embedded else "0",
                ],
                client=pipe,
            )
        return [_outcome(json.loads(raw)) for raw in pipe.execute()]

    def fail_fetch(
        self, image_id: str, depth: int, reason: str, message: str, inline_hash: bool = False
    ) -> FetchOutcome:
        """Record an image that could not be fetched; the crawl goes on without it."""
        self.r.hset(self.p + "failures", image_id, f"{reason}: {message}"[:500])
        self.r.hincrby(self.p + "counts", f"failed:{reason}", 1)
        return self.complete_fetch(image_id, depth, [], [], 0, inline_hash=inline_hash)

    def complete_hash(
        self,
        image_id: str,
        counter: str = "hashed",
        hint: str = "",
        embed_hint: str = "",
        embedded: bool = False,
    ) -> int:
        """Record an image's hashing as ``counter``. Returns 0 for a duplicate completion,
        1 when it counted, 2 when it counted and ended the crawl. ``hint``/``embed_hint``:
        what was hashed/embedded (see HINTS), for a success; ``embedded``: a vector was
        made (counted as ``embedded``)."""
        return int(
            self._complete_hash(
                keys=[self.p, HINTS, EMBED_HINTS],
                args=[image_id, counter, now_ms(), hint, embed_hint, "1" if embedded else "0"],
            )
        )

    def fail_hash(self, image_id: str, reason: str, message: str) -> int:
        self.r.hset(self.p + "failures", f"{image_id}:thumbnail", f"{reason}: {message}"[:500])
        return self.complete_hash(image_id, f"failed:thumbnail_{reason}")

    def note_embed_failures(self, failures: dict[str, str]) -> None:
        """Record embeddings that failed (image id -> "<reason>: <message>") among the
        crawl's failures; their thumbnails still count as hashed."""
        if not failures:
            return
        pipe = self.r.pipeline(transaction=False)
        for image_id, error in failures.items():
            pipe.hset(self.p + "failures", f"{image_id}:embedding", error[:500])
            pipe.hincrby(self.p + "counts", f"failed:embedding_{error.split(':', 1)[0]}", 1)
        pipe.execute()

    def maybe_finish(self) -> bool:
        return bool(self._maybe_finish(keys=[self.p], args=[now_ms()]))

    def cancel(self) -> bool:
        """Stop dispatching; tasks already queued see the status and drop their image."""
        if self.status() in FINAL:
            return False
        self.r.hset(self.p + "meta", mapping={"status": "cancelled", "finished_at": now_ms()})
        return True

    def fail(self, error: str) -> None:
        self.r.hset(
            self.p + "meta",
            mapping={
                "status": "failed",
                "error": error[:1000],
                "finished_at": now_ms(),
            },
        )

    def attempt(self, image_id: str, what: str) -> int:
        """Count one more try of ``what`` (fetch/hash) for an image; returns the count."""
        return int(self.r.hincrby(self.p + "attempts", f"{what}:{image_id}", 1))

    def extend_lease(self, image_id: str, depth: int | None, seconds: float) -> None:
        self.extend_leases([image_id], depth, seconds)

    def extend_leases(self, image_ids: list[str], depth: int | None, seconds: float) -> None:
        """Push the lease deadlines of images a worker holds to ``seconds`` + a lease from
        now, in one round trip."""
        key = self.p + ("hashing" if depth is None else f"pending:{depth}")
        deadline = now_ms() + int(seconds * 1000) + self.lease_ms
        pipe = self.r.pipeline(transaction=False)
        for image_id in image_ids:
            # Only while still pending (atomically): never resurrect a completed image.
            self._claim(keys=[self.p + "meta", key], args=[image_id, deadline], client=pipe)
        pipe.execute()

    # ------------------------------------------------------------------ leases

    def stale(self, queue_empty: bool) -> tuple[int, list[str], list[str]]:
        """Images whose worker died: (level, fetches, hashes) to dispatch again.

        Started images whose lease expired, and, when the broker's queue is empty, images
        dispatched over a lease ago that no worker ever started. Their marks are renewed here,
        so two watchdogs do not dispatch them twice at once.
        """
        level = int(self.r.hget(self.p + "meta", "level") or 0)
        ts = now_ms()
        out: list[list[str]] = []
        for key in (self.p + f"pending:{level}", self.p + "hashing"):
            expired, lost = [], []
            for k, v in self.r.hgetall(key).items():
                mark = int(v)
                if 0 < mark < ts:
                    expired.append(as_text(k))
                elif mark <= 0 and queue_empty and ts + mark > self.lease_ms:
                    lost.append(as_text(k))
            if expired or lost:
                self.r.hset(key, mapping={e: -ts for e in expired + lost})
            out.append(sorted(expired + lost))
        return level, out[0], out[1]


def as_text(value: bytes | str) -> str:
    """A value read from Redis as text: redis-py types replies as bytes or str (str only with
    ``decode_responses``, which our clients do not set)."""
    return value.decode() if isinstance(value, bytes) else value


def crawl_ids(client: redis.Redis, limit: int = 100, offset: int = 0) -> list[str]:
    """Crawl ids, newest first: ``limit`` of them after skipping ``offset``."""
    # redis-py types the members as maybe (member, score) pairs, which only withscores returns.
    ids = cast(list[bytes], client.zrevrange(INDEX, offset, offset + limit - 1))
    return [c.decode() for c in ids]


def crawl_count(client: redis.Redis) -> int:
    return int(client.zcard(INDEX))
