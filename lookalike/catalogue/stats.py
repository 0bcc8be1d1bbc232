"""What one client did, counted: requests, retries, waits and each kind of failure.

``CatalogueClient.stats`` is one of these; the crawl reports and benchmarks read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lookalike.errors import CatalogueError

log = logging.getLogger(__name__)

STAT_KEYS = (
    "requests",
    "retries",
    "backoff_s",
    "rate_wait_s",
    "throttled",
    "server_errors",
    "timeouts",
    "connection_errors",
    "malformed_json",
    "bad_images",
    "pauses",
    "redirects",
    "similar_fallbacks",
    "invalid_records",
    "list_window_truncated",
)


class ClientStats(dict[str, float]):
    """Counters by name (a dict, so it pickles and prints plainly), every one starting at 0."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(STAT_KEYS, 0))
        self["backoff_s"] = self["rate_wait_s"] = 0.0

    def count(self, key: str, amount: float = 1) -> None:
        self[key] = self.get(key, 0) + amount

    def bad_item(
        self, error: CatalogueError, on_error: Callable[[CatalogueError], None] | None
    ) -> None:
        """A record of a list or snapshot that was skipped: counted, logged, handed on."""
        self.count("invalid_records")
        log.warning("skipped a bad catalogue record: %s", error.message)
        if on_error is not None:
            on_error(error)
