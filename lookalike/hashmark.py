"""The workers' mark in Redis of the newest image write they made: how a reader knows, without
the graph, that the graph holds nothing its index generation lacks.

Why: a search asks the graph for the hashes stamped since its generation was built (and the
titles of its results), and for a one-shot ``lookalike search`` importing the graph driver
costs more than the search itself. So every worker write that stamps images with a time the
readers look at (``hashed_at`` of new hashes, ``fetched_at`` of fetched images, whose titles
may be new) first records that time here, as the score of the one member of a sorted set
(``ZADD ... GT``: the mark only grows), in the same round trip as the vectors it hands over.

The rule (``settled``): a generation whose graph read began at ``read_at`` holds every write
whose stamp is at most ``read_at - slack_ms`` (the reader's own contract: a stamp is taken
before its transaction commits, and the transaction commits, or never does, within the
slack; the slack covers the clocks of workers and indexer disagreeing too). If the mark is at
most that, nothing was written since: the graph has nothing the generation lacks.

Order matters, as for the vectors (``lookalike.vectors``): the mark is written *before* the
graph write, so a write the graph holds is never newer than the mark. A missing mark (Redis
flushed, workers older than this) or a Redis that does not answer means "not known": the
reader asks the graph, as before. The mark is kept per graph database, so graphs that share
one Redis do not vouch for each other.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis

log = logging.getLogger(__name__)

PREFIX = "lk:written:"
MEMBER = "newest"


def key(database: str | None) -> str:
    """The sorted set holding the mark of one graph database (None/"": the default one)."""
    return PREFIX + (database or "")


class Pipeline(Protocol):
    """The part of a redis-py pipeline (or client) ``announce`` uses."""

    def zadd(self, name: str, mapping: dict[str, float], *, gt: bool = ...) -> object: ...


class Client(Protocol):
    """The part of a redis-py client ``newest`` uses."""

    def zscore(self, name: str, value: str) -> object: ...


def announce(pipe: Pipeline, database: str | None, written_at: int) -> None:
    """Queue the mark of a write stamped ``written_at`` (epoch ms) on ``pipe``: send it, and
    have Redis acknowledge it, before the graph write."""
    if written_at < 0:
        raise ValueError(f"a write time is epoch milliseconds, not {written_at}")
    pipe.zadd(key(database), {MEMBER: int(written_at)}, gt=True)


def newest(client: Client, database: str | None) -> int | None:
    """The newest write announced for ``database`` (epoch ms), None when none is (the key
    is missing). Redis errors are the caller's: they too mean "not known"."""
    score = client.zscore(key(database), MEMBER)
    if score is None:
        return None
    if not isinstance(score, int | float | str | bytes):
        raise TypeError(f"unexpected mark {score!r} in {key(database)}")
    return int(float(score))


def settled(mark: int | None, read_at: int | None, slack_ms: int) -> bool:
    """Whether a generation whose graph read began at ``read_at`` (None: not known) holds
    every write announced up to ``mark`` (None: no mark): see the module's docstring."""
    if mark is None or read_at is None or read_at <= 0:
        return False
    return mark <= read_at - slack_ms


class RedisMarks:
    """The reader's ``WriteMarks`` (services.indexer.reader): the mark of one graph database
    read from Redis. Redis away reads as "not known" (the reader asks the graph), said once
    until Redis answers again."""

    def __init__(self, client: redis.Redis, database: str | None) -> None:
        self.client = client
        self.database = database
        self._away = False

    def newest(self) -> int | None:
        try:
            mark = newest(self.client, self.database)
        except (redis.RedisError, TypeError, ValueError) as exc:
            if not self._away:
                self._away = True
                log.warning(
                    "cannot read the workers' write mark from Redis (%s): asking the graph "
                    "for what is newer than the index",
                    exc,
                )
            return None
        self._away = False
        return mark
