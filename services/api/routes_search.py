"""``POST /search``: upload a picture, get the nearest stored images by perceptual hash.

The upload is bounded twice: the body size (Flask's MAX_CONTENT_LENGTH, 413) and the
decoded pixel count (a small PNG can decode to gigabytes: refused before decoding, 413).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from lookalike.hashing import HASH_BITS, HASH_KINDS, ImageDecodeError, decode_image, hash_image
from services.api import params
from services.api.context import ctx
from services.api.errors import ApiError, bad_request
from services.api.search import search_hashes

bp = Blueprint("search", __name__)

MAX_K = 100


@bp.post("/search")
def search() -> Response:
    settings = ctx().settings
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise ApiError(
            415, "send the picture as multipart/form-data with the file in the field 'image' "
            "(curl -F image=@picture.jpg ...)",
        )
    params.reject_unknown(request.args, ("kinds", "k", "max_distance", "mirror"),
                          "query parameter")
    params.reject_unknown(request.form, ("kinds", "k", "max_distance", "mirror"), "form field")
    upload = request.files.get("image")
    if upload is None:
        raise bad_request("the form has no file field 'image' with the picture", "image")
    options = {**request.args.to_dict(), **request.form.to_dict()}
    kinds = params.choices(options.get("kinds"), "kinds", HASH_KINDS, ("phash", "dhash"))
    k = params.integer(options.get("k"), "k", 1, MAX_K, 10)
    max_distance = params.integer(
        options.get("max_distance"), "max_distance", 0, max(HASH_BITS.values()),
        max(HASH_BITS.values()),
    )
    mirror = params.boolean(options.get("mirror"), "mirror", True)
    data = upload.read(settings.api_max_upload_bytes + 1)
    if len(data) > settings.api_max_upload_bytes:
        raise ApiError(
            413, f"the picture is larger than the limit of {settings.api_max_upload_bytes} "
            "bytes; send a smaller file", parameter="image",
        )
    try:
        image = decode_image(data, max_pixels=settings.api_max_upload_pixels)
    except ImageDecodeError as exc:
        status = 413 if "pixels" in str(exc) else 400
        raise ApiError(status, f"the uploaded file: {exc}", parameter="image") from None
    hashes = hash_image(image).as_dict()
    results = search_hashes(ctx(), image, kinds, k, max_distance, mirror)
    return jsonify({
        "hashes": hashes, "kinds": kinds, "k": k, "max_distance": max_distance,
        "mirror": mirror, "results": results,
    })
