"""Small pieces of the crawler without servers: the thumbnail cache and the beat schedule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lookalike.settings import load_settings
from lookalike.thumbcache import ThumbnailCache
from workers.app import app, beat_schedule


def test_thumbnail_cache_round_trip_and_eviction(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path, max_bytes=2500, check_every=1000)
    for k in range(5):
        path = cache.put(f"img{k}", bytes([k]) * 1000)
        os.utime(path, (time.time() + k, time.time() + k))  # make write order explicit
    assert cache.get("img4") == bytes([4]) * 1000
    assert cache.size() == 5000
    assert cache.evict() == 3
    assert [cache.path(f"img{k}") is not None for k in range(5)] == [False] * 3 + [True] * 2
    assert cache.get("img0") is None
    assert cache.path("../etc/passwd") is None
    with pytest.raises(ValueError, match="not a valid image id"):
        cache.put("../escape", b"x")


def test_beat_schedule_names_registered_tasks() -> None:
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
