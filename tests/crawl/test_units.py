"""Small pieces of the crawler without servers: the thumbnail cache and the beat schedule."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lookalike.settings import load_settings
from lookalike.thumbcache import ThumbnailCache
from workers.app import app, beat_schedule


def test_thumbnail_cache_round_trip_and_eviction(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path, max_bytes=2500, writers=1)
    for k in range(5):
        cache.put(f"img{k}", bytes([k]) * 1000)
        time.sleep(0.01)  # distinct modification times, whatever the filesystem's resolution
        assert cache.size() <= 3000  # over the budget by at most the write since a check
    assert cache.get("img4") == bytes([4]) * 1000
    # The least recently written went first.
    assert [cache.path(f"img{k}") is not None for k in range(5)] == [False] * 3 + [True] * 2
    assert cache.get("img0") is None
    assert cache.path("../etc/passwd") is None
    with pytest.raises(ValueError, match="not a valid image id"):
        cache.put("../escape", b"x")
    # Another process filled the folder behind this one's back: an explicit check evicts.
    other = ThumbnailCache(tmp_path, max_bytes=10_000)
    for k in range(5, 9):
        other.put(f"img{k}", bytes([k]) * 1000)
        time.sleep(0.01)
    assert cache.size() == 6000 and cache.evict() == 4 and cache.size() == 2000


def test_thumbnail_cache_lists_its_folder_rarely_while_there_is_room(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path, max_bytes=10_000_000, writers=4)
    for k in range(1000):
        cache.put(f"img{k}", b"x" * 1000)
    # Once when it starts, then only after writing a quarter of the room it found.
    assert cache.scans == 1
    assert cache.size() == 1_000_000


def test_beat_schedule_names_registered_tasks(settings) -> None:
    # ``settings``: the test stack is up before the Celery app reads its configuration, so
    # later tests in this process send tasks to that stack's broker.
    schedule = beat_schedule(load_settings(refresh_interval_s=60.0, discover_interval_s=600.0))
    app.loader.import_default_modules()
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
    assert schedule["refresh-stale"]["schedule"] == 60.0
    assert schedule["discover-new"]["schedule"] == 600.0


def test_celery_is_configured_for_safe_redelivery(settings) -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1


@pytest.mark.parametrize("value", ["0", "101", "-3"])
def test_a_crawl_batch_out_of_range_is_refused_clearly(value: str) -> None:
    from lookalike.settings import SettingsError

    with pytest.raises(SettingsError, match="LOOKALIKE_CRAWL_BATCH must be a whole number"):
        load_settings(environ={"LOOKALIKE_CRAWL_BATCH": value})
    assert load_settings(environ={"LOOKALIKE_CRAWL_BATCH": "16"}).crawl_batch == 16
