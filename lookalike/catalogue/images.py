"""``GET /images/{id}``: one image and its visually similar images, validated, with the
fallback between the two similar-images includes a catalogue may accept."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from lookalike.catalogue.stats import ClientStats
from lookalike.errors import CatalogueError, RecordError
from lookalike.ids import IMAGE_ID_WORDS, is_image_id
from lookalike.records import (
    SIMILAR_FIELDS,
    ImageWithSimilar,
    parse_image,
    parse_image_with_similar,
)

log = logging.getLogger(__name__)

# GET a catalogue URL: its parsed JSON and the URL that answered.
GetJson = Callable[[str, Mapping[str, Any] | None], tuple[Any, str]]


def similar_order(known: str | None, legacy: bool) -> tuple[str, ...]:
    """The similar-images includes to try, in order: the one known to work first, else the
    current one (the legacy one with ``legacy``)."""
    first = known if known is not None else ("visuallySimilar" if legacy else "withSimilarFeatures")
    return (first, *[f for f in SIMILAR_FIELDS if f != first])


def get_image(
    get_json: GetJson,
    stats: ClientStats,
    catalogue_url: str,
    image_id: str,
    similar: bool,
    order: tuple[str, ...],
) -> tuple[ImageWithSimilar, str | None]:
    """One image and (with ``similar``) its similar images, rank order, and the include that
    worked (None without ``similar``).

    Asks for each include of ``order`` in turn while the catalogue rejects it with 400.
    """
    if not is_image_id(image_id):
        raise CatalogueError(
            "not_found",
            f"{image_id!r} is not a catalogue image id ({IMAGE_ID_WORDS}); "
            "the catalogue answers 404 for it, so no request was sent",
        )
    url = f"{catalogue_url}/images/{image_id}"
    if not similar:
        doc, final = get_json(url, None)
        image = checked(stats, image_id, final, lambda: ImageWithSimilar(parse_image(doc), (), ""))
        return image, None

    rejected: list[CatalogueError] = []
    for field in order:
        try:
            doc, final = get_json(url, {"include": field})
        except CatalogueError as exc:
            if exc.reason != "bad_request":
                raise
            rejected.append(exc)
            stats.count("similar_fallbacks")
            log.info("catalogue rejected include=%s: %s", field, exc.message)
            continue
        result = checked(stats, image_id, final, partial(parse_image_with_similar, doc, field))
        return result, field
    raise CatalogueError(
        "bad_request",
        f"the catalogue rejected every similar-images include for {url} "
        f"({', '.join(SIMILAR_FIELDS)}): "
        + "; ".join(e.message for e in rejected)
        + ". Check LOOKALIKE_CATALOGUE_URL points at a catalogue with similar images.",
        url=url,
        status=400,
    )


def checked(
    stats: ClientStats, image_id: str, url: str, parse: Callable[[], ImageWithSimilar]
) -> ImageWithSimilar:
    """Parse, naming the URL in any error, and make sure it is the image we asked for."""
    try:
        result = parse()
    except RecordError as exc:
        stats.count("invalid_records")
        raise RecordError(exc.path, exc.problem, url=url) from exc
    if result.image.id != image_id:
        stats.count("invalid_records")
        raise RecordError("id", f"asked for {image_id!r} but got {result.image.id!r}", url=url)
    return result
