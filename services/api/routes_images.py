"""Image endpoints: one image, its similar images, its neighbourhood (JSON and picture), its
near-duplicates and cached thumbnail; and the shortest chain of similar images between two.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from lookalike.hashing import HASH_BITS, HASH_KINDS
from services.api import params
from services.api.context import ctx
from services.api.errors import ApiError, not_found
from services.api.shapes import image_json, node_link

bp = Blueprint("images", __name__)

# shortest_path.cypher has a literal upper bound of 12 hops (Cypher cannot take it as a
# parameter); the API's limit must not exceed it.
MAX_PATH_HOPS = 12
MAX_SIMILAR = 1000
MAX_DUPLICATES = 100
PICTURE_MAX_NODES = 150


def _image_or_404(image_id: str) -> dict[str, Any]:
    image = ctx().store.get_image(image_id)
    if image is None:
        raise not_found(f"no image with id {image_id!r} in the graph", "id")
    return image


@bp.get("/images/<image_id>")
def get_image(image_id: str) -> Response:
    params.reject_unknown(request.args, (), "query parameter")
    image_id = params.image_id(image_id)
    image = _image_or_404(image_id)
    cached = ctx().thumbnails.path(image_id) is not None
    return jsonify(image_json(image, thumbnail_cached=cached))


@bp.get("/images/<image_id>/similar")
def similar(image_id: str) -> Response:
    params.reject_unknown(request.args, ("limit",), "query parameter")
    image_id = params.image_id(image_id)
    limit = params.integer(request.args.get("limit"), "limit", 1, MAX_SIMILAR, 100)
    _image_or_404(image_id)
    rows = ctx().store.similar(image_id)
    similar = [
        {"id": r["image"]["id"], "rank": r["rank"], "title": r["image"].get("title"),
         "thumbnail_url": r["image"].get("thumbnail_url"), "first_seen": r["first_seen"],
         "last_seen": r["last_seen"]}
        for r in rows[:limit]
    ]
    return jsonify({"id": image_id, "count": len(rows), "similar": similar})


def _neighborhood_args(max_limit: int) -> tuple[int, int, bool]:
    settings = ctx().settings
    depth = params.integer(request.args.get("depth"), "depth", 1, settings.api_max_depth, 1)
    limit = params.integer(request.args.get("limit"), "limit", 1, max_limit, max_limit)
    props = params.boolean(request.args.get("properties"), "properties", True)
    return depth, limit, props


@bp.get("/images/<image_id>/neighborhood")
def neighborhood(image_id: str) -> Response:
    params.reject_unknown(request.args, ("depth", "limit", "properties"), "query parameter")
    image_id = params.image_id(image_id)
    depth, limit, props = _neighborhood_args(ctx().settings.api_max_nodes)
    try:
        sub = ctx().store.neighborhood(image_id, depth, limit=limit, properties=props)
    except KeyError:
        raise not_found(f"no image with id {image_id!r} in the graph", "id") from None
    return jsonify(node_link(sub, graph={"seed": image_id, "depth": depth, "limit": limit},
                             properties=props))


@bp.get("/images/<image_id>/neighborhood.png")
def neighborhood_picture(image_id: str) -> Response:
    from services.api.picture import draw_neighborhood

    params.reject_unknown(request.args, ("depth", "limit", "size"), "query parameter")
    image_id = params.image_id(image_id)
    depth = params.integer(request.args.get("depth"), "depth", 1, ctx().settings.api_max_depth, 1)
    limit = params.integer(request.args.get("limit"), "limit", 1, PICTURE_MAX_NODES, 60)
    size = params.integer(request.args.get("size"), "size", 200, 2000, 900)
    try:
        sub = ctx().store.neighborhood(image_id, depth, limit=limit)
    except KeyError:
        raise not_found(f"no image with id {image_id!r} in the graph", "id") from None
    png = draw_neighborhood(sub, image_id, ctx().thumbnails.path, size_px=size)
    return Response(png, mimetype="image/png")


@bp.get("/images/<image_id>/thumbnail")
def thumbnail(image_id: str) -> Response:
    params.reject_unknown(request.args, (), "query parameter")
    image_id = params.image_id(image_id)
    path = ctx().thumbnails.path(image_id)
    if path is None:
        raise not_found(
            f"no cached thumbnail for image {image_id!r} (thumbnails are cached when the "
            "crawler hashes an image)", "id",
        )
    return send_file(path, mimetype="image/jpeg", max_age=3600)


@bp.get("/images/<image_id>/duplicates")
def duplicates(image_id: str) -> Response:
    params.reject_unknown(request.args, ("kind", "k", "max_distance", "mirror"),
                          "query parameter")
    image_id = params.image_id(image_id)
    kind = params.choice(request.args.get("kind"), "kind", HASH_KINDS, "phash")
    k = params.integer(request.args.get("k"), "k", 1, MAX_DUPLICATES, 10)
    max_distance = params.integer(
        request.args.get("max_distance"), "max_distance", 0, HASH_BITS[kind], HASH_BITS[kind]
    )
    mirror = params.boolean(request.args.get("mirror"), "mirror", False)
    image = _image_or_404(image_id)
    value = image.get(kind)
    if not value:
        reason = f" (hashing failed: {image['hash_error']})" if image.get("hash_error") else ""
        raise ApiError(
            409, f"image {image_id!r} has no {kind} hash yet{reason}; it cannot be compared",
            parameter="id",
        )
    from services.api.search import nearest_to_hash

    matches = nearest_to_hash(ctx(), kind, value, k, max_distance, exclude=image_id,
                              mirror=mirror)
    return jsonify({"id": image_id, "kind": kind, "hash": value, "k": k,
                    "max_distance": max_distance, "mirror": mirror,
                    "dup_group": image.get("dup_group"), "matches": matches})


@bp.get("/paths")
def paths() -> Response:
    params.reject_unknown(request.args, ("from", "to", "max_hops"), "query parameter")
    source = params.image_id(request.args.get("from"), "from")
    target = params.image_id(request.args.get("to"), "to")
    max_hops = params.integer(request.args.get("max_hops"), "max_hops", 1, MAX_PATH_HOPS, 6)
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
    return jsonify({
        "from": source, "to": target, "hops": len(ids) - 1, "ids": ids,
        "nodes": [{"id": i, "title": nodes.get(i, {}).get("title"),
                   "thumbnail_url": nodes.get(i, {}).get("thumbnail_url")} for i in ids],
        "edges": edges,
    })
