"""One request, attempted until it succeeds or the retry policy (``lookalike.retry``) gives
up: each attempt within one deadline for the whole request (``deadline.py``: a server
trickling its answer byte by byte is cut off too), a Retry-After shared with every worker,
backoff with jitter between attempts."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from lookalike.catalogue.deadline import Deadline
from lookalike.catalogue.failures import Transient, noted
from lookalike.catalogue.offsite import host_of
from lookalike.catalogue.redirects import get_following
from lookalike.catalogue.stats import ClientStats
from lookalike.catalogue.statuses import retry_status, status_error
from lookalike.catalogue.throttle import Throttle
from lookalike.catalogue.transport import Transport
from lookalike.errors import CatalogueError
from lookalike.retry import BAD_BODY_ATTEMPTS, RetryPolicy, retryable_status

log = logging.getLogger(__name__)

T = TypeVar("T")

# Turns a 200 answer into a value; may raise ``Transient`` to have the attempt retried.
Reader = Callable[[requests.Response, str], T]


@dataclass(frozen=True)
class Source:
    """One kind of thing the client fetches: its name in messages, the hosts it may come
    from, and the Accept header asked with."""

    what: str
    allowed: tuple[str, ...]
    accept: str


class Fetcher:
    """GETs under ``policy``, each attempt through ``transport`` within ``http_timeout``."""

    def __init__(
        self,
        transport: Transport,
        throttle: Throttle,
        policy: RetryPolicy,
        http_timeout: float,
        stats: ClientStats,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.throttle = throttle
        self.policy = policy
        self.http_timeout = http_timeout
        self.stats = stats
        self._sleep = sleep
        self._rng = rng or random.Random()

    def fetch(
        self,
        source: Source,
        url: str,
        params: Mapping[str, Any] | None,
        read: Reader[T],
        *,
        keep_open: bool = False,
    ) -> T:
        """GET ``url`` (a ``source``) with the rate limit, retries and backoff; ``read``
        turns a 200 into a value.

        With ``keep_open`` the response stays open after ``read`` (the caller streams it and
        closes it).
        """
        policy = self.policy
        bad_bodies: list[str] = []  # digests of the malformed / non-image bodies so far
        attempt = 0
        while True:
            # The whole request, body included, has http_timeout seconds; a streamed one
            # (keep_open: a snapshot of every image) only its socket timeouts.
            limit = None if keep_open else Deadline(self.http_timeout)
            try:
                with limit or contextlib.nullcontext():
                    return self._attempt(source, url, params, read, keep_open, attempt)
            except Transient as caught:
                failure = caught
                if limit is not None and limit.expired:
                    failure = self._over_deadline(url, caught)
                self.stats.count(failure.stat)
                error = failure.error
                if failure.body_digest is not None:
                    bad_bodies.append(failure.body_digest)
                    if len(bad_bodies) >= BAD_BODY_ATTEMPTS:
                        same = len(set(bad_bodies)) == 1
                        error.retryable = not same
                        note = f"a bad body came back {len(bad_bodies)} times"
                        if same:
                            note += ", the same each time: the server itself serves it so"
                        raise noted(error, note) from None
                if failure.pause_for is not None:
                    # Every worker sharing this host's limiter now waits it out together.
                    self.throttle.pause(url, failure.pause_for)
                    log.info("pausing %s %.1fs after: %s", host_of(url), failure.pause_for, error)
                    if failure.pause_for > self.throttle.max_wait:
                        raise noted(
                            error,
                            f"it asked for a {failure.pause_for:.0f}s pause, longer than a task "
                            f"may wait ({self.throttle.max_wait:.0f}s): all workers hold off, "
                            "try again after it",
                        ) from None
                if policy.gives_up(attempt):
                    if policy.retries:
                        error = noted(error, f"gave up after {policy.retries + 1} attempts")
                    raise error from None
            # The shared pause, if any, is waited out by the rate limit before the next GET.
            delay = policy.delay(attempt, rng=self._rng)
            self.stats.count("retries")
            self.stats.count("backoff_s", delay)
            log.debug("retry %d of %s in %.2fs: %s", attempt + 1, url, delay, error.message)
            self._sleep(delay)
            attempt += 1

    def _attempt(
        self,
        source: Source,
        url: str,
        params: Mapping[str, Any] | None,
        read: Reader[T],
        keep_open: bool,
        attempt: int,
    ) -> T:
        """One request: the value, a ``Transient`` failure, or a final ``CatalogueError``."""
        try:
            resp, final_url = get_following(
                self.transport, url, params, source.allowed, source.what, source.accept
            )
        except requests.Timeout as exc:
            raise Transient(
                CatalogueError(
                    "unavailable",
                    f"GET {url} timed out after {self.http_timeout}s ({exc})",
                    url=url,
                ),
                "timeouts",
            ) from exc
        except requests.RequestException as exc:
            raise Transient(
                CatalogueError(
                    "unavailable",
                    f"GET {url} failed to connect or lost the connection "
                    f"({exc.__class__.__name__}: {exc})",
                    url=url,
                ),
                "connection_errors",
            ) from exc
        close = True
        try:
            if resp.status_code == 200:
                value = read(resp, final_url)
                close = not keep_open  # the caller streams the body and closes it
                return value
            if retryable_status(resp.status_code):
                raise retry_status(resp, final_url, attempt, self.policy, self._rng)
            raise status_error(resp, final_url)
        finally:
            if close:
                resp.close()

    def _over_deadline(self, url: str, cause: Transient) -> Transient:
        """The failure of a request its deadline cut off (``cause``: how the cut showed)."""
        failure = Transient(
            CatalogueError(
                "unavailable",
                f"GET {url} timed out: it took longer than {self.http_timeout:g}s, "
                "the limit for a whole request (LOOKALIKE_HTTP_TIMEOUT); the server is too "
                "slow or sends its answer a trickle at a time",
                url=url,
            ),
            "timeouts",
        )
        failure.__cause__ = cause
        return failure
