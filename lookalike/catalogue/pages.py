"""``GET /images`` walked page by page, within the 10 000 results a list query can reach."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from lookalike.catalogue.images import GetJson
from lookalike.catalogue.stats import ClientStats
from lookalike.errors import CatalogueError, RecordError
from lookalike.records import ImageRecord, parse_result_page

log = logging.getLogger(__name__)

LIST_WINDOW = 10_000  # only the first 10 000 hits of any list query are reachable (SPEC §8)


def iter_list(
    get_json: GetJson,
    stats: ClientStats,
    catalogue_url: str,
    page_size: int,
    on_error: Callable[[CatalogueError], None] | None,
    filters: dict[str, Any],
) -> Iterator[ImageRecord]:
    """Every image of ``GET /images`` (with ``filters``), page by page, sequentially.

    Past the reachable window the walk stops with a warning (``list_window_truncated``).
    Records that fail validation are skipped and passed to ``on_error``.
    """
    if not 1 <= int(page_size) <= 100:
        raise ValueError(f"page_size must be between 1 and 100, not {page_size}")
    reserved = sorted({"page", "pageSize"} & set(filters))
    if reserved:
        raise ValueError(f"{', '.join(reserved)} are set by iter_list, not by filters")
    url = f"{catalogue_url}/images"
    last_page = LIST_WINDOW // page_size
    page = 1
    while True:
        doc, final = get_json(url, {**filters, "pageSize": page_size, "page": page})
        try:
            parsed = parse_result_page(doc)
        except RecordError as exc:
            stats.count("invalid_records")
            raise RecordError(exc.path, exc.problem, url=final) from exc
        for err in parsed.errors:
            stats.bad_item(RecordError(err.path, err.problem, url=final), on_error)
        yield from parsed.records
        if parsed.next_page is None:
            return
        if parsed.next_page != page + 1:
            raise RecordError(
                "nextPage", f"expected page {page + 1}, got page {parsed.next_page}", url=final
            )
        if parsed.next_page > last_page:
            stats.count("list_window_truncated")
            log.warning(
                "%s has %d results but only the first %d can be listed; stopped at page "
                "%d. Partition the query by filters or read the snapshot.",
                final,
                parsed.total_results,
                LIST_WINDOW,
                page,
            )
            return
        page += 1
