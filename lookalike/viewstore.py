"""The verification views of the crawled images on disk: the workers write them from the
thumbnails they decode, the index sidecar reads them to judge near-duplicate pairs.

The indexer never sees pixels otherwise (hashes come through the graph, vectors through
Redis), and local evidence (lookalike.localmatch) needs both pictures of a pair. One file
per image and recipe (``<id>.<LOCAL_RECIPE>.png``: the view's grey and chroma planes as
one three-channel PNG, losslessly, for a few milliseconds to write and one to read), in a
folder of the state directory every service mounts; written atomically and kept within a
byte budget like the thumbnail cache (the least recently written go first, and views of an
older recipe go first). A grey view written before colour was kept
(``localmatch.GREY_RECIPE``) is still read where an image has no newer one, and compared
without colour until the image's thumbnail is fetched again. A view missing (never written,
evicted, unreadable) only means the pair is judged without local evidence.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.localmatch import GREY_RECIPE, LOCAL_RECIPE, view
from lookalike.thumbcache import ThumbnailCache

log = logging.getLogger(__name__)


class ViewStore:
    def __init__(self, root: Path, max_bytes: int, writers: int = 8) -> None:
        self.files = ThumbnailCache(
            root, max_bytes, writers, suffix=f".{LOCAL_RECIPE}.png", what="view store"
        )
        # read only: never written again, evicted first by the budget above
        self.grey = ThumbnailCache(root, 0, suffix=f".{GREY_RECIPE}.png", what="grey views")

    def put(self, image_id: str, picture: np.ndarray) -> None:
        import cv2

        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(
                f"a view is a three-plane uint8 picture, not {picture.dtype} {picture.shape}"
            )
        # Level 3 of 9: nearly the size of the highest levels, in a fraction of their time.
        ok, png = cv2.imencode(".png", picture, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise ValueError(f"the view of {image_id} could not be encoded")
        self.files.put(image_id, png.tobytes())

    def get(self, image_id: str) -> np.ndarray | None:
        """The image's view by this store's recipe (three planes), else its grey view of
        the recipe before (two dimensions), else None (not there, or unreadable: a damaged
        file is logged and judged as missing)."""
        import cv2

        planes = 3
        data = self.files.get(image_id)
        if data is None:
            data, planes = self.grey.get(image_id), 1
        if data is None:
            return None
        out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if out is None:
            log.warning("view of %s is unreadable: judged without it", image_id)
            return None
        if out.dtype != np.uint8 or (out.shape[2] if out.ndim == 3 else 1) != planes:
            log.warning("view of %s is not a view's picture: judged without it", image_id)
            return None
        return out

    def version(self, image_id: str) -> int | None:
        """When the image's view was last written (ns), or None when there is none: a view
        rewritten from a new thumbnail has a new version."""
        f = self.files.path(image_id) or self.grey.path(image_id)
        try:
            return f.stat().st_mtime_ns if f is not None else None
        except FileNotFoundError:  # evicted between the check and the stat
            return None

    def save(self, image_id: str, picture: Image.Image) -> bool:
        """Make and store the view of a decoded thumbnail. Never raises: a view that cannot
        be written is logged, and the image's pairs are judged without local evidence."""
        try:
            self.put(image_id, view(picture))
        except Exception as exc:  # a full disk or a bad picture must not fail the crawl
            log.warning("view of %s not stored: %s: %s", image_id, type(exc).__name__, exc)
            return False
        return True
