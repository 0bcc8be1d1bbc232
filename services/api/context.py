"""What every request handler shares in one API process: settings, the graph store, the
ad-hoc query runner, the thumbnail cache, the near-duplicate index reader and the memory
budget for decoding uploads.

Why lazy: the app must start (and answer /health, /openapi.json, and a clear 503 elsewhere)
even when the graph is not up yet, and gunicorn forks workers after loading the app, so the
driver (with its sockets and threads) must be created in each worker, on first use.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app

from lookalike.graph import GraphStore
from lookalike.settings import Settings
from lookalike.thumbcache import ThumbnailCache
from services.api.adhoc import AdhocRunner
from services.api.decode_budget import DecodeBudget
from services.api.errors import ApiError


class ApiContext:
    def __init__(self, settings: Settings, store: GraphStore | None = None) -> None:
        self.settings = settings
        self._store = store
        self._adhoc: AdhocRunner | None = None
        self._index: Any = None
        self._titles: Any = None
        self._lock = threading.RLock()  # adhoc -> store nests
        self.thumbnails = ThumbnailCache(
            settings.thumbnail_dir, settings.thumbnail_cache_mb * 1_000_000
        )
        self.decode_budget = DecodeBudget()

    @property
    def store(self) -> GraphStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    # A request should fail fast (503) when the graph is down, not retry for
                    # the driver's default 15 s.
                    self._store = GraphStore.connect(self.settings, retry_time=5.0)
        return self._store

    @property
    def adhoc(self) -> AdhocRunner:
        if self._adhoc is None:
            with self._lock:
                if self._adhoc is None:
                    self._adhoc = AdhocRunner(self.store)
        return self._adhoc

    def index(self) -> Any:
        """The near-duplicate index reader (services/indexer), opened on first use.

        The reader follows the indexer's generation swaps itself, so one per process is enough.
        """
        if self._index is None:
            with self._lock:
                if self._index is None:
                    try:
                        from services.indexer.graph_io import open_reader
                    except ImportError as exc:
                        raise ApiError(
                            503, f"the near-duplicate index reader is not installed ({exc})"
                        ) from exc
                    # Hashes and vectors newer than the index come from the graph and Redis:
                    # nothing is missed, and before the first build every query is an exact
                    # scan.
                    self._index = open_reader(self.settings, self.store)
        return self._index

    def titles(self) -> Any:
        """The title-word index reader (services/indexer), opened on first use; like the
        near-duplicate reader it follows the indexer's generations and reads newer titles
        from the graph."""
        if self._titles is None:
            with self._lock:
                if self._titles is None:
                    from services.indexer.graph_io import GraphTitleSource
                    from services.indexer.titles import TitleReader

                    self._titles = TitleReader(
                        self.settings.index_dir, GraphTitleSource(self.store)
                    )
        return self._titles

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def ctx() -> ApiContext:
    return current_app.extensions["lookalike"]
