"""Pure parts of the client: host checks, IIIF URLs, GCRA."""

from __future__ import annotations

import pytest

from lookalike.catalogue import host_allowed, host_of, iiif_thumbnail_url
from lookalike.errors import RateLimitTimeout
from lookalike.ratelimit import LocalRateLimiter


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        (
            "https://iiif.wellcomecollection.org/image/V1/info.json",
            ["iiif.wellcomecollection.org"],
            True,
        ),
        ("https://IIIF.wellcomecollection.org:443/x", ["iiif.wellcomecollection.org"], True),
        ("https://iiif.wellcomecollection.org:8443/x", ["iiif.wellcomecollection.org"], False),
        ("http://127.0.0.1:8123/image/a", ["127.0.0.1:8123"], True),
        ("http://127.0.0.1:8124/image/a", ["127.0.0.1:8123"], False),
        ("http://127.0.0.1/image/a", ["127.0.0.1:8123"], False),
        ("http://localhost:8123/image/a", ["127.0.0.1:8123"], False),
        ("https://iiif.wellcomecollection.org.evil.org/x", ["iiif.wellcomecollection.org"], False),
        ("https://iiif.wellcomecollection.org@evil.org/x", ["iiif.wellcomecollection.org"], False),
        ("https://user@iiif.wellcomecollection.org/x", ["iiif.wellcomecollection.org"], False),
        ("file:///etc/passwd", ["iiif.wellcomecollection.org"], False),
        ("ftp://iiif.wellcomecollection.org/x", ["iiif.wellcomecollection.org"], False),
        ("https://iiif.wellcomecollection.org:bad/x", ["iiif.wellcomecollection.org"], False),
        ("/image/relative", ["iiif.wellcomecollection.org"], False),
    ],
)
def test_host_allowed(url: str, allowed: list[str], ok: bool) -> None:
    assert host_allowed(url, allowed) is ok


def test_host_of() -> None:
    assert host_of("https://API.example.org:443/x") == "api.example.org"
    assert host_of("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert host_of("http://[::1]:8080/x") == "[::1]:8080"


def test_iiif_thumbnail_url() -> None:
    assert (
        iiif_thumbnail_url("https://iiif.wellcomecollection.org/image/L0014768/info.json", 400)
        == "https://iiif.wellcomecollection.org/image/L0014768/full/!400,400/0/default.jpg"
    )
    assert (
        iiif_thumbnail_url("http://127.0.0.1:9/image/b28887505_0001.jp2/", 200)
        == "http://127.0.0.1:9/image/b28887505_0001.jp2/full/!200,200/0/default.jpg"
    )
    with pytest.raises(ValueError, match="not a IIIF image service"):
        iiif_thumbnail_url("https://iiif.wellcomecollection.org/info.json", 400)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_local_gcra_allows_burst_then_rate() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    grants = [limiter.acquire() for _ in range(8)]
    assert grants[:3] == [1000.0] * 3  # the burst
    # Then one token per 1/rate on the schedule (a waiter may wake up to 10 ms late).
    for k in range(3, 8):
        due = 1000.0 + (k - 2) * 0.1
        assert due - 1e-9 <= grants[k] <= due + 0.011, (k, grants)
    # In every window, at most burst + rate * length tokens.
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            assert j - i + 1 <= 3 + 10 * (grants[j] - grants[i]) + 1e-9


def test_local_pause_holds_and_only_extends() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=100, burst=5, clock=clock, sleep=clock.sleep)
    assert limiter.pause(2.0) == 2.0
    assert limiter.pause(0.5) == 2.0  # a shorter Retry-After does not cut it short
    assert limiter.paused_for() == 2.0
    granted = limiter.acquire()
    assert granted >= 1002.0
    assert limiter.paused_for() == 0.0


def test_local_acquire_timeout() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=1, burst=1, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    with pytest.raises(RateLimitTimeout) as info:
        limiter.acquire(timeout=0.2)
    assert 0.9 <= info.value.wait <= 1.1
    with pytest.raises(ValueError, match="rate must be a positive"):
        LocalRateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst must be at least 1"):
        LocalRateLimiter(rate=1, burst=0)
