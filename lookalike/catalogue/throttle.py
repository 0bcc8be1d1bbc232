"""Politeness: one request rate per host, shared by every worker process through Redis, and
the shared pause a 429/503 with Retry-After puts on a host."""

from __future__ import annotations

import time
from typing import Any

from lookalike.catalogue.offsite import host_of
from lookalike.catalogue.stats import ClientStats
from lookalike.errors import CatalogueError, RateLimitTimeout
from lookalike.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from lookalike.settings import Settings

DEFAULT_KEY_PREFIX = "lookalike:ratelimit"


class Throttle:
    """The rate limiters of the hosts one client talks to.

    ``redis_client`` (a ``redis.Redis``) makes them shared by every process using the same
    Redis; without it each client limits itself only. ``max_wait`` is the longest a request
    waits for its turn before it is given back to the caller.
    """

    def __init__(
        self,
        settings: Settings,
        redis_client: Any,
        key_prefix: str,
        max_wait: float,
        stats: ClientStats,
    ) -> None:
        self.rate, self.burst = settings.rate_limit, settings.rate_burst
        self.redis = redis_client
        self.key_prefix = key_prefix
        self.max_wait = max_wait
        self.stats = stats
        self._limiters: dict[str, RateLimiter] = {}

    def limiter(self, url: str) -> RateLimiter:
        """The rate limiter of ``url``'s host (shared via Redis when there is one)."""
        host = host_of(url)
        limiter = self._limiters.get(host)
        if limiter is None:
            if self.redis is not None:
                limiter = RedisRateLimiter(
                    self.redis, f"{self.key_prefix}:{host}", self.rate, self.burst
                )
            else:
                limiter = LocalRateLimiter(self.rate, self.burst)
            self._limiters[host] = limiter
        return limiter

    def acquire(self, url: str) -> None:
        """Wait for ``url``'s turn; ``rate_limited`` when that is more than ``max_wait`` away."""
        limiter = self.limiter(url)
        started = time.monotonic()
        try:
            limiter.acquire(timeout=self.max_wait)
        except RateLimitTimeout as exc:
            wait = max(exc.wait, limiter.paused_for())
            raise CatalogueError(
                "rate_limited",
                f"not sending GET {url}: the shared rate limit for {host_of(url)} (or a "
                f"Retry-After pause) holds requests back for another {wait:.1f}s, longer than "
                f"the {self.max_wait:.0f}s a task may wait; try again after that",
                url=url,
                retry_after=wait,
            ) from exc
        finally:
            self.stats.count("rate_wait_s", time.monotonic() - started)

    def pause(self, url: str, seconds: float) -> None:
        """Hold back every worker sharing ``url``'s host for ``seconds``."""
        self.limiter(url).pause(seconds)
        self.stats.count("pauses")
