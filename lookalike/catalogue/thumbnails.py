"""Thumbnails: asked for small (IIIF ``full/!n,n``), read within their byte limit, and
checked to be a decodable image of at most ``max_thumbnail_pixels`` pixels."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

import requests
from PIL import Image

from lookalike.catalogue.failures import Transient
from lookalike.catalogue.limits import read_body
from lookalike.errors import CatalogueError
from lookalike.hashing import ImageDecodeError, decode_image

ACCEPT_IMAGE = "image/jpeg,image/*;q=0.8"
# Content types that are certainly not a thumbnail; anything else still has to decode.
_NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml", "application/xhtml")


def iiif_thumbnail_url(info_url: str, size: int) -> str:
    """The IIIF Image API request for a thumbnail that fits in ``size`` x ``size``.

    ``…/image/{asset}/info.json`` → ``…/image/{asset}/full/!{size},{size}/0/default.jpg``
    (the pipeline's own recipe, SPEC §7). A service base without ``/info.json`` works too.
    """
    parts = urlsplit(info_url)
    path = parts.path
    if path.endswith("/info.json"):
        path = path[: -len("/info.json")]
    path = path.rstrip("/")
    if not path:
        raise ValueError(f"{info_url!r} is not a IIIF image service URL")
    return f"{parts.scheme}://{parts.netloc}{path}/full/!{size},{size}/0/default.jpg"


def read_thumbnail(
    resp: requests.Response, url: str, max_bytes: int, max_pixels: int
) -> tuple[bytes, Image.Image]:
    """The bytes of a 200 answer from ``url`` and the RGB image they decode to."""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    data = read_body(resp, url, max_bytes, "thumbnail_too_large", "LOOKALIKE_MAX_THUMBNAIL_BYTES")
    try:
        if ctype.startswith(_NOT_IMAGE_TYPES):
            raise CatalogueError(
                "not_an_image",
                f"{url} sent {ctype!r} instead of an image (body starts {data[:120]!r}); "
                "the image server answered with an error page or this is not an image URL",
                url=url,
            )
        image = check_thumbnail(data, url, max_pixels, ctype)
    except CatalogueError as exc:
        if exc.reason != "not_an_image":
            raise
        # Possibly a body damaged on the way: one more try, unless it comes back the same.
        raise Transient(exc, "bad_images", hashlib.sha256(data).hexdigest()) from exc
    return data, image


def check_thumbnail(data: bytes, url: str, max_pixels: int, content_type: str = "") -> Image.Image:
    """The RGB image of a thumbnail's bytes; refuses bytes that are not a decodable image of
    at most ``max_pixels`` pixels."""
    hint = f" (Content-Type {content_type!r})" if content_type else ""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as exc:
        raise CatalogueError(
            "thumbnail_too_large", f"{url} is a decompression bomb: {exc}", url=url
        ) from exc
    except Exception as exc:  # PIL raises many types for garbage input
        raise CatalogueError(
            "not_an_image",
            f"{url} is not an image{hint}: {len(data)} bytes starting {data[:16]!r} "
            f"({exc.__class__.__name__}: {exc})",
            url=url,
        ) from exc
    if width * height > max_pixels:
        raise CatalogueError(
            "thumbnail_too_large",
            f"{url} is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (max_thumbnail_pixels); ask for a smaller IIIF size",
            url=url,
        )
    try:
        return decode_image(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise CatalogueError(
            "not_an_image",
            f"{url} has an image header ({width}x{height}) but does not decode{hint}: {exc}",
            url=url,
        ) from exc
