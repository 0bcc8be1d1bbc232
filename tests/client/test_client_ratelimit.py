"""The shared rate limit in a real Redis: GCRA bound, pauses, and two real processes."""

from __future__ import annotations

import multiprocessing
import time

import redis as redis_lib

from lookalike.ratelimit import RedisRateLimiter
from tests.client.client_workers import acquire_many, window_excess


def test_burst_then_denied(client_redis: redis_lib.Redis, key_prefix: str) -> None:
    limiter = RedisRateLimiter(client_redis, f"{key_prefix}:h", rate=5, burst=3)
    results = [limiter._try() for _ in range(4)]
    assert [granted for granted, _, _ in results] == [True, True, True, False]
    wait = results[3][1]
    assert 0.15 < wait <= 0.2  # one emission interval at 5/s, minus the time the calls took
    assert client_redis.exists(f"{key_prefix}:h") == 1


def test_grants_hold_rate_plus_burst(client_redis: redis_lib.Redis, key_prefix: str) -> None:
    limiter = RedisRateLimiter(client_redis, f"{key_prefix}:h", rate=40, burst=4)
    grants = [limiter.acquire() for _ in range(20)]
    assert window_excess(grants, 40, 4) <= 1e-6
    # The limit really limited: 20 tokens at 40/s after a burst of 4 need at least 0.4 s.
    assert max(grants) - min(grants) >= (20 - 4) / 40 - 1e-3


def test_pause_is_shared_and_only_extends(client_redis: redis_lib.Redis, key_prefix: str) -> None:
    one = RedisRateLimiter(client_redis, f"{key_prefix}:h", rate=100, burst=10)
    other = RedisRateLimiter(
        redis_lib.Redis(connection_pool=client_redis.connection_pool),
        f"{key_prefix}:h",
        rate=100,
        burst=10,
    )
    assert other.paused_for() == 0
    in_force = one.pause(0.6)
    assert 0.55 < in_force <= 0.6
    assert one.pause(0.1) > 0.4  # a shorter pause does not shorten it
    assert 0.3 < other.paused_for() <= 0.6
    before = float(client_redis.time()[0]) + client_redis.time()[1] / 1e6
    granted = other.acquire()
    assert granted - before >= 0.3  # the grant came only after the pause ended
    assert other.paused_for() == 0


def test_two_processes_share_one_limit(client_redis_url: str, key_prefix: str) -> None:
    rate, burst, n = 25.0, 3, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(abs, [1, 2])  # both workers are up before the clock starts
        start_at = time.time() + 1.5
        runs = [
            pool.apply_async(
                acquire_many, (client_redis_url, f"{key_prefix}:h", rate, burst, n, start_at)
            )
            for _ in range(2)
        ]
        grants = [r.get(timeout=60) for r in runs]
    merged = grants[0] + grants[1]
    assert len(merged) == 2 * n
    # Both processes did take tokens, interleaved in time...
    assert min(grants[1]) < max(grants[0]) and min(grants[0]) < max(grants[1])
    # ...and together they never exceeded rate + burst in any window.
    assert window_excess(merged, rate, burst) <= 1e-6
    assert max(merged) - min(merged) >= (2 * n - burst) / rate - 1e-3
