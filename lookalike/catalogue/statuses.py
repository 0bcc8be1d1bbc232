"""What a non-200 answer means: a retryable failure (429, 5xx, with the shared pause a
Retry-After asks for) or a final error that says what the server said (404, 400, others)."""

from __future__ import annotations

import random

import requests

from lookalike.catalogue.failures import Transient, error_description, peek
from lookalike.catalogue.limits import MAX_ERROR_BODY_BYTES, read_body
from lookalike.errors import CatalogueError
from lookalike.retry import PAUSE_STATUSES, RetryPolicy, parse_retry_after


def status_error(resp: requests.Response, url: str) -> CatalogueError:
    """The final error of an answer that is neither 200 nor worth retrying."""
    status = resp.status_code
    try:
        body = read_body(
            resp, url, MAX_ERROR_BODY_BYTES, "response_too_large", "64 KB for an error"
        )
    except (CatalogueError, Transient):
        body = b""
    detail = error_description(body)
    if status == 404:
        return CatalogueError(
            "not_found",
            f"GET {url} answered 404 Not Found ({detail}); it does not exist (any more) "
            "in the catalogue, so there is no point asking again",
            url=url,
            status=status,
        )
    if status == 400:
        return CatalogueError(
            "bad_request",
            f"GET {url} answered 400 Bad Request: {detail}",
            url=url,
            status=status,
        )
    return CatalogueError(
        "http_error",
        f"GET {url} answered {status} {resp.reason or ''}: {detail}".rstrip(),
        url=url,
        status=status,
    )


def retry_status(
    resp: requests.Response, url: str, attempt: int, policy: RetryPolicy, rng: random.Random
) -> Transient:
    """The failure for a 429/5xx, with the shared pause it calls for (if any)."""
    status = resp.status_code
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    detail = error_description(peek(resp, 4096))
    if status == 429:
        failure = Transient(
            CatalogueError(
                "rate_limited",
                f"GET {url} was refused with 429 Too Many Requests ({detail}); the "
                "catalogue wants fewer requests: lower LOOKALIKE_RATE_LIMIT",
                url=url,
                status=status,
                retry_after=retry_after,
            ),
            "throttled",
        )
    else:
        failure = Transient(
            CatalogueError(
                "unavailable",
                f"GET {url} answered {status} ({detail}); the server is having trouble, "
                "try again later",
                url=url,
                status=status,
                retry_after=retry_after,
            ),
            "server_errors",
        )
    if retry_after is not None and status in PAUSE_STATUSES:
        failure.pause_for = retry_after
    elif status == 429:  # too fast, and no hint how long to wait: everyone backs off a step
        failure.pause_for = policy.delay(attempt, rng=rng)
    return failure
