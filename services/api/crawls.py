"""Access to the crawler's control API (``workers.control``), imported on first use.

Why lazily: the API must start and serve the graph even where the crawler's modules cannot
be imported (a read-only deployment); crawl endpoints then answer 503 saying why.
"""

from __future__ import annotations

from types import ModuleType

from services.api.errors import ApiError


def control() -> ModuleType:
    try:
        from workers import control as module
    except ImportError as exc:
        raise ApiError(503, f"crawl control is not available in this deployment ({exc})") from exc
    return module
