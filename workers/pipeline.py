"""The per-image steps of a crawl, as plain functions of (client, store): no Celery here.

Scrapy's split, roughly: the frontier (``frontier.py``) schedules, the catalogue client
downloads, and these functions are the pipelines that turn a downloaded record into graph
writes. Keeping them free of Celery makes them easy to test and to reuse for one-off fetches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import redis
from PIL import Image

from lookalike import hashmark
from lookalike.catalogue import CatalogueClient
from lookalike.errors import CatalogueError
from lookalike.graph import GraphStore, now_ms
from lookalike.hashing import ImageDecodeError, algorithm_version, hash_image
from lookalike.records import ImageRecord, ImageWithSimilar
from lookalike.thumbcache import ThumbnailCache
from lookalike.vectors import append, check_vector
from lookalike.viewstore import ViewStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """What storing one fetched image produced, for the frontier."""

    image_id: str
    neighbours: list[str]  # in rank order
    stored: list[tuple[str, str]]  # (id, thumbnail info.json URL) of every node written
    edges: int
    thumbnail_url: str  # the image's own thumbnail info.json URL
    needs: Needs  # what the node, as it was before this write, lacked for this thumbnail


def store_fetched_many(
    store: GraphStore,
    items: Sequence[tuple[ImageWithSimilar, Thumbnail | None]],
    seen_at: int,
    model: str | None = None,
) -> list[Fetched]:
    """Write fetched images, the images they list, the SIMILAR_TO edges, and prune stale
    edges — all in one transaction, so a crash never leaves half an update. What each
    image's thumbnail gave (``download_and_hash``: hashes, which model embedded it; None:
    not looked at yet) goes in the same transaction. ``model``: the embedder's version
    (None: embeddings off), to tell what each node still needs.

    One transaction for several images: the graph server's per-transaction and
    per-statement costs are paid once per batch (five statements, however many images),
    not once per image. ``seen_at``: the write's stamp (``fetched_at``, ``hashed_at``), the
    one ``publish_vectors(..., fetched=True)`` announced before. Returns one ``Fetched``
    per item, in order.
    """
    ts = seen_at
    images, neighbours, edges, prunes, thumbs = [], [], [], [], []
    fetched_ids = {result.image.id for result, _ in items}
    listed: set[str] = set()
    similar_of: list[list[ImageRecord]] = []
    for result, thumb in items:
        image = result.image
        props = _node_props(image)
        props["fetched_at"] = ts
        props["similar_field"] = result.similar_field
        images.append({"id": image.id, "props": props})
        similar = _distinct_similar(result)
        similar_of.append(similar)
        for rank, record in enumerate(similar, start=1):
            edges.append({"source": image.id, "target": record.id, "rank": rank, "seen": ts})
            # A neighbour fetched in this batch is stored in full by store_images; one
            # listed twice is written once.
            if record.id not in fetched_ids and record.id not in listed:
                listed.add(record.id)
                neighbours.append({"id": record.id, "props": _node_props(record)})
        prunes.append({"source": image.id, "targets": [r.id for r in similar]})
        if thumb is not None:
            thumbs.append(thumb)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("store_images", {"rows": images}),
        ("store_neighbours", {"rows": neighbours}),
        ("upsert_edges", {"rows": edges}),
        ("prune_edges", {"rows": prunes}),
        *thumbnail_steps(thumbs, ts),
    ]
    results = store.write_together(steps)
    states = {row["id"]: row for row in results[0]}
    out = []
    for (result, _), similar in zip(items, similar_of, strict=True):
        image = result.image
        out.append(
            Fetched(
                image_id=image.id,
                neighbours=[r.id for r in similar],
                stored=[(image.id, image.thumbnail_url)]
                + [(r.id, r.thumbnail_url) for r in similar],
                edges=len(similar),
                thumbnail_url=image.thumbnail_url,
                needs=needs_of(states.get(image.id, {}), image.thumbnail_url, model),
            )
        )
    return out


def _node_props(record: ImageRecord) -> dict[str, Any]:
    """A record's node properties to SET: all but the id (the MERGE key), and no nulls, so a
    field the catalogue left out never erases what the node already has."""
    return {k: v for k, v in record.as_node().items() if k != "id" and v is not None}


def _distinct_similar(result: ImageWithSimilar) -> list[ImageRecord]:
    """The listed images in rank order; a listing can name the same image twice, or the
    image itself: keep the first rank."""
    similar = []
    seen: set[str] = {result.image.id}
    for record in result.similar:
        if record.id not in seen:
            seen.add(record.id)
            similar.append(record)
    return similar


def record_fetch_failure(store: GraphStore, image_id: str, error: CatalogueError) -> None:
    """Note on the node why it could not be fetched. An image the catalogue no longer has
    (404) is marked gone and the edges it listed are dropped; nothing else is touched."""
    text = f"{error.reason}: {error.message}"[:500]
    if error.reason == "not_found":
        store.write("mark_gone", id=image_id, at=now_ms(), error=text)
    else:
        store.write("mark_fetch_failed", id=image_id, at=now_ms(), error=text)


class Embeds(Protocol):
    """What the crawl needs of an embedder (``lookalike.embedding``): the version string
    that changes whenever its vectors could, and one unit float32 vector per decoded image."""

    @property
    def version(self) -> str: ...

    def embed(self, image: Image.Image) -> np.ndarray: ...


@dataclass(frozen=True)
class Needs:
    """What a thumbnail still needs: its hashes (by this algorithm version) and its vector
    (by this model). Falsy when it needs nothing."""

    hash: bool
    embed: bool

    def __bool__(self) -> bool:
        return self.hash or self.embed

    def minus(self, done: Needs) -> Needs:
        return Needs(self.hash and not done.hash, self.embed and not done.embed)


NOTHING = Needs(False, False)
HASH_ONLY = Needs(True, False)


def has_current_hashes(state: dict[str, Any], thumbnail_url: str) -> bool:
    """Whether a node's hash state (phash, hash_version, hashed_thumbnail) already covers
    this thumbnail by this algorithm version, so hashing it again would change nothing."""
    return bool(
        state.get("phash")
        and state.get("hash_version") == algorithm_version()
        and state.get("hashed_thumbnail") == thumbnail_url
    )


def has_current_embedding(state: dict[str, Any], thumbnail_url: str, model: str) -> bool:
    """Whether a node records this thumbnail as embedded by this model."""
    return state.get("embed_model") == model and state.get("embedded_thumbnail") == thumbnail_url


def needs_of(state: dict[str, Any], thumbnail_url: str, model: str | None) -> Needs:
    """What a node's stored state (``store_images``/``hash_state`` rows) leaves to do;
    ``model``: the embedder's version, None when embeddings are off."""
    return Needs(
        not has_current_hashes(state, thumbnail_url),
        model is not None and not has_current_embedding(state, thumbnail_url, model),
    )


def needs(store: GraphStore, image_id: str, thumbnail_url: str, model: str | None) -> Needs:
    """``needs_of`` the node as stored now (everything for an unknown node)."""
    rows = store.read("hash_state", id=image_id)
    return needs_of(rows[0] if rows else {}, thumbnail_url, model)


@dataclass(frozen=True)
class Thumbnail:
    """What one look at a thumbnail produced: its hashes and/or its vector (None: not asked
    for), or why the embedding failed (the hashes still count)."""

    image_id: str
    info_url: str
    hashes: dict[str, Any] | None = None  # hash_image(...).node_properties()
    vector: np.ndarray | None = None
    model: str | None = None
    embed_error: str | None = None  # "<reason>: <message>"
    at: int = 0  # epoch ms

    @property
    def done(self) -> Needs:
        """What this look settled: an embedding that failed is settled too (recorded)."""
        return Needs(self.hashes is not None, self.vector is not None or bool(self.embed_error))


def download_and_hash(
    client: CatalogueClient,
    cache: ThumbnailCache | None,
    image_id: str,
    info_url: str,
    *,
    want: Needs = HASH_ONLY,
    embedder: Embeds | None = None,
    views: ViewStore | None = None,
) -> Thumbnail:
    """Download a thumbnail once, cache it, decode it once, and hash and/or embed it, as
    ``want`` says (embedding needs an ``embedder``), leaving its verification view in
    ``views``.

    Raises CatalogueError (download refused or failed) or ImageDecodeError (broken image);
    the caller records the reason on the node. An embedding that fails does not raise: the
    hashes are good, and ``embed_error`` says why there is no vector.
    """
    url = client.thumbnail_url(info_url)
    data, image = client.fetch_thumbnail_decoded(url)  # checked against the pixel limit
    if cache is not None:
        cache.put(image_id, data)
    return examine(image, image_id, info_url, want=want, embedder=embedder, views=views)


def examine(
    image: Image.Image,
    image_id: str,
    info_url: str,
    *,
    want: Needs,
    embedder: Embeds | None,
    views: ViewStore | None = None,
) -> Thumbnail:
    """Hash and/or embed one decoded thumbnail (see ``download_and_hash``), and store its
    verification view (a failure there is logged: its pairs are judged without it)."""
    if views is not None:
        views.save(image_id, image)
    hashes = hash_image(image).node_properties() if want.hash else None
    vector, model, error = None, None, None
    if want.embed and embedder is not None:
        model = embedder.version
        try:
            vector = check_vector(embedder.embed(image))
        except Exception as exc:  # any failure of the model is recorded, never raised
            log.warning("embedding %s failed: %s", image_id, exc, exc_info=True)
            error = f"embedding_failed: {type(exc).__name__}: {exc}"[:500]
    return Thumbnail(image_id, info_url, hashes, vector, model, error, now_ms())


def hash_row(image_id: str, info_url: str, hashes: dict[str, Any], at: int) -> dict[str, Any]:
    """The ``set_hashes`` row of an image: its hashes (with ``hash_info`` and
    ``hash_color``), what they were computed from, and ``at`` (epoch ms): the write's stamp,
    taken (and announced: ``publish_vectors``) before the write."""
    return {
        "id": image_id,
        **hashes,
        "hash_version": algorithm_version(),
        "thumbnail": info_url,
        "hashed_at": at,
    }


def thumbnail_steps(thumbs: Sequence[Thumbnail], at: int) -> list[tuple[str, dict[str, Any]]]:
    """The graph writes that store what ``download_and_hash`` found: hashes (stamped ``at``),
    which model embedded which thumbnail (the vectors themselves go to Redis:
    ``publish_vectors``), failed embeddings."""
    hashes = [hash_row(t.image_id, t.info_url, t.hashes, at) for t in thumbs if t.hashes]
    embedded = [
        {"id": t.image_id, "model": t.model, "thumbnail": t.info_url, "at": t.at}
        for t in thumbs
        if t.vector is not None
    ]
    failed = [
        {"id": t.image_id, "error": t.embed_error, "at": t.at} for t in thumbs if t.embed_error
    ]
    steps: list[tuple[str, dict[str, Any]]] = []
    for name, rows in (
        ("set_hashes", hashes),
        ("set_embeddings", embedded),
        ("mark_embed_failed", failed),
    ):
        if rows:
            steps.append((name, {"rows": rows}))
    return steps


def publish_vectors(
    client: redis.Redis,
    thumbs: Sequence[Thumbnail],
    maxlen: int,
    *,
    database: str | None = None,
    fetched: bool = False,
) -> int:
    """Hand over what the next graph write needs handed over first, in one round trip:
    the vectors to the index sidecar (``lookalike.vectors``), and, when the write stamps
    images (hashes among ``thumbs``, or ``fetched`` images), the write's stamp as the
    newest write to ``database`` (``lookalike.hashmark``). Before the graph write, so the
    graph never calls embedded what the stream lacks, nor holds a write newer than the mark.
    Returns the stamp (epoch ms) the write must use: ``seen_at`` of ``store_fetched_many``,
    ``at`` of ``store_thumbnails``."""
    at = now_ms()
    pipe = client.pipeline(transaction=False)
    queued = append(
        pipe,
        [(t.image_id, t.model or "", t.at, t.vector) for t in thumbs if t.vector is not None],
        maxlen,
    )
    if fetched or any(t.hashes for t in thumbs):
        hashmark.announce(pipe, database, at)
        queued += 1
    if queued:
        pipe.execute()
    return at


def store_thumbnails(store: GraphStore, thumbs: Sequence[Thumbnail], at: int) -> None:
    """Store what looks at thumbnails found, in one transaction; ``at``: the stamp
    ``publish_vectors`` announced."""
    steps = thumbnail_steps(thumbs, at)
    if steps:
        store.write_together(steps)


def record_hash_failure(store: GraphStore, image_id: str, reason: str, message: str) -> None:
    store.write(
        "mark_hash_failed",
        [{"id": image_id, "error": f"{reason}: {message}"[:500], "at": now_ms()}],
    )


__all__ = [
    "HASH_ONLY",
    "NOTHING",
    "Embeds",
    "Fetched",
    "ImageDecodeError",
    "Needs",
    "Thumbnail",
    "download_and_hash",
    "examine",
    "has_current_embedding",
    "has_current_hashes",
    "hash_row",
    "needs",
    "needs_of",
    "publish_vectors",
    "record_fetch_failure",
    "record_hash_failure",
    "store_fetched_many",
    "store_thumbnails",
    "thumbnail_steps",
]
