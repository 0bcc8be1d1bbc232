"""Errors raised by the catalogue client, each carrying a short stable ``reason`` code.

Why codes: the crawler counts failures per reason (``not_found: 12, unavailable: 3``) and
decides whether to try an image again later (``retryable``). Messages are for people: they
say what was wrong, where (URL, field path, line) and what to do about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

# reason -> retryable by default. "Retryable" means: asking again later may succeed (the
# client has already used up its own retries by the time the caller sees the error).
REASONS: dict[str, bool] = {
    "not_found": False,  # 404, or an id that cannot exist
    "bad_request": False,  # 400: the catalogue rejected the request itself
    "http_error": False,  # any other non-retryable HTTP status (401, 403, 410, ...)
    "rate_limited": True,  # 429 after all retries, or a Retry-After too long to wait in-line
    "unavailable": True,  # 5xx, timeouts, connection errors after all retries
    "malformed_json": True,  # body is not JSON / truncated (after retries)
    "response_too_large": False,  # a JSON body or snapshot line over its byte limit
    "invalid_record": False,  # JSON parsed, but a field is missing or has the wrong type
    "forbidden_host": False,  # URL (or a redirect) points outside the allowed hosts
    "thumbnail_too_large": False,  # over max_thumbnail_bytes or max_thumbnail_pixels
    "not_an_image": False,  # thumbnail body is not a decodable image
    # An error nothing foresaw (a bug, or input no check covers): recorded, never retried,
    # so one bad image can neither stop a crawl nor keep it running forever.
    "unexpected_error": False,
}

# The reasons a crawl records when its own stores, not the catalogue, fail an image: reason ->
# what it means. The servers away are waited for first (``lookalike.retry``'s budgets).
STORE_REASONS: dict[str, str] = {
    "graph_unavailable": "the graph server stayed away past GRAPH_RESTARTS, or writes kept "
    "colliding",
    "graph_rejected": "the graph server refused to store the image (a value it cannot store)",
    "redis_unavailable": "Redis stayed away past REDIS_RESTARTS while a task needed it for the "
    "image (to hand its vector to the indexer, say)",
}

# A Redis away for a moment (restarting, loading its data, failing over, a network blip):
# asking again a little later may succeed. (redis-py's BusyLoadingError is a ConnectionError.)
REDIS_AWAY: tuple[type[redis.RedisError], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class CatalogueError(Exception):
    """Something went wrong talking to the catalogue or its image server.

    ``reason`` is one of ``REASONS``; ``url`` is the request concerned (when there is one);
    ``status`` the HTTP status (when there was a response); ``retry_after`` the seconds the
    server asked us to wait (429/503 only).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown CatalogueError reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.url = url
        self.status = status
        self.retryable = REASONS[reason] if retryable is None else retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"[{self.reason}] {self.message}"

    # Keep reason/url/... when pickled by Celery or multiprocessing.
    def __reduce__(self) -> tuple[Callable[..., CatalogueError], tuple[Any, ...]]:
        return (
            _rebuild,
            (self.reason, self.message, self.url, self.status, self.retryable, self.retry_after),
        )


def unexpected_error(exc: BaseException, url: str | None = None) -> CatalogueError:
    """An exception nothing foresaw, as the failure it is recorded as."""
    return CatalogueError(
        "unexpected_error",
        f"{type(exc).__name__}: {str(exc)[:300]} (an error nothing foresaw; the worker's log "
        "has its traceback)",
        url=url,
    )


def _rebuild(
    reason: str,
    message: str,
    url: str | None,
    status: int | None,
    retryable: bool,
    retry_after: float | None,
) -> CatalogueError:
    return CatalogueError(
        reason, message, url=url, status=status, retryable=retryable, retry_after=retry_after
    )


class RecordError(CatalogueError):
    """A catalogue document does not have the shape we need; ``path`` names the bad field.

    ``where`` says which document it was (a URL, a snapshot line), when known.
    """

    def __init__(
        self, path: str, problem: str, *, url: str | None = None, where: str | None = None
    ) -> None:
        self.path = path
        self.problem = problem
        self.where = where if where is not None else (f"in the response of {url}" if url else "")
        message = f"{path or '(document)'}: {problem}"
        if self.where:
            message += f" ({self.where})"
        super().__init__("invalid_record", message, url=url)

    def __reduce__(self) -> tuple[Callable[..., RecordError], tuple[Any, ...]]:
        return (_rebuild_record, (self.path, self.problem, self.url, self.where))


def _rebuild_record(path: str, problem: str, url: str | None, where: str) -> RecordError:
    return RecordError(path, problem, url=url, where=where)


class RateLimitTimeout(TimeoutError):
    """``acquire(timeout=...)`` could not get a token in time (no request was sent).

    ``wait`` is how long the limiter said the next token was away.
    """

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = wait

    def __reduce__(self) -> tuple[Callable[..., RateLimitTimeout], tuple[Any, ...]]:
        return (RateLimitTimeout, (self.args[0], self.wait))
