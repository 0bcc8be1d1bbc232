"""A bounded on-disk cache of thumbnails, so pictures of the graph need no second download.

Files are written atomically (temp file + rename) because workers, the API and the report
read and write the same folder from different processes. When the folder grows past its
byte budget, the least recently written files go first.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ThumbnailCache:
    def __init__(self, root: Path, max_bytes: int, check_every: int = 200) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.check_every = check_every
        self._puts = 0

    def _file(self, image_id: str) -> Path:
        if not _ID.match(image_id):
            raise ValueError(f"{image_id!r} is not a valid image id for the thumbnail cache")
        return self.root / image_id[:2] / f"{image_id}.jpg"

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
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
        self._puts += 1
        if self._puts % self.check_every == 0:
            self.evict()
        return target

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.root.glob("*/*.jpg"))

    def evict(self) -> int:
        """Remove the oldest files until the cache fits its budget; returns files removed."""
        files = []
        for f in self.root.glob("*/*.jpg"):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, f in sorted(files):
            if total <= self.max_bytes:
                break
            f.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed
