"""Where the replica's encoded pictures come from: memory, the derivative cache, or a render.

A picture is looked up in a small in-memory cache (crawlers and their retries ask for the same
thumbnail several times: hash task, retries after faults), then, when the replica has one, in
the derivative cache on disk (``derivatives``: pre-rendered or stored at first request, as the
real image service serves thumbnails made at ingest), and only then drawn and encoded
(``iiif.render``). The bytes are always clean: faults are applied on top by the IIIF routes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from services.replica import iiif
from services.replica.collection import ImageSource
from services.replica.derivatives import DerivativeCache, Key

MEMORY_ITEMS = 512


class RenderCache:
    """A small FIFO cache of encoded pictures (rendering one costs milliseconds)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._data: dict[tuple, bytes] = {}
        self._lock = threading.Lock()

    def get_or_render(self, key: tuple, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self.hits += 1
        if hit is not None:
            return hit
        data = render()
        with self._lock:
            if len(self._data) >= self.size:
                self._data.pop(next(iter(self._data)))
            self._data[key] = data
        return data

    def reset_counts(self) -> None:
        with self._lock:
            self.hits = 0


class PictureCache:
    """The encoded picture of a parsed IIIF request, from the cheapest place that has it."""

    def __init__(
        self, derivatives: DerivativeCache | None = None, memory_items: int = MEMORY_ITEMS
    ) -> None:
        self.derivatives = derivatives
        self.memory = RenderCache(memory_items)
        self._rendered = 0
        self._lock = threading.Lock()

    def get(self, key: Key, source: ImageSource, request: iiif.ImageRequest) -> bytes:
        """The bytes for ``key`` (the request's IIIF path segments), without faults."""

        def from_disk_or_render() -> bytes:
            if self.derivatives is not None:
                data = self.derivatives.get(key)
                if data is not None:
                    return data
            data = iiif.render(source, request)
            with self._lock:
                self._rendered += 1
            if self.derivatives is not None:
                self.derivatives.put(key, data)
            return data

        return self.memory.get_or_render(key, from_disk_or_render)

    def counts(self) -> dict:
        """Where the served pictures came from (since the last reset)."""
        disk = self.derivatives.counts() if self.derivatives is not None else {}
        with self._lock:
            rendered = self._rendered
        return {
            "memory_hits": self.memory.hits,
            "derivative_hits": disk.get("hits", 0),
            "rendered": rendered,
            "stored": disk.get("stored", 0),
            "not_stored_full": disk.get("full", 0),
            "store_errors": disk.get("error", 0),
            "derivatives_dir": str(self.derivatives.directory) if self.derivatives else None,
            "derivatives_mb": round(self.derivatives.usage_bytes / 2**20, 2)
            if self.derivatives
            else None,
        }

    def reset_counts(self) -> None:
        self.memory.reset_counts()
        if self.derivatives is not None:
            self.derivatives.reset_counts()
        with self._lock:
            self._rendered = 0

    def close(self) -> None:
        if self.derivatives is not None:
            self.derivatives.close()
