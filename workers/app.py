"""The Celery application: broker on Redis, configured for crawling.

Why these settings:
- ``acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged only after it ran, so
  the task of a worker killed mid-fetch goes back to the queue and another worker redoes it
  (tasks are idempotent on the image id, so running one twice is harmless);
- ``worker_prefetch_multiplier = 1``: a worker holds one task at a time, so a kill loses at
  most that one and breadth-first order is not distorted by workers hoarding tasks;
- no long countdowns: with a Redis broker a task delayed past the visibility timeout is
  delivered twice, so backoff uses short sleeps and the shared rate limiter instead;
- results are not stored: progress lives in the crawl's own Redis keys.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery

from lookalike.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)
_FALLBACK_BROKER = "redis://127.0.0.1:6379/0"

QUEUE = "lookalike"
TASK_MODULES = ["workers.tasks", "workers.continuous", "workers.analysis", "workers.watchdog"]


def _broker(settings: Settings) -> str:
    try:
        return settings.redis()
    except SettingsError as exc:
        # Celery drops a configuration source that raises and silently runs on its defaults
        # (no acks_late!), so never raise here. Callers that send tasks pass an explicit
        # connection from settings.redis(), which does raise the clear error.
        log.warning("%s; the Celery app falls back to %s", exc, _FALLBACK_BROKER)
        return _FALLBACK_BROKER


def _config() -> dict[str, object]:
    settings = load_settings()
    return {
        # Resolved when Celery first needs its configuration, not at import: the CLI, tests
        # and workers import this module before the embedded stack is necessarily up.
        "broker_url": _broker(settings),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": 3600},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_default_queue": QUEUE,
        "timezone": "UTC",
        "beat_schedule": beat_schedule(settings),
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    """Continuous crawling: re-fetch stale images, discover new ones, watch running crawls."""
    return {
        "refresh-stale": {
            "task": "lookalike.refresh_stale",
            "schedule": settings.refresh_interval_s,
        },
        "discover-new": {
            "task": "lookalike.discover_new",
            "schedule": settings.discover_interval_s,
        },
        "watch-crawls": {"task": "lookalike.watch_all", "schedule": 15.0},
    }


def worker_argv(
    *,
    pool: str = "solo",
    concurrency: int = 1,
    loglevel: str = "INFO",
    name: str | None = None,
    heartbeat: bool = True,
) -> list[str]:
    """A crawl worker's arguments to ``celery`` (the ``worker`` command onwards), the one
    definition the CLI, the tests and the benchmarks start workers from. Workers never need to
    know of one another (the frontier lives in Redis), so gossip and mingle are off."""
    argv = ["worker", "-Q", QUEUE, "--pool", pool, "--concurrency", str(concurrency)]
    argv += ["--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if name is not None:
        argv += ["-n", name]
    if not heartbeat:
        argv.append("--without-heartbeat")
    return argv


def worker_command(**options: Any) -> list[str]:
    """A crawl worker as a process of this Python: ``worker_argv(**options)`` after
    ``python -m celery -A workers.app``."""
    return [sys.executable, "-m", "celery", "-A", "workers.app", *worker_argv(**options)]


def make_app() -> Celery:
    app = Celery("lookalike", include=TASK_MODULES)
    app.add_defaults(_config)
    return app


app = make_app()
