"""The retry policy (lookalike.retry), pure: what is retried, Retry-After, the backoff
schedule and each user's budget."""

from __future__ import annotations

import email.utils
import random

import pytest

from lookalike.retry import (
    BAD_BODY_ATTEMPTS,
    GRAPH_RESTARTS,
    GRAPH_WRITES,
    REDIS_RESTARTS,
    RetryPolicy,
    backoff_delay,
    catalogue_requests,
    crawl_tasks,
    parse_retry_after,
    retryable_status,
)
from lookalike.settings import load_settings

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_is_exponential_capped_and_jittered() -> None:
    low = [backoff_delay(n, 0.5, 30.0, _Fixed(0.0)) for n in range(8)]
    high = [backoff_delay(n, 0.5, 30.0, _Fixed(0.999999)) for n in range(8)]
    # Half of each step is fixed, half is jitter.
    assert low == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert [round(h, 3) for h in high] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    samples = {round(backoff_delay(3, 0.5, 30.0), 6) for _ in range(50)}
    assert len(samples) > 10  # really random
    assert all(2.0 <= s <= 4.0 for s in samples)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_overload_and_server_errors_are_retried(status: int) -> None:
    assert retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 410, 413, 501])
def test_answers_that_would_come_back_the_same_are_not_retried(status: int) -> None:
    assert not retryable_status(status)


def test_a_policy_gives_up_after_its_retries() -> None:
    policy = RetryPolicy(retries=2, base=0.5, cap=30.0)
    assert [policy.gives_up(n) for n in range(4)] == [False, False, True, True]
    assert RetryPolicy(retries=0, base=0.5, cap=30.0).gives_up(0)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=5, base=0.5, cap=30.0)
    low = _Fixed(0.0)
    assert policy.delay(0, None, low) == 0.25  # plain backoff
    assert policy.delay(0, 7.0, low) == 7.0  # never sooner than the server asks
    assert policy.delay(6, 1.0, low) == 15.0  # the backoff step when that is longer
    assert policy.delay(0, 3600.0, low) == 30.0  # a longer wait is not spent in-line


def test_settings_set_the_request_and_task_budgets() -> None:
    settings = load_settings(
        environ={}, max_retries=3, task_retries=7, backoff_base=0.2, backoff_max=9.0
    )
    assert catalogue_requests(settings) == RetryPolicy(3, 0.2, 9.0)
    assert crawl_tasks(settings) == RetryPolicy(7, 0.2, 9.0)


def test_graph_budgets_start_small_and_stay_bounded() -> None:
    # Colliding writes succeed at once when retried: the first wait is tens of milliseconds.
    assert GRAPH_WRITES.delay(0, rng=_Fixed(0.999999)) <= 0.02
    assert max(GRAPH_WRITES.delay(n) for n in range(GRAPH_WRITES.retries)) <= GRAPH_WRITES.cap
    # A restarting server is waited for minutes, not hours, in steps of a few seconds.
    total = sum(GRAPH_RESTARTS.delay(n, rng=_Fixed(0.5)) for n in range(GRAPH_RESTARTS.retries))
    assert 60 < total < 600


def test_redis_budget_outlasts_a_failover_and_stays_bounded() -> None:
    # Sentinel notices a dead master after 30 s by default, then promotes a replica: the
    # shortest wait the jitter allows still outlasts that; the longest is minutes, not hours.
    shortest = sum(REDIS_RESTARTS.delay(n, rng=_Fixed(0.0)) for n in range(REDIS_RESTARTS.retries))
    longest = sum(
        REDIS_RESTARTS.delay(n, rng=_Fixed(0.999999)) for n in range(REDIS_RESTARTS.retries)
    )
    assert 45 < shortest <= longest < 300
    assert BAD_BODY_ATTEMPTS >= 2  # a damaged body gets a second chance
