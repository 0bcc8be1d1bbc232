"""The per-image steps of a crawl, as plain functions of (client, store): no Celery here.

Scrapy's split, roughly: the frontier (``frontier.py``) schedules, the catalogue client
downloads, and these functions are the pipelines that turn a downloaded record into graph
writes. Keeping them free of Celery makes them easy to test and to reuse for one-off fetches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.catalogue import CatalogueClient
from lookalike.errors import CatalogueError
from lookalike.graph import GraphStore, now_ms
from lookalike.hashing import ImageDecodeError, algorithm_version, hash_image
from lookalike.records import ImageRecord, ImageWithSimilar
from lookalike.thumbcache import ThumbnailCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """What storing one fetched image produced, for the frontier."""

    image_id: str
    neighbours: list[str]  # in rank order
    stored: list[tuple[str, str]]  # (id, thumbnail info.json URL) of every node written
    edges: int
    thumbnail_url: str  # the image's own thumbnail info.json URL
    hashes_current: bool  # the node already has this thumbnail's hashes by this version


def store_fetched_many(
    store: GraphStore, items: Sequence[tuple[ImageWithSimilar, dict[str, Any] | None]],
    seen_at: int | None = None,
) -> list[Fetched]:
    """Write fetched images, the images they list, the SIMILAR_TO edges, and prune stale
    edges — all in one transaction, so a crash never leaves half an update. Each image's
    hashes (from ``download_and_hash``; None: not hashed yet) go in the same transaction.

    One transaction for several images: the graph server's per-transaction and
    per-statement costs are paid once per batch (five statements, however many images),
    not once per image. Returns one ``Fetched`` per item, in order.
    """
    ts = seen_at if seen_at is not None else now_ms()
    images, neighbours, edges, prunes, hash_rows = [], [], [], [], []
    fetched_ids = {result.image.id for result, _ in items}
    listed: set[str] = set()
    similar_of: list[list[ImageRecord]] = []
    for result, hashes in items:
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
        if hashes is not None:
            hash_rows.append(hash_row(image.id, image.thumbnail_url, hashes))
    steps = [
        ("store_images", {"rows": images}),
        ("store_neighbours", {"rows": neighbours}),
        ("upsert_edges", {"rows": edges}),
        ("prune_edges", {"rows": prunes}),
    ]
    if hash_rows:
        steps.append(("set_hashes", {"rows": hash_rows}))
    results = store.write_together(steps)
    states = {row["id"]: row for row in results[0]}
    out = []
    for (result, _), similar in zip(items, similar_of, strict=True):
        image = result.image
        out.append(Fetched(
            image_id=image.id,
            neighbours=[r.id for r in similar],
            stored=[(image.id, image.thumbnail_url)] + [(r.id, r.thumbnail_url) for r in similar],
            edges=len(similar),
            thumbnail_url=image.thumbnail_url,
            hashes_current=has_current_hashes(states.get(image.id, {}), image.thumbnail_url),
        ))
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


def has_current_hashes(state: dict[str, Any], thumbnail_url: str) -> bool:
    """Whether a node's hash state (phash, hash_version, hashed_thumbnail) already covers
    this thumbnail by this algorithm version, so hashing it again would change nothing."""
    return bool(
        state.get("phash")
        and state.get("hash_version") == algorithm_version()
        and state.get("hashed_thumbnail") == thumbnail_url
    )


def needs_hash(store: GraphStore, image_id: str, thumbnail_url: str) -> bool:
    """False when the node already has hashes of this thumbnail by this algorithm version."""
    rows = store.read("hash_state", id=image_id)
    return not (rows and has_current_hashes(rows[0], thumbnail_url))


def download_and_hash(
    client: CatalogueClient, cache: ThumbnailCache | None, image_id: str, info_url: str
) -> dict[str, Any]:
    """Download a thumbnail once, cache it, and hash it.

    Raises CatalogueError (download refused or failed) or ImageDecodeError (broken image);
    the caller records the reason on the node.
    """
    url = client.thumbnail_url(info_url)
    data, image = client.fetch_thumbnail_decoded(url)  # checked against the pixel limit
    hashes = hash_image(image).node_properties()
    if cache is not None:
        cache.put(image_id, data)
    return hashes


def hash_row(image_id: str, info_url: str, hashes: dict[str, Any]) -> dict[str, Any]:
    """The ``set_hashes`` row of an image: its hashes (with ``hash_info`` and
    ``hash_color``) and what they were computed from."""
    return {"id": image_id, **hashes, "hash_version": algorithm_version(),
            "thumbnail": info_url, "hashed_at": now_ms()}


def hash_and_store(
    client: CatalogueClient, store: GraphStore, cache: ThumbnailCache | None,
    image_id: str, info_url: str,
) -> dict[str, Any]:
    """``download_and_hash``, then store the hashes on the node."""
    hashes = download_and_hash(client, cache, image_id, info_url)
    store.write("set_hashes", [hash_row(image_id, info_url, hashes)])
    return hashes


def record_hash_failure(store: GraphStore, image_id: str, reason: str, message: str) -> None:
    store.write("mark_hash_failed", [{"id": image_id, "error": f"{reason}: {message}"[:500],
                                      "at": now_ms()}])


__all__ = [
    "Fetched",
    "ImageDecodeError",
    "download_and_hash",
    "has_current_hashes",
    "hash_and_store",
    "hash_row",
    "needs_hash",
    "record_fetch_failure",
    "record_hash_failure",
    "store_fetched_many",
]
