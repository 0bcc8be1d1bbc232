"""Shaping stored Image display documents into API answers (SPEC §2-3): pure functions.

The catalogue does not build its JSON; it returns the stored ``display`` document, deletes
every ``contributors``/``genres``/``languages``/``subjects`` key that was not asked for with
``include`` (recursively, nested similar images too), and on the single-image path drops
null values. Built images carry a placeholder base URL that is swapped for the serving
replica's own address, so a collection directory works on any port.
"""

from __future__ import annotations

import csv
from typing import Any

from lookalike.ids import IMAGE_ID

# Built images point here until served; ``.invalid`` is reserved, so it never resolves.
PLACEHOLDER_BASE = "http://replica.invalid"

ID_PATTERN = IMAGE_ID  # what the catalogue answers 404 for without looking

SOURCE_INCLUDES: tuple[str, ...] = (
    "source.contributors",
    "source.languages",
    "source.genres",
    "source.subjects",
)
SINGLE_INCLUDES: tuple[str, ...] = ("withSimilarFeatures", *SOURCE_INCLUDES)
# Legacy mode: the pre-2023 decoder also knew the "blended" similarity include.
LEGACY_SINGLE_INCLUDES: tuple[str, ...] = ("visuallySimilar", *SINGLE_INCLUDES)

_TRIMMABLE = {inc.split(".", 1)[1]: inc for inc in SOURCE_INCLUDES}


def parse_csv(value: str) -> list[str]:
    """The catalogue's CSV list decoder: ``"`` quotes, ``\\`` escapes, empty items dropped."""
    if value == "":
        return []
    reader = csv.reader([value], quotechar='"', escapechar="\\", skipinitialspace=False)
    try:
        row = next(reader)
    except (csv.Error, StopIteration):
        row = value.split(",")
    return [item for item in row if item != ""]


def remove_keys(doc: Any, keys: frozenset[str]) -> Any:
    """A copy of ``doc`` without any key in ``keys``, at any depth."""
    if isinstance(doc, dict):
        return {k: remove_keys(v, keys) for k, v in doc.items() if k not in keys}
    if isinstance(doc, list):
        return [remove_keys(v, keys) for v in doc]
    return doc


def drop_nulls(doc: Any) -> Any:
    """A copy of ``doc`` without null-valued keys, at any depth (``deepDropNullValues``)."""
    if isinstance(doc, dict):
        return {k: drop_nulls(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [drop_nulls(v) for v in doc]
    return doc


def trim(doc: dict, includes: set[str]) -> dict:
    """Remove the source lists that were not requested, recursively."""
    unwanted = frozenset(key for key, inc in _TRIMMABLE.items() if inc not in includes)
    return remove_keys(doc, unwanted) if unwanted else doc


def with_base_url(doc: Any, base_url: str | None) -> Any:
    """A copy of ``doc`` with every placeholder URL rebased onto ``base_url``."""
    if base_url is None:
        return doc
    if isinstance(doc, dict):
        return {k: with_base_url(v, base_url) for k, v in doc.items()}
    if isinstance(doc, list):
        return [with_base_url(v, base_url) for v in doc]
    if isinstance(doc, str) and doc.startswith(PLACEHOLDER_BASE):
        return base_url + doc[len(PLACEHOLDER_BASE) :]
    return doc


def info_url(asset_id: str, base_url: str = PLACEHOLDER_BASE) -> str:
    return f"{base_url}/image/{asset_id}/info.json"
