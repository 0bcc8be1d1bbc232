"""Functions run in separate worker processes by the client tests (importable for spawn)."""

from __future__ import annotations

import time
from typing import Any


def acquire_many(
    redis_url: str, key: str, rate: float, burst: int, n: int, start_at: float = 0.0
) -> list[float]:
    """Take ``n`` tokens from the shared limiter; return the grant times (Redis clock)."""
    import redis

    from lookalike.ratelimit import RedisRateLimiter

    time.sleep(max(0.0, start_at - time.time()))  # start together with the other process

    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, key, rate, burst)
    try:
        return [limiter.acquire() for _ in range(n)]
    finally:
        client.close()


def fetch_many(
    redis_url: str,
    settings_kwargs: dict[str, Any],
    key_prefix: str,
    ids: list[str],
    start_at: float = 0.0,
) -> dict[str, Any]:
    """Fetch images through a client of this process's own, sharing the Redis limit.

    Returns the ids fetched with their similar ids, the errors by reason and the stats.
    """
    from lookalike.catalogue import CatalogueClient
    from lookalike.errors import CatalogueError
    from lookalike.settings import load_settings

    time.sleep(max(0.0, start_at - time.time()))  # start together with the other process
    settings = load_settings(environ={}, redis_url=redis_url, **settings_kwargs)
    fetched: dict[str, list[str]] = {}
    errors: dict[str, int] = {}
    with CatalogueClient.connect(settings, key_prefix=key_prefix) as client:
        assert client.redis is not None  # really sharing through Redis
        for image_id in ids:
            try:
                result = client.get_image(image_id)
                fetched[result.image.id] = [s.id for s in result.similar]
            except CatalogueError as exc:
                errors[exc.reason] = errors.get(exc.reason, 0) + 1
        stats = dict(client.stats)
    return {"fetched": fetched, "errors": errors, "stats": stats}


def window_excess(grants: list[float], rate: float, burst: int) -> float:
    """The largest (tokens in a window) - (burst + rate * window length); <= 0 when held."""
    times = sorted(grants)
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (burst + rate * (times[j] - times[i])))
    return worst
