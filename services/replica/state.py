"""What one running replica holds, shared by its blueprints through ``replica_state()``.

The collection it serves, the fault plan and the request counts (``faults``), where its
pictures come from (``picture_cache``), the folder of its snapshot files, and the base URL
the documents it serves point at.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app, g, request

from services.replica.collection import Collection
from services.replica.faults import FaultConfig, FaultPlan, Stats
from services.replica.picture_cache import PictureCache

EXTENSION = "replica"  # the key of the state in ``app.extensions``


@dataclass
class ReplicaState:
    collection: Collection
    legacy: bool = False
    plan: FaultPlan = field(default_factory=FaultPlan)
    stats: Stats = field(default_factory=Stats)
    public_base: str | None = None
    pictures: PictureCache = field(default_factory=PictureCache)
    snapshot_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="replica-")))
    snapshot_lock: threading.Lock = field(default_factory=threading.Lock)

    def base_url(self) -> str:
        """Where the documents served now point: the public base, else the request's host."""
        return self.public_base or request.host_url.rstrip("/")

    def request_faults(self) -> FaultConfig:
        """The faults of the current request: its own ``?faults=``, else the server's."""
        return g.get("fault_config") or self.plan.config

    def counts(self, *, timestamps: bool = False, paths: bool = False) -> dict:
        """Requests, faults and statuses (``faults.Stats``), and where pictures came from."""
        return {
            **self.stats.snapshot(timestamps=timestamps, paths=paths),
            "pictures": self.pictures.counts(),
        }

    def reset(self) -> None:
        self.stats.reset()
        self.plan.reset()
        self.pictures.reset_counts()

    def close(self) -> None:
        """Remove the snapshot files and release the derivative cache."""
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        self.pictures.close()


def replica_state() -> ReplicaState:
    """The state of the app handling the current request."""
    return current_app.extensions[EXTENSION]
