"""One request rate per catalogue host, shared by every worker process (GCRA in Redis).

Why GCRA: it needs one number per host (the "theoretical arrival time", TAT), is exact, and
allows a burst of ``burst`` requests after idleness while holding the long-run rate to
``rate``/s. In any time window of length W at most ``burst + rate * W`` tokens are granted.
The check-and-update runs as one Lua script (``lookalike/lua/``), so concurrent workers cannot
both take the last token, and it reads the clock from Redis (``TIME``) so workers on different
machines share one clock.

A second key holds "paused until": when the catalogue answers 429 with Retry-After, the
worker that saw it calls ``pause(seconds)`` and every worker's next ``acquire`` waits it out,
so the whole crawl backs off together instead of each worker discovering the 429 by itself.

``LocalRateLimiter`` is the same algorithm in-process (threads), for use without Redis.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from lookalike.errors import RateLimitTimeout
from lookalike.redis_scripts import source

if TYPE_CHECKING:
    from redis import Redis

_US = 1_000_000

# The scripts, in lookalike/lua/ratelimit_*.lua.
_ACQUIRE_LUA = source("lookalike", "ratelimit_acquire")
_PAUSE_LUA = source("lookalike", "ratelimit_pause")
_PAUSED_FOR_LUA = source("lookalike", "ratelimit_paused_for")


class RateLimiter(Protocol):
    """What the catalogue client needs from a limiter."""

    def acquire(self, timeout: float | None = None) -> float: ...

    def pause(self, seconds: float) -> float: ...

    def paused_for(self) -> float: ...


def _check(rate: float, burst: int) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
    if int(burst) < 1:
        raise ValueError(f"burst must be at least 1, not {burst!r}")


class _Blocking:
    """``acquire`` on top of a non-blocking ``_try() -> (granted, wait_s, now_s)``."""

    rate: float
    _sleep: Callable[[float], None]

    def _try(self) -> tuple[bool, float, float]:
        raise NotImplementedError

    def acquire(self, timeout: float | None = None) -> float:
        """Block until a token is granted; return the grant time (limiter clock, seconds).

        Raises ``RateLimitTimeout`` if the wait would exceed ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            granted, wait, now = self._try()
            if granted:
                return now
            # A little jitter so waiters released together do not all retry in lockstep.
            wait += random.uniform(0, min(0.05, 0.1 / self.rate))
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if wait > remaining:
                    raise RateLimitTimeout(
                        f"no request slot within {timeout:.3f}s (next in {wait:.3f}s); "
                        "the shared rate limit or a Retry-After pause is holding requests back",
                        wait,
                    )
            self._sleep(wait)


class RedisRateLimiter(_Blocking):
    """GCRA limiter whose state lives in Redis under ``key`` (and ``key + ':pause'``)."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        rate: float,
        burst: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check(rate, burst)
        self.redis = redis
        self.key = key
        self.pause_key = f"{key}:pause"
        self.rate = float(rate)
        self.burst = int(burst)
        self._interval_us = max(1, round(_US / self.rate))
        self._sleep = sleep
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._pause = redis.register_script(_PAUSE_LUA)
        self._paused_for = redis.register_script(_PAUSED_FOR_LUA)

    def _try(self) -> tuple[bool, float, float]:
        granted, wait_us, now_us = self._acquire(
            keys=[self.key, self.pause_key], args=[self._interval_us, self.burst]
        )
        return bool(granted), int(wait_us) / _US, int(now_us) / _US

    def pause(self, seconds: float) -> float:
        """Hold every process's requests for ``seconds``; returns the pause now in force."""
        us = max(0, round(seconds * _US))
        return int(self._pause(keys=[self.pause_key], args=[us])) / _US

    def paused_for(self) -> float:
        """Seconds until the shared pause ends (0 when not paused)."""
        return int(self._paused_for(keys=[self.pause_key])) / _US

    def reset(self) -> None:
        """Forget the bucket and any pause (tests, or after changing the rate)."""
        self.redis.delete(self.key, self.pause_key)


class LocalRateLimiter(_Blocking):
    """The same GCRA in process memory, shared by the threads of one process only."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check(rate, burst)
        self.rate = float(rate)
        self.burst = int(burst)
        self._interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = 0.0
        self._pause_until = 0.0

    def _try(self) -> tuple[bool, float, float]:
        with self._lock:
            now = self._clock()
            if self._pause_until > now:
                return False, self._pause_until - now, now
            tat = max(self._tat, now)
            new_tat = tat + self._interval
            allow_at = new_tat - self.burst * self._interval
            if allow_at > now + 1e-9:  # float rounding must not eat a burst token
                return False, allow_at - now, now
            self._tat = new_tat
            return True, 0.0, now

    def pause(self, seconds: float) -> float:
        with self._lock:
            now = self._clock()
            self._pause_until = max(self._pause_until, now + max(0.0, seconds))
            return max(0.0, self._pause_until - now)

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._pause_until - self._clock())

    def reset(self) -> None:
        with self._lock:
            self._tat = 0.0
            self._pause_until = 0.0
