"""Catalogue documents for the client tests, shaped like the real API's (SPEC §2.4)."""

from __future__ import annotations

import copy
import io
from typing import Any

from PIL import Image


def image_doc(
    image_id: str = "rnhd2myb",
    *,
    base: str = "https://iiif.wellcomecollection.org",
    asset: str | None = None,
    similar: list[dict] | None = None,
    similar_field: str = "withSimilarFeatures",
) -> dict[str, Any]:
    """An Image display document like the catalogue's, with optional similar images."""
    location = {
        "locationType": {"id": "iiif-image", "label": "IIIF Image API", "type": "LocationType"},
        "url": f"{base}/image/{asset or image_id.upper()}/info.json",
        "credit": "Wellcome Collection",
        "license": {
            "id": "pdm",
            "label": "Public Domain Mark",
            "url": "https://creativecommons.org/share-your-work/public-domain/pdm/",
            "type": "License",
        },
        "accessConditions": [],
        "type": "DigitalLocation",
    }
    doc: dict[str, Any] = {
        "id": image_id,
        "thumbnail": location,
        "locations": [copy.deepcopy(location)],
        "aspectRatio": 1.3651878,
        "averageColor": "#989898",
        "source": {"id": "mbszgbfz", "title": f"Title of {image_id}", "type": "Work"},
        "type": "Image",
    }
    if similar is not None:
        doc[similar_field] = similar
    return doc


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: str = "teal") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def png_bytes(size: tuple[int, int], color: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()
