"""Image endpoints: one image, its similar images, its neighbourhood (JSON and picture), its
near-duplicates and cached thumbnail; and the shortest chain of similar images between two.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, jsonify, send_file
from pydantic import Field

from lookalike import ids
from lookalike.hashing import HASH_BITS, HASH_KINDS
from services.api import answers, layout
from services.api.context import ctx
from services.api.contract import Path, Query, endpoint
from services.api.errors import ApiError, not_found
from services.api.fields import Depth, ImageId, how_many, how_many_by
from services.api.shapes import image_json, node_link, work_url

bp = Blueprint("images", __name__)

# shortest_path.cypher has a literal upper bound of 12 hops (Cypher cannot take it as a
# parameter); the API's limit must not exceed it.
MAX_PATH_HOPS = 12
MAX_SIMILAR = 1000
MAX_DUPLICATES = 100
# Pictures and laid-out neighbourhoods are for people to look at: beyond this many nodes
# neither is readable, and the layout's cost grows with the square of the count.
PICTURE_MAX_NODES = layout.MAX_NODES
MAX_FIND_OFFSET = 10_000
NO_IMAGE = "no image with that id in the graph"

HashKind = Literal[HASH_KINDS]  # type: ignore[valid-type]
# One limit for every kind: a distance beyond a hash's bits (colorhash has 56) already means
# "any distance", as it does for POST /search.
MaxDistance = Annotated[int, Field(ge=0, le=max(HASH_BITS.values()))]


class ImageArg(Path):
    id: ImageId


class SimilarQuery(Query):
    limit: how_many(MAX_SIMILAR) = 100


class FindQuery(Query):
    q: str = Field(
        min_length=1,
        max_length=200,
        description="words of a title (each must begin a word of it), or an id",
    )
    limit: how_many(100, "how many per page") = 20
    offset: int = Field(0, ge=0, le=MAX_FIND_OFFSET, description="how many matches to skip")


class NeighborhoodQuery(Query):
    depth: Depth = 1
    limit: how_many_by(
        "api_max_nodes", "at most this many nodes, admitted breadth-first", default_is_limit=True
    )
    properties: bool = Field(True, description="node properties (false: ids and depths only)")
    layout: Literal["none", "spring"] = Field(
        "none",
        description=(
            f"spring: add to every node its drawing position x, y (node widths, the seed at 0, 0)"
            f" and thumbnail_cached; a drawing has at most {layout.MAX_NODES} nodes (the limit "
            f"then defaults to that, and a larger one counts as that)"
        ),
    )


class ThumbnailQuery(Query):
    placeholder: bool = Field(
        False,
        description=(
            "when the thumbnail is not cached, answer a square of the image's average colour "
            "(SVG) instead of 404"
        ),
    )


class PictureQuery(Query):
    depth: Depth = 1
    limit: how_many(PICTURE_MAX_NODES, "at most this many nodes") = 60
    size: int = Field(900, ge=200, le=2000, description="width and height in pixels")


class DuplicatesQuery(Query):
    kind: HashKind | None = Field(
        None,
        description="rank by this hash kind alone (default: one ranking across kinds, "
        "verified near-duplicates first, each saying why)",
    )
    k: how_many(MAX_DUPLICATES, "how many") = 10
    max_distance: MaxDistance | None = Field(
        None, description="only matches at most this many bits apart (default: any)"
    )
    mirror: bool = Field(
        False,
        description="also match left-right mirrored copies (the ranking across kinds always does)",
    )


class PathsQuery(Query):
    from_: ImageId = Field(alias="from", description="start image")
    to: ImageId = Field(description="end image")
    max_hops: int = Field(6, ge=1, le=MAX_PATH_HOPS, description="give up beyond this many")


def _image_or_404(image_id: str) -> dict[str, Any]:
    image = ctx().store.get_image(image_id)
    if image is None:
        raise not_found(f"no image with id {image_id!r} in the graph", "id")
    return image


@endpoint(
    bp,
    "GET",
    "/images",
    query=FindQuery,
    tags=["images"],
    summary="Find images by id or by words of their titles, a page at a time",
    responses={
        200: (
            "the image with that id, and the titles that match, shortest first",
            answers.FoundImages,
        )
    },
)
def find_images(query: FindQuery) -> Response:
    """From the indexer's title index plus the titles stored since it was built (no scan
    of every title); an id is looked up directly."""
    exact = query.q.strip().lower()
    is_id = ids.is_image_id(exact)
    # Text without a word (only punctuation) matches no title: an empty answer, not an error.
    found = ctx().titles().search(query.q, query.offset, query.limit)
    nodes = ctx().store.get_images([*found.ids, exact] if is_id else found.ids)

    def brief(image_id: str) -> dict[str, Any]:
        node = nodes.get(image_id, {})
        return {"id": image_id, **{k: node.get(k) for k in ("title", "thumbnail_url", "license")}}

    following = query.offset + len(found.ids)
    return jsonify(
        {
            "q": query.q,
            "image": brief(exact) if exact in nodes else None,
            "total": found.total,
            "offset": query.offset,
            "limit": query.limit,
            "next": following if following < found.total else None,
            # An image removed since the index was built is left out of its page.
            "images": [brief(i) for i in found.ids if i in nodes],
        }
    )


@endpoint(
    bp,
    "GET",
    "/images/<id>",
    path=ImageArg,
    tags=["images"],
    summary="One image: catalogue fields, hashes, crawl marks, degrees, analysis",
    responses={200: ("the image", answers.Image), 404: NO_IMAGE},
)
def get_image(id: str) -> Response:  # the route's own name for it
    image = _image_or_404(id)
    cached = ctx().thumbnails.path(id) is not None
    body = image_json(image, thumbnail_cached=cached)
    body["work_url"] = work_url(ctx().settings.work_url, image)
    return jsonify(body)


@endpoint(
    bp,
    "GET",
    "/images/<id>/similar",
    path=ImageArg,
    query=SimilarQuery,
    summary="The images this image lists as similar, best first",
    tags=["images"],
    responses={200: ("ranked SIMILAR_TO targets", answers.SimilarList), 404: NO_IMAGE},
)
def similar(id: str, query: SimilarQuery) -> Response:
    _image_or_404(id)
    rows = ctx().store.similar(id)
    similar = [
        {
            "id": r["image"]["id"],
            "rank": r["rank"],
            "title": r["image"].get("title"),
            "thumbnail_url": r["image"].get("thumbnail_url"),
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
        }
        for r in rows[: query.limit]
    ]
    return jsonify({"id": id, "count": len(rows), "similar": similar})


@endpoint(
    bp,
    "GET",
    "/images/<id>/neighborhood",
    path=ImageArg,
    query=NeighborhoodQuery,
    summary="Images within depth hops (either direction) and the edges among them",
    tags=["images"],
    responses={200: ("node-link JSON", answers.NodeLink), 404: NO_IMAGE},
)
def neighborhood(id: str, query: NeighborhoodQuery) -> Response:
    # A drawing is for people: past MAX_NODES it is neither readable nor quick to lay out.
    # The answer's graph.limit says the limit applied, and truncated whether it cut.
    limit = query.limit if query.layout == "none" else min(query.limit, layout.MAX_NODES)
    try:
        sub = ctx().store.neighborhood(id, query.depth, limit=limit, properties=query.properties)
    except KeyError:
        raise not_found(f"no image with id {id!r} in the graph", "id") from None
    data = node_link(
        sub, graph={"seed": id, "depth": query.depth, "limit": limit}, properties=query.properties
    )
    if query.layout != "none":
        _lay_out(data, sub, id)
    return jsonify(data)


def _lay_out(data: dict[str, Any], sub: Any, centre: str) -> None:
    """Add what drawing each node takes: its position (``x``, ``y`` in node widths, the seed
    at 0, 0), and whether the API has its thumbnail (a frontend draws the others in their
    average colour without asking for each: a drawing of a large graph has many)."""
    positions = layout.spring_layout(sub.nodes, sub.edges, centre, sub.depth)
    cached = ctx().thumbnails.path
    for node in data["nodes"]:
        node["x"], node["y"] = positions[node["id"]]
        node["thumbnail_cached"] = cached(node["id"]) is not None


@endpoint(
    bp,
    "GET",
    "/images/<id>/neighborhood.png",
    path=ImageArg,
    query=PictureQuery,
    summary="A picture of the neighbourhood with thumbnails on the nodes",
    tags=["images"],
    responses={200: ("PNG", {"image/png": {"type": "string", "format": "binary"}}), 404: NO_IMAGE},
)
def neighborhood_picture(id: str, query: PictureQuery) -> Response:
    from services.api.picture import draw_neighborhood

    try:
        sub = ctx().store.neighborhood(id, query.depth, limit=query.limit)
    except KeyError:
        raise not_found(f"no image with id {id!r} in the graph", "id") from None
    png = draw_neighborhood(sub, id, ctx().thumbnails.path, size_px=query.size)
    return Response(png, mimetype="image/png")


# A stand-in for a thumbnail the API does not have: a square of the image's average colour.
_PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" '
    'viewBox="0 0 64 64"><rect width="64" height="64" fill="{color}"/></svg>'
)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@endpoint(
    bp,
    "GET",
    "/images/<id>/thumbnail",
    path=ImageArg,
    query=ThumbnailQuery,
    tags=["images"],
    summary="The cached thumbnail (JPEG), or a placeholder",
    responses={
        200: (
            "JPEG, or with placeholder=true an SVG square of the image's average colour",
            {
                "image/jpeg": {"type": "string", "format": "binary"},
                "image/svg+xml": {"type": "string"},
            },
        ),
        404: "no cached thumbnail for this image (or no such image)",
    },
)
def thumbnail(id: str, query: ThumbnailQuery) -> Response:
    path = ctx().thumbnails.path(id)
    if path is None and query.placeholder:
        image = ctx().store.get_images([id]).get(id)
        if image is None:
            raise not_found(f"no image with id {id!r} in the graph", "id")
        color = image.get("average_color") or ""
        response = Response(
            _PLACEHOLDER.format(color=color if _COLOR.match(color) else "#8a8f98"),
            mimetype="image/svg+xml",
        )
        # The thumbnail may be cached by the next crawl: ask again next time.
        response.headers["Cache-Control"] = "no-cache"
        return response
    if path is None:
        raise not_found(
            f"no cached thumbnail for image {id!r} (thumbnails are cached when the "
            "crawler hashes an image)",
            "id",
        )
    return send_file(path, mimetype="image/jpeg", max_age=3600)


@endpoint(
    bp,
    "GET",
    "/images/<id>/duplicates",
    path=ImageArg,
    query=DuplicatesQuery,
    summary="Near-duplicates and nearest images: one ranking across hash kinds "
    "(verified near-duplicates first, each saying why), or by one kind",
    tags=["search"],
    responses={
        200: ("matches, best first", answers.Duplicates),
        404: NO_IMAGE,
        409: "the image has no hash of that kind yet",
    },
)
def duplicates(id: str, query: DuplicatesQuery) -> Response:
    kind = query.kind
    bits = HASH_BITS[kind] if kind else max(HASH_BITS.values())
    max_distance = min(bits, bits if query.max_distance is None else query.max_distance)
    image = _image_or_404(id)
    value = image.get(kind or "phash")
    if not value:
        reason = f" (hashing failed: {image['hash_error']})" if image.get("hash_error") else ""
        raise ApiError(
            409,
            f"image {id!r} has no {kind or 'perceptual'} hash yet{reason}; it cannot be compared",
            parameter="id",
        )
    from services.api.search import duplicates_ranked, nearest_to_hash

    if kind is None:
        matches = [
            m
            for m in duplicates_ranked(ctx(), image, query.k)
            if m["distance"] is None or m["distance"] <= max_distance
        ]
    else:
        matches = nearest_to_hash(
            ctx(), kind, value, query.k, max_distance, exclude=id, mirror=query.mirror
        )
    return jsonify(
        {
            "id": id,
            "kind": kind,
            "hash": value,
            "k": query.k,
            "max_distance": max_distance,
            "mirror": query.mirror or kind is None,
            "dup_group": image.get("dup_group"),
            "matches": matches,
        }
    )


@endpoint(
    bp,
    "GET",
    "/paths",
    query=PathsQuery,
    tags=["images"],
    summary="The shortest chain of similar images between two images",
    responses={
        200: ("the path", answers.Path),
        404: "an image is unknown, or no path within max_hops",
    },
)
def paths(query: PathsQuery) -> Response:
    source, target, max_hops = query.from_, query.to, query.max_hops
    store = ctx().store
    present = store.get_images([source, target])
    for name, node in (("from", source), ("to", target)):
        if node not in present:
            raise not_found(f"no image with id {node!r} in the graph", name)
    found = store.shortest_path(source, target, max_hops)
    if found is None:
        raise not_found(
            f"no chain of similar images from {source!r} to {target!r} within {max_hops} hops"
            + ("" if max_hops == MAX_PATH_HOPS else "; try a larger max_hops"),
            "max_hops",
        )
    ids, edges = found
    nodes = store.get_images(ids)
    return jsonify(
        {
            "from": source,
            "to": target,
            "hops": len(ids) - 1,
            "ids": ids,
            "nodes": [
                {
                    "id": i,
                    "title": nodes.get(i, {}).get("title"),
                    "thumbnail_url": nodes.get(i, {}).get("thumbnail_url"),
                }
                for i in ids
            ],
            "edges": edges,
        }
    )
