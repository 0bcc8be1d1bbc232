"""Typed catalogue records, parsed and validated from the catalogue's Image JSON.

Pure functions, no I/O. Only the fields Lookalike uses are checked, but those strictly: a
missing or mistyped one raises ``RecordError`` whose message names it with a JSON path such as
``withSimilarFeatures[2].thumbnail.url: missing``, so a crawl failure can be traced to the
exact field of the exact response. Fields we do not use are ignored, because the catalogue
adds and trims fields (``include``) and a crawler must not break on that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lookalike.errors import RecordError
from lookalike.ids import IMAGE_ID, IMAGE_ID_WORDS

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

# Where the similar images are, by include name. visuallySimilar is the pre-2023 include
# that some catalogues (and Wellcome's own notebooks) still use.
SIMILAR_FIELDS: tuple[str, ...] = ("withSimilarFeatures", "visuallySimilar")

_MISSING = object()


@dataclass(frozen=True)
class ImageRecord:
    """One catalogue image, reduced to what the graph stores about it."""

    id: str
    title: str | None
    source_id: str
    thumbnail_url: str  # the IIIF info.json URL, exactly as the catalogue gives it
    license: str | None  # licence id such as "pdm" or "cc-by"; None when the record has none
    aspect_ratio: float
    average_color: str  # "#rrggbb", lowercase

    def as_node(self) -> dict[str, Any]:
        """Properties of the (:Image) node."""
        return {
            "id": self.id,
            "title": self.title,
            "source_id": self.source_id,
            "thumbnail_url": self.thumbnail_url,
            "license": self.license,
            "aspect_ratio": self.aspect_ratio,
            "average_color": self.average_color,
        }


@dataclass(frozen=True)
class ImageWithSimilar:
    """An image and its visually similar images, most similar first (rank = index + 1).

    ``similar_field`` is the include that produced ``similar`` (``withSimilarFeatures`` or
    ``visuallySimilar``), or "" when similar images were not asked for.
    """

    image: ImageRecord
    similar: tuple[ImageRecord, ...]
    similar_field: str

    def edges(self) -> list[dict[str, Any]]:
        """SIMILAR_TO rows: ``{"source", "target", "rank"}`` with rank 1 = most similar."""
        return [
            {"source": self.image.id, "target": s.id, "rank": rank}
            for rank, s in enumerate(self.similar, start=1)
        ]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _get(doc: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
    if key in doc:
        return doc[key]
    if default is _MISSING:
        raise RecordError(_join(path, key), "missing")
    return default


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(path, f"expected an object, got {_type_name(value)}")
    return value


def _string(value: Any, path: str, *, nonempty: bool = True) -> str:
    if not isinstance(value, str):
        raise RecordError(path, f"expected a string, got {_type_name(value)}")
    if nonempty and not value.strip():
        raise RecordError(path, "empty string")
    return value


def _catalogue_id(value: Any, path: str) -> str:
    text = _string(value, path)
    if not IMAGE_ID.match(text):  # canonical catalogue ids (SPEC §1): 404 for anything else
        raise RecordError(path, f"{text!r} is not a catalogue id ({IMAGE_ID_WORDS})")
    return text


def _http_url(value: Any, path: str) -> str:
    text = _string(value, path)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RecordError(path, f"{text!r} is not an http(s) URL")
    return text


def parse_image(doc: Any, path: str = "") -> ImageRecord:
    """Validate one Image object and reduce it to an ``ImageRecord``.

    ``path`` prefixes field names in errors (e.g. ``withSimilarFeatures[2]``).
    """
    obj = _object(doc, path or "(document)")
    kind = obj.get("type", "Image")
    if kind != "Image":
        raise RecordError(_join(path, "type"), f"expected 'Image', got {kind!r}")

    image_id = _catalogue_id(_get(obj, "id", path), _join(path, "id"))

    thumb_path = _join(path, "thumbnail")
    thumbnail = _object(_get(obj, "thumbnail", path), thumb_path)
    thumbnail_url = _http_url(_get(thumbnail, "url", thumb_path), _join(thumb_path, "url"))
    license_id: str | None = None
    license_doc = thumbnail.get("license")
    if license_doc is not None:
        lic_path = _join(thumb_path, "license")
        license_id = _string(
            _get(_object(license_doc, lic_path), "id", lic_path), _join(lic_path, "id")
        )

    src_path = _join(path, "source")
    source = _object(_get(obj, "source", path), src_path)
    source_id = _catalogue_id(_get(source, "id", src_path), _join(src_path, "id"))
    title = source.get("title")  # the pipeline allows a null title
    if title is not None:
        title = _string(title, _join(src_path, "title"), nonempty=False)

    ar_path = _join(path, "aspectRatio")
    aspect = _get(obj, "aspectRatio", path)
    if isinstance(aspect, bool) or not isinstance(aspect, int | float):
        raise RecordError(ar_path, f"expected a number, got {_type_name(aspect)}")
    if not math.isfinite(aspect) or aspect <= 0:
        raise RecordError(ar_path, f"expected a positive number, got {aspect!r}")

    color_path = _join(path, "averageColor")
    color = _string(_get(obj, "averageColor", path), color_path)
    if not COLOR_RE.match(color):
        raise RecordError(color_path, f"expected '#rrggbb', got {color!r}")

    return ImageRecord(
        id=image_id,
        title=title,
        source_id=source_id,
        thumbnail_url=thumbnail_url,
        license=license_id,
        aspect_ratio=float(aspect),
        average_color=color.lower(),
    )


def parse_image_with_similar(doc: Any, similar_field: str | None = None) -> ImageWithSimilar:
    """Parse ``/images/{id}?include=<similar_field>``.

    With ``similar_field`` given, that key must be present (the server accepted the include,
    so its absence means a broken response). Without it, whichever of ``SIMILAR_FIELDS`` is
    present is used, and a document with neither yields no similar images.
    """
    image = parse_image(doc)
    obj = _object(doc, "(document)")
    if similar_field is None:
        similar_field = next((f for f in SIMILAR_FIELDS if f in obj), "")
        if not similar_field:
            return ImageWithSimilar(image=image, similar=(), similar_field="")
    elif similar_field not in SIMILAR_FIELDS:
        raise ValueError(f"similar_field must be one of {SIMILAR_FIELDS}, not {similar_field!r}")
    items = _get(obj, similar_field, "")
    if not isinstance(items, list):
        raise RecordError(similar_field, f"expected a list, got {_type_name(items)}")
    similar = tuple(parse_image(item, f"{similar_field}[{i}]") for i, item in enumerate(items))
    return ImageWithSimilar(image=image, similar=similar, similar_field=similar_field)


@dataclass(frozen=True)
class ResultPage:
    """One page of ``GET /images``: the records that parsed, and errors for those that did not."""

    records: tuple[ImageRecord, ...]
    errors: tuple[RecordError, ...]
    total_results: int
    total_pages: int
    next_page: int | None  # page number taken from ``nextPage``; None on the last page


def parse_result_page(doc: Any) -> ResultPage:
    """Parse a ResultList. A bad result is reported in ``errors``, not fatal to the page."""
    obj = _object(doc, "(document)")
    kind = obj.get("type", "ResultList")
    if kind != "ResultList":
        raise RecordError("type", f"expected 'ResultList', got {kind!r}")
    results = _get(obj, "results", "")
    if not isinstance(results, list):
        raise RecordError("results", f"expected a list, got {_type_name(results)}")
    counts = {}
    for key in ("totalResults", "totalPages"):
        value = _get(obj, key, "")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecordError(key, f"expected a non-negative integer, got {value!r}")
        counts[key] = value
    next_page: int | None = None
    if obj.get("nextPage") is not None:
        next_page = _page_number(obj["nextPage"], "nextPage")

    records: list[ImageRecord] = []
    errors: list[RecordError] = []
    for i, item in enumerate(results):
        try:
            records.append(parse_image(item, f"results[{i}]"))
        except RecordError as exc:
            errors.append(exc)
    return ResultPage(
        records=tuple(records),
        errors=tuple(errors),
        total_results=counts["totalResults"],
        total_pages=counts["totalPages"],
        next_page=next_page,
    )


def _page_number(value: Any, path: str) -> int:
    """The ``page`` query parameter of a prev/next link."""
    url = _string(value, path)
    pages = parse_qs(urlsplit(url).query).get("page")
    if not pages or not pages[-1].isdigit() or int(pages[-1]) < 1:
        raise RecordError(path, f"{url!r} has no valid page parameter")
    return int(pages[-1])
