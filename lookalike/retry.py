"""The one retry policy: what is worth another attempt, how many attempts, how long between.

Everything that retries uses it: the catalogue client's requests (``lookalike.catalogue``),
the graph store's colliding writes (``lookalike.graph``) and the crawl tasks that put an
image back on the queue (``workers.tasks``). What differs between them is only the budget
(attempts, first delay, longest delay), each a ``RetryPolicy`` built here; the rules are
shared:

- retried: 429, 500, 502, 503, 504, timeouts, dropped connections, a body damaged on the
  way (``BAD_BODY_ATTEMPTS`` at most, and not when the same bad body comes back each time),
  write conflicts between concurrent graph writers, a graph server that is away, a Redis
  that is away (``lookalike.errors.REDIS_AWAY``) when a task hands vectors to the indexer;
- never retried: any other status (400, 404, 410, ...), an answer over its size limit, a
  host that is not allowed, a record that does not validate;
- the delay before retry n+1 doubles from ``base`` up to ``cap``, half fixed and half random
  ("equal jitter": retries really slow down, and workers that failed together do not retry
  together);
- a Retry-After on 429 or 503 is honoured: no retry comes sooner than it asks (up to
  ``cap``; a longer one gives the task back instead of blocking a worker).

Pure: no I/O, no clock except for reading an HTTP-date Retry-After.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC

from lookalike.settings import Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After on these holds back every worker sharing the host, not only the one asking.
PAUSE_STATUSES = frozenset({429, 503})
# A well-framed but bad body (malformed JSON, not an image) is usually the server's own data,
# rarely damage on the way: it gets this many attempts, not the full retry budget.
BAD_BODY_ATTEMPTS = 3
BACKOFF_FACTOR = 2.0  # each retry's step is this many times the previous one's


def retryable_status(status: int) -> bool:
    """Is an HTTP answer with this status worth asking again?"""
    return status in RETRY_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None.

    A date in the past gives 0; an unreadable value gives None (then plain backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt + 1``: exponential, capped, "equal jitter".

    Half the step is fixed (so retries really do slow down), half is random (so workers
    that failed together do not retry together). Step n is ``min(cap, base * 2**n)``.
    """
    step = min(cap, base * (BACKOFF_FACTOR ** max(0, attempt)))
    r = rng.random() if rng is not None else random.random()
    return step / 2 + r * step / 2


@dataclass(frozen=True)
class RetryPolicy:
    """A retry budget: ``retries`` attempts after the first, delays from ``base`` to ``cap``."""

    retries: int
    base: float
    cap: float

    def gives_up(self, attempt: int) -> bool:
        """After failed attempt number ``attempt`` (0 = the first), is that the last one?"""
        return attempt >= self.retries

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before the attempt after ``attempt``: the backoff step, or the server's
        Retry-After when that is longer, never more than ``cap``."""
        step = backoff_delay(attempt, self.base, self.cap, rng)
        return min(self.cap, max(step, retry_after or 0.0))


def catalogue_requests(settings: Settings) -> RetryPolicy:
    """One catalogue or image-server request (``LOOKALIKE_MAX_RETRIES``, ``BACKOFF_*``)."""
    return RetryPolicy(settings.max_retries, settings.backoff_base, settings.backoff_max)


def crawl_tasks(settings: Settings) -> RetryPolicy:
    """An image put back on the queue after the client's own retries gave up
    (``LOOKALIKE_TASK_RETRIES`` more tries, the same delays as a request's)."""
    return RetryPolicy(settings.task_retries, settings.backoff_base, settings.backoff_max)


# Concurrent crawl writes touching the same popular node collide (a transient "deadlock" on
# Neo4j, a ConstraintError or "concurrent change" on ArcadeDB) and succeed at once when
# retried: start at 20 ms, not the driver's default 1 s that left the workers idle.
GRAPH_WRITES = RetryPolicy(retries=8, base=0.02, cap=2.0)
# The graph server may be restarting: a task reconnects for a few minutes before it gives up
# on an image.
GRAPH_RESTARTS = RetryPolicy(retries=30, base=1.0, cap=8.0)
# Redis may be restarting (loading its data) or failing over (Sentinel notices after 30 s by
# default): a task tries an image again for a couple of minutes before it gives up on it.
REDIS_RESTARTS = RetryPolicy(retries=20, base=1.0, cap=8.0)
