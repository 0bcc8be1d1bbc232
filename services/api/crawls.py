"""Access to the crawler's control API (``workers.control``), imported on first use.

Why lazily: the API must start and serve the graph even where the crawler's modules cannot
be imported (a read-only deployment); crawl endpoints then answer 503 saying why.
"""

from __future__ import annotations

import re
from types import ModuleType

from services.api.errors import ApiError, bad_request

CRAWL_ID = re.compile(r"^[0-9a-f]{1,64}$")


def control() -> ModuleType:
    try:
        from workers import control as module
    except ImportError as exc:
        raise ApiError(503, f"crawl control is not available in this deployment ({exc})") from exc
    return module


def crawl_id(raw: str) -> str:
    if not CRAWL_ID.match(raw or ""):
        raise bad_request(
            f"{raw[:40]!r} is not a crawl id (lowercase hex, as returned by POST /crawls)", "id"
        )
    return raw
