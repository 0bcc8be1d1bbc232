"""Near-duplicate and lookalike look-ups through the indexer's reader
(``services.indexer.reader``).

The reader answers from the newest Annoy generation plus every hash written since (read from
the graph), so an image hashed a moment ago is found, and before the first index build every
answer comes from an exact scan of the graph's hashes. Answers come in the one ranking of
``services.indexer.ranking`` (every kind at once, verified near-duplicates first, each saying
why), or per hash kind when a kind is asked for. The titles and thumbnail URLs a frontend
shows are added here from the graph.
"""

from __future__ import annotations

import math
from typing import Any

from lookalike.hashing import HASH_KINDS
from services.api.context import ApiContext
from services.api.errors import ApiError


def _decorate(ctx: ApiContext, kind: str, matches: list[Any]) -> list[dict[str, Any]]:
    nodes = ctx.store.get_images([m.id for m in matches]) if matches else {}
    return [
        {
            "id": m.id,
            "distance": int(m.distance),
            "kind": kind,
            "mirrored": bool(m.mirrored),
            "title": nodes.get(m.id, {}).get("title"),
            "thumbnail_url": nodes.get(m.id, {}).get("thumbnail_url"),
        }
        for m in matches
    ]


def nearest_to_hash(
    ctx: ApiContext,
    kind: str,
    value: str,
    k: int,
    max_distance: int,
    exclude: str | None,
    mirror: bool = False,
) -> list[dict[str, Any]]:
    """The ``k`` stored images nearest to ``value`` (a ``kind`` hash), ``exclude`` left out."""
    from services.indexer.bits import BadHash

    try:
        found = ctx.index().nearest(
            kind,
            hash=value,
            k=k + (1 if exclude else 0),
            mirror=mirror,
            max_distance=max_distance,
        )
    except BadHash as exc:
        raise ApiError(409, f"the stored {kind} hash cannot be searched: {exc}") from None
    return _decorate(ctx, kind, [m for m in found if m.id != exclude][:k])


def search_hashes(
    ctx: ApiContext,
    image: Any,
    kinds: list[str],
    k: int,
    max_distance: int,
    mirror: bool,
) -> dict[str, list[dict[str, Any]]]:
    """Nearest stored images to an uploaded picture, per hash kind (mirror copies too)."""
    found = ctx.index().search_image(
        image, kinds=kinds, k=k, max_distance=max_distance, mirror=mirror
    )
    return {kind: _decorate(ctx, kind, found.get(kind, [])) for kind in kinds}


def ranked(ctx: ApiContext, matches: list[Any]) -> list[dict[str, Any]]:
    """The one ranking's answers (``ranking.Ranked``) as JSON, with titles and thumbnails;
    ``kind``/``distance`` name the hash kind that agrees best."""
    nodes = ctx.store.get_images([m.id for m in matches]) if matches else {}
    out = []
    for m in matches:
        body = m.as_json()
        kind = min(("phash", "dhash", "whash", "ahash"), key=lambda x: m.distances.get(x, 99))
        body.update(
            kind=kind,
            distance=m.distances.get(kind),
            title=nodes.get(m.id, {}).get("title"),
            thumbnail_url=nodes.get(m.id, {}).get("thumbnail_url"),
        )
        out.append(body)
    return out


def duplicates_ranked(ctx: ApiContext, image: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """A stored image's near-duplicates and closest images in the one ranking, compared by
    the hashes on its node (so an image the index has not taken in is still answered)."""
    from services.indexer.bits import BadHash, parse_hex
    from services.indexer.ranking import Signature
    from services.indexer.table import parse_color

    try:
        hashes = {kind: parse_hex(kind, image[kind]) for kind in HASH_KINDS if image.get(kind)}
    except BadHash as exc:
        raise ApiError(409, f"the stored hashes cannot be searched: {exc}") from None
    info = image.get("hash_info")
    reader = ctx.index()
    query = Signature(
        hashes,
        float(info) if isinstance(info, int | float) else math.nan,
        parse_color(image.get("hash_color")),
        vector=reader.vector_or_none(image["id"]),
    )
    return ranked(ctx, reader.rank(query, k=k, exclude=image["id"]))


def search_ranked(
    ctx: ApiContext, image: Any, k: int, mirror: bool, queries: list[tuple[Any, bool]]
) -> list[dict[str, Any]]:
    """The stored images most like an uploaded picture, in the one ranking (its embedding,
    the first of ``embed_query``'s ``queries``, weighed too)."""
    vector = next((v for v, mirrored in queries if not mirrored), None)
    _, matches = ctx.index().rank_image(image, k=k, mirror=mirror, vector=vector)
    return ranked(ctx, matches)


def embed_query(ctx: ApiContext, image: Any, mirror: bool) -> list[tuple[Any, bool]]:
    """The uploaded picture's vector (and its mirror image's, with ``mirror``), or [] when
    embeddings are off (or the model does not load)."""
    from PIL import ImageOps

    from lookalike.vectors import ModelUnavailable, embedder

    model = embedder(ctx.settings)
    if model is None or isinstance(model, ModelUnavailable):
        return []  # the hashes still answer; the model's trouble is in the log
    out = [(model.embed(image), False)]
    if mirror:
        out.append((model.embed(ImageOps.mirror(image)), True))
    return out


def rank_by_embedding(
    ctx: ApiContext,
    queries: list[tuple[Any, bool]],
    k: int,
    refined: bool = False,
) -> list[dict[str, Any]] | None:
    """The stored images nearest an uploaded picture by embedding cosine alone, best first
    (``queries``: ``embed_query``'s; a match of the mirror image's counts too); None when
    embeddings are off. The one ranking (``search_ranked``) weighs the same cosine with the
    hashes."""
    if not queries:
        return None
    reader = ctx.index()
    best: dict[str, tuple[float, bool]] = {}
    for vector, mirrored in queries:
        for m in reader.nearest_vector(vector, k=k, refined=refined):
            if m.id not in best or m.score > best[m.id][0]:
                best[m.id] = (m.score, mirrored)
    order = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
    nodes = ctx.store.get_images([i for i, _ in order]) if order else {}
    return [
        {
            "id": i,
            "score": round(score, 6),
            "mirrored": mirrored,
            "title": nodes.get(i, {}).get("title"),
            "thumbnail_url": nodes.get(i, {}).get("thumbnail_url"),
        }
        for i, (score, mirrored) in order
    ]
