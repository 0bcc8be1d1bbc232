"""A bounded on-disk cache of thumbnails, so pictures of the graph need no second download.
The same folder logic keeps the near-duplicate verification views (lookalike.viewstore).

Files are written atomically (temp file + rename) because workers, the API and the report
read and write the same folder from different processes. When the folder grows past its
byte budget, the least recently written files go first.

Checking the budget means listing the folder, which costs as much as the cache has files, so
a process checks only when enough has been written since its last check to possibly fill the
room that check left (shared among ``writers`` processes that may be writing at once): a
crawl filling a large cache lists it a handful of times, not every few hundred thumbnails.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lookalike.ids import is_image_id


class ThumbnailCache:
    """``suffix``: how a file's name ends after the image id (``.jpg``: the thumbnail as
    downloaded); files of the same extension with other suffixes count against the budget
    too, so a folder shared by versions of a recipe evicts the old ones first."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        writers: int = 8,
        suffix: str = ".jpg",
        what: str = "thumbnail cache",
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.writers = max(1, writers)
        self.suffix = suffix
        self.what = what
        self._pattern = f"*/*{Path(suffix).suffix}"
        self.scans = 0  # how often the folder was listed to check the budget
        self._written = 0  # bytes this process wrote since its last check
        self._check_after = 0  # ... and how many more it may write before the next one

    def _file(self, image_id: str) -> Path:
        if not is_image_id(image_id):  # also what keeps a path from leaving the folder
            raise ValueError(f"{image_id!r} is not a valid image id for the {self.what}")
        return self.root / image_id[:2] / f"{image_id}{self.suffix}"

    def path(self, image_id: str) -> Path | None:
        """The cached thumbnail's path, or None when it is not cached."""
        try:
            f = self._file(image_id)
        except ValueError:
            return None
        return f if f.exists() else None

    def get(self, image_id: str) -> bytes | None:
        f = self.path(image_id)
        try:
            return f.read_bytes() if f else None
        except FileNotFoundError:  # evicted between the check and the read
            return None

    def put(self, image_id: str, data: bytes) -> Path:
        target = self._file(image_id)
        # A temporary name no other writer uses (process and thread), so no random names or
        # exclusive-create retries: a crawl writes one thumbnail per image.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            tmp.write_bytes(data)
        except FileNotFoundError:  # the first thumbnail of its folder
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        os.replace(tmp, target)
        self._written += len(data)
        if self._written >= self._check_after:
            self.evict()
        return target

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.root.glob(self._pattern))

    def evict(self) -> int:
        """Remove the oldest files until the cache fits its budget; returns files removed."""
        files = []
        for f in self.root.glob(self._pattern):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, f))
        self.scans += 1
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, f in sorted(files):
            if total <= self.max_bytes:
                break
            f.unlink(missing_ok=True)
            total -= size
            removed += 1
        # Room left, shared with the other writers; at least 1% of the budget, so a full
        # cache is not listed again after every write.
        self._written = 0
        self._check_after = max(self.max_bytes // 100, (self.max_bytes - total) // self.writers)
        return removed
