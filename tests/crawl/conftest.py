"""Fixtures for crawler tests: a served replica collection and real Celery worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from lookalike.settings import Settings, load_settings
from tests.support import REPO, child_env
from workers.app import worker_command
from workers.frontier import EMBED_HINTS, HINTS


@dataclass
class Workers:
    env: dict[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, n: int = 1) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(n):
            k = len(self.procs)
            log = (self.logs / f"worker{k}.log").open("ab")
            proc = subprocess.Popen(
                worker_command(name=f"w{k}-{os.getpid()}@%h", heartbeat=False),
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs.append(proc)
            started.append(proc)
        return started

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log_text(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-4000:]}"
            for f in sorted(self.logs.glob("worker*.log"))
        )


def worker_env(local: Settings, replica_env: dict[str, str], **extra: str) -> dict[str, str]:
    return child_env(
        local,
        **{
            **replica_env,
            "LOOKALIKE_CRAWL_LEASE_S": "8",
            "LOOKALIKE_BACKOFF_MAX": "5",
            **extra,
        },
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(local: Settings, replica_env: dict[str, str], n: int = 1, **extra: str) -> Workers:
        # Crawl as on a new machine, where no image is hinted as hashed: fetches hash before
        # their graph writes (the hints' other case is tests/crawl/test_fetch_task.py's).
        redis.Redis.from_url(local.redis()).delete(HINTS, EMBED_HINTS)
        w = Workers(worker_env(local, replica_env, **extra), tmp_path)
        w.start(n)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def crawl_settings(local: Settings, replica_env: dict[str, str], **extra: object) -> Settings:
    """Settings for the test process itself, matching what the workers get."""
    return load_settings(
        state_dir=local.state_dir,
        neo4j_database=local.neo4j_database,
        redis_url=local.redis(),
        catalogue_url=replica_env["LOOKALIKE_CATALOGUE_URL"],
        image_hosts=(replica_env["LOOKALIKE_IMAGE_HOSTS"],),
        crawl_lease_s=8.0,
        **extra,
    )
