"""Learned lookalikes and the audit of the catalogue's edges, through the index reader.

The reader answers from the newest index generation plus the vectors embedded since (Redis),
so an image embedded a moment ago has lookalikes at once; the audit is the newest
generation's (``services/indexer/audit.py``). Titles and thumbnail URLs are added here from
the graph, as for near-duplicates.
"""

from __future__ import annotations

from typing import Any

from services.api.context import ApiContext
from services.api.errors import ApiError, not_found


def _nodes(ctx: ApiContext, ids: list[str]) -> dict[str, dict[str, Any]]:
    return ctx.store.get_images(sorted(set(ids))) if ids else {}


def _brief(nodes: dict[str, dict[str, Any]], image_id: str) -> dict[str, Any]:
    node = nodes.get(image_id, {})
    return {"title": node.get("title"), "thumbnail_url": node.get("thumbnail_url")}


def _no_vector(ctx: ApiContext, image: dict[str, Any], image_id: str) -> ApiError:
    if image.get("embed_error"):
        why = f"its embedding failed: {image['embed_error']}"
    elif not ctx.settings.embeddings:
        why = "embeddings are turned off (LOOKALIKE_EMBEDDINGS=0)"
    elif not image.get("embed_model"):
        why = "it is not embedded yet (it is embedded when the crawler hashes its thumbnail)"
    else:
        why = (
            "its vector is not indexed yet (the indexer takes vectors in at its next "
            "build: `lookalike indexer --once`)"
        )
    return ApiError(409, f"image {image_id!r} has no vector: {why}", parameter="id")


def lookalikes_of(ctx: ApiContext, image_id: str, k: int, refined: bool) -> dict[str, Any]:
    """The ``k`` images that look most like ``image_id`` by embedding cosine."""
    from services.indexer.vecread import NoVector

    image = ctx.store.get_image(image_id)
    if image is None:
        raise not_found(f"no image with id {image_id!r} in the graph", "id")
    reader = ctx.index()
    try:
        found = reader.lookalikes(image_id, k=k, refined=refined)
    except NoVector:
        raise _no_vector(ctx, image, image_id) from None
    nodes = _nodes(ctx, [m.id for m in found])
    generation = reader.generation
    return {
        "id": image_id,
        "k": k,
        "refined": refined,
        "model": reader.vectors().model,
        "generation": generation.name if generation else None,
        "lookalikes": [
            {"id": m.id, "score": round(m.score, 6), "refined": m.refined, **_brief(nodes, m.id)}
            for m in found
        ],
    }


def audit_page(ctx: ApiContext, section: str, offset: int, limit: int) -> dict[str, Any]:
    """One page of the newest generation's audit of the SIMILAR_TO edges."""
    from services.indexer import audit

    reader = ctx.index()
    view = reader.vectors()
    found = view.gen.audit() if view.gen is not None else None
    if found is None:
        raise not_found(
            "no audit yet: it is made by the indexer from embedded images (crawl with "
            "embeddings on, then `lookalike indexer --once`)",
            "section",
        )
    total, items = audit.page(found, section, offset, limit)
    ids = [
        x
        for item in items
        for x in (item.get("source") or item["a"], item.get("target") or item["b"])
    ]
    nodes = _nodes(ctx, ids)
    for item in items:
        for end in ("source", "target", "a", "b"):
            if end in item:
                item[f"{end}_title"] = _brief(nodes, item[end])["title"]
    generation = reader.generation
    return {
        "generation": generation.name if generation else None,
        "section": section,
        "offset": offset,
        "limit": limit,
        "total": total,
        "summary": audit.summary(found),
        "items": items,
    }
