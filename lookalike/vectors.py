"""The hand-off of image embeddings from the workers to the index sidecar, through Redis.

Why Redis and not the graph: a vector is 1280 float32s (5 KB). As a node property it would
make every node read heavy and every crawl transaction bigger, and the graph would still not
search it. So a worker that embeds a thumbnail appends the vector to one Redis stream
(``STREAM``: image id, model, time, raw float32 bytes) and records on the node only *which
model* embedded it and when (``embed_model``, ``embedded_at``). The indexer drains the stream
into its next index generation and then deletes what it drained, so Redis holds only the
vectors not yet in a published generation; readers (the API) scan those exactly, so a fresh
vector is searchable at once.

Nothing is lost when Redis is flushed or the stream is capped (``XADD MAXLEN``) while the
indexer is down: the graph says which images are embedded by which model, the indexer
compares that with the vectors it holds and asks the workers to embed the missing ones again
(``lookalike.embed_images``, see ``REEMBED``).

Order matters: a worker appends the vector *before* its graph write, and the indexer reads
the graph *before* the stream, so whatever the graph it read calls embedded was already in
the stream it reads next: a vector is only taken for missing when it really is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import redis

from lookalike.settings import Settings

if TYPE_CHECKING:
    from lookalike.embedding.embedder import Embedder

log = logging.getLogger(__name__)

STREAM = "lk:vectors"
# Images whose re-embedding the indexer asked for (id -> epoch ms of the request), so that it
# asks again only after ``REEMBED_RETRY_MS`` if the vector still has not arrived.
REEMBED = "lk:reembed"
REEMBED_RETRY_MS = 30 * 60 * 1000
# The widest vector accepted from the stream; anything bigger is a corrupt entry.
MAX_DIM = 8192


def current_model(settings: Settings) -> str | None:
    """The version of the model the workers embed with, or None when embeddings are off
    (or the model cannot be named: its weights package is missing, which is logged)."""
    if not settings.embeddings:
        return None
    from lookalike.embedding.model import EmbeddingError, model_info, recipe_of

    try:
        return model_info(recipe_of(settings.embed_recipe)).version
    except EmbeddingError as exc:
        log.error("embeddings are on but the model cannot be named: %s", exc)
        return None


class ModelUnavailable:
    """Stands for a model that cannot be loaded: every embedding fails with the reason, so
    each image records why it has no vector (and the crawl goes on)."""

    def __init__(self, version: str, error: Exception) -> None:
        self.version = version
        self.error = error

    def embed(self, image: Any) -> np.ndarray:
        raise self.error


def embedder(settings: Settings) -> Embedder | ModelUnavailable | None:
    """This process's embedder, or None when embeddings are off; a ``ModelUnavailable``
    when they are on but the model does not load. (Imported here: onnxruntime is loaded
    only by the processes that embed.)"""
    if not settings.embeddings:
        return None
    from lookalike.embedding.embedder import shared_embedder
    from lookalike.embedding.model import EmbeddingError

    try:
        return shared_embedder(settings)
    except EmbeddingError as exc:
        log.error("embeddings are on but the model does not load: %s", exc)
        return ModelUnavailable(current_model(settings) or "unavailable", exc)


class BadVector(ValueError):
    """A vector that cannot be stored or compared: wrong shape, not finite, zero."""


@dataclass(frozen=True)
class VectorEntry:
    """One vector as it travels through the stream."""

    stream_id: str  # Redis stream id, "<ms>-<seq>"
    image_id: str
    model: str
    embedded_at: int  # epoch ms
    vector: np.ndarray  # float32, unit length


def check_vector(vector: Any, dim: int | None = None) -> np.ndarray:
    """A 1-d finite float32 vector of unit length (normalised here when it is not quite)."""
    v = np.asarray(vector, dtype=np.float32)
    if v.ndim != 1 or not 1 <= len(v) <= MAX_DIM:
        raise BadVector(f"expected a 1-d vector of 1 to {MAX_DIM} numbers, got shape {v.shape}")
    if dim is not None and len(v) != dim:
        raise BadVector(f"expected {dim} dimensions, got {len(v)}")
    if not np.all(np.isfinite(v)):
        raise BadVector("the vector has NaN or infinite components")
    norm = float(np.linalg.norm(v))
    if not norm or not math.isfinite(norm):
        raise BadVector("the vector is zero")
    if abs(norm - 1.0) > 1e-6:
        v = v / np.float32(norm)
    return np.ascontiguousarray(v, dtype=np.float32)


def stream_key(stream_id: str | bytes) -> tuple[int, int]:
    """A stream id as a sortable (ms, seq) pair."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def publish(
    client: redis.Redis, rows: Iterable[tuple[str, str, int, np.ndarray]], maxlen: int
) -> list[str]:
    """Append ``(image id, model, embedded_at, vector)`` rows in one round trip; returns
    their stream ids. ``maxlen`` caps the stream (approximately, so trimming stays cheap):
    should the indexer stay away that long, the oldest vectors go and are re-embedded."""
    pipe = client.pipeline(transaction=False)
    if not append(pipe, rows, maxlen):
        return []
    return [x.decode() if isinstance(x, bytes) else str(x) for x in pipe.execute()]


def append(
    pipe: redis.client.Pipeline, rows: Iterable[tuple[str, str, int, np.ndarray]], maxlen: int
) -> int:
    """Queue ``publish``'s appends on ``pipe`` (to send with other commands in one round
    trip); returns how many."""
    n = 0
    for image_id, model, at, vector in rows:
        v = check_vector(vector)
        pipe.xadd(
            STREAM,
            {"id": image_id, "model": model, "at": int(at), "vec": v.tobytes()},
            maxlen=maxlen,
            approximate=True,
        )
        n += 1
    return n


def _entry(stream_id: bytes | str, fields: dict[bytes, bytes]) -> VectorEntry:
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    try:
        image_id = fields[b"id"].decode()
        model = fields[b"model"].decode()
        at = int(fields[b"at"])
        raw = fields[b"vec"]
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise BadVector(f"stream entry {sid} lacks a field or has a bad one ({exc})") from exc
    if len(raw) % 4:
        raise BadVector(f"stream entry {sid}: {len(raw)} bytes is not a float32 vector")
    return VectorEntry(sid, image_id, model, at, check_vector(np.frombuffer(raw, "<f4")))


def read_after(
    client: redis.Redis, after: str = "0-0", count: int = 1000, upto: str = "+"
) -> tuple[list[VectorEntry], str, int]:
    """Up to ``count`` entries after stream id ``after`` (exclusive) and up to ``upto``.
    Returns (good entries, the last stream id read, how many entries were malformed and
    skipped); a malformed entry is logged and skipped, never fatal."""
    # A cast: redis-py types XRANGE's reply for every client (str with decode_responses, None
    # for an entry deleted under a consumer group); ours reads bytes, and XRANGE lists only
    # live entries.
    rows = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        client.xrange(STREAM, min=f"({after}", max=upto, count=count),
    )
    good: list[VectorEntry] = []
    bad = 0
    last = after
    for stream_id, fields in rows:
        last = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        try:
            good.append(_entry(stream_id, fields))
        except BadVector as exc:
            bad += 1
            log.warning("skipping a malformed vector in %s: %s", STREAM, exc)
    return good, last, bad


def read_all(
    client: redis.Redis, after: str = "0-0", upto: str = "+", page: int = 2000
) -> tuple[list[VectorEntry], str, int]:
    """Every entry after ``after`` up to ``upto``, a page at a time."""
    out: list[VectorEntry] = []
    bad_total = 0
    last = after
    while True:
        good, new_last, bad = read_after(client, last, page, upto)
        out.extend(good)
        bad_total += bad
        if new_last == last:
            return out, last, bad_total
        last = new_last
        if len(good) + bad < page:
            return out, last, bad_total


def last_id(client: redis.Redis) -> str | None:
    """The id of the newest entry ever added (None when there is no stream): a reader that
    saw a later id knows the stream was flushed and made anew."""
    try:
        info = client.xinfo_stream(STREAM)
    except redis.ResponseError:
        return None
    value = info.get("last-generated-id")  # redis-py decodes the keys of XINFO's reply
    return value.decode() if isinstance(value, bytes) else value


def delete(client: redis.Redis, stream_ids: Sequence[str]) -> int:
    """Remove entries a published generation took in (or judged stale)."""
    removed = 0
    for start in range(0, len(stream_ids), 1000):
        removed += int(client.xdel(STREAM, *stream_ids[start : start + 1000]))
    return removed


def pending(client: redis.Redis) -> int:
    """How many vectors wait in the stream."""
    return int(client.xlen(STREAM))


def request_reembed(
    client: redis.Redis, ids: Sequence[str], now_ms: int, retry_ms: int = REEMBED_RETRY_MS
) -> list[str]:
    """The ids of ``ids`` not asked for within ``retry_ms``, now marked as asked for."""
    if not ids:
        return []
    previous = client.hmget(REEMBED, list(ids))
    due = [
        i for i, p in zip(ids, previous, strict=True) if p is None or now_ms - int(p) >= retry_ms
    ]
    if due:
        client.hset(REEMBED, mapping=dict.fromkeys(due, now_ms))
    return due


def requested_reembeds(client: redis.Redis) -> list[str]:
    """Images whose re-embedding was asked for and not yet seen through."""
    return sorted(k.decode() if isinstance(k, bytes) else k for k in client.hkeys(REEMBED))


def forget_reembed(client: redis.Redis, ids: Sequence[str]) -> None:
    """Clear the request marks of images whose vectors arrived."""
    ids = list(ids)
    for start in range(0, len(ids), 1000):
        client.hdel(REEMBED, *ids[start : start + 1000])
