"""``POST /search``: upload a picture, get the stored images most like it: ``matches`` in the
one ranking across hash kinds and the learned embedding (verified near-duplicates first, each
saying why, its embedding cosine among the evidence), ``results`` per hash kind for the
``kinds`` asked for, and ``embedding``: the nearest by the embedding's cosine alone.

The upload is bounded: the body size (Flask's MAX_CONTENT_LENGTH, 413), the decoded pixel
count (a small PNG can decode to gigabytes: refused before decoding, 413), and the memory of
decoding. The picture is decoded at the size the crawler hashes catalogue thumbnails at
(``thumbnail_size``: an upload is hashed as its catalogue copy would be), JPEGs directly at a
reduced scale, and full-size decodes wait for room in the process's decode budget (503 when
there is none for long).
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify
from pydantic import Field

from lookalike.hashing import HASH_BITS, HASH_KINDS, ImageDecodeError, decode_image, hash_image
from services.api import answers
from services.api.context import ctx
from services.api.contract import Form, endpoint
from services.api.decode_budget import DecodeBusy
from services.api.errors import ApiError
from services.api.fields import Upload, comma_list, how_many
from services.api.search import embed_query, rank_by_embedding, search_hashes, search_ranked

bp = Blueprint("search", __name__)

MAX_K = 100
HashKind = Literal[HASH_KINDS]  # type: ignore[valid-type]


class SearchForm(Form):
    image: Upload = Field(
        description="the picture: at most {api_max_upload_bytes} bytes and "
        "{api_max_upload_pixels} pixels"
    )
    kinds: comma_list(HashKind) = Field(["phash", "dhash"], description="hash kinds to use")
    k: how_many(MAX_K, "how many matches (in the ranking, and per kind)") = 10
    max_distance: int = Field(
        max(HASH_BITS.values()),
        ge=0,
        le=max(HASH_BITS.values()),
        description="only matches at most this many bits apart",
    )
    mirror: bool = Field(True, description="also match left-right mirrored copies")


@endpoint(
    bp,
    "POST",
    "/search",
    form=SearchForm,
    tags=["search"],
    summary="Upload a picture; get the stored images most like it: one ranking across "
    "hash kinds (matches), the nearest per kind (results) and by embedding",
    responses={
        200: ("matches", answers.SearchResult),
        413: "the file or its pixel count is over the limit",
        415: "not multipart/form-data",
        503: "no room to decode the picture for a minute (other large pictures "
        "are being decoded), or the graph is not reachable",
    },
)
def search(body: SearchForm) -> Response:
    settings = ctx().settings
    data = body.image.read(settings.api_max_upload_bytes + 1)
    if len(data) > settings.api_max_upload_bytes:
        raise ApiError(
            413,
            f"the picture is larger than the limit of {settings.api_max_upload_bytes} "
            "bytes; send a smaller file",
            parameter="image",
        )
    try:
        image = decode_image(
            data,
            max_pixels=settings.api_max_upload_pixels,
            max_side=settings.thumbnail_size,
            reserve=ctx().decode_budget.reserve,
        )
    except ImageDecodeError as exc:
        status = 413 if "pixels" in str(exc) else 400
        raise ApiError(status, f"the uploaded file: {exc}", parameter="image") from None
    except DecodeBusy as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    hashes = hash_image(image).as_dict()
    results = search_hashes(ctx(), image, body.kinds, body.k, body.max_distance, body.mirror)
    queries = embed_query(ctx(), image, body.mirror)
    return jsonify(
        {
            "hashes": hashes,
            "kinds": body.kinds,
            "k": body.k,
            "max_distance": body.max_distance,
            "mirror": body.mirror,
            "matches": search_ranked(ctx(), image, body.k, body.mirror, queries),
            "results": results,
            "embedding": rank_by_embedding(ctx(), queries, body.k),
        }
    )
