"""The verification views of the crawled images on disk: the workers write them from the
thumbnails they decode, the index sidecar reads them to judge near-duplicate pairs.

The indexer never sees pixels otherwise (hashes come through the graph, vectors through
Redis), and local evidence (lookalike.localmatch) needs both pictures of a pair. Two files
per image and recipe, in a folder of the state directory every service mounts:
``<id>.<LOCAL_RECIPE>.png``, the grey plane, losslessly, in about half the bytes of the raw
pixels, for a few milliseconds to write and one to read; ``<id>.<CHROMA_RECIPE>.png``, the
chroma blocks (Cb above Cr, a grey PNG of about a third of the grey plane's bytes), written
first, so a view whose grey plane is there in a new version has its colours too. Written
atomically and kept within a byte budget like the thumbnail cache (the least recently written
go first, and views of an older recipe are never read again, so they go first). Chroma of an
earlier recipe (``localmatch.EARLIER_CHROMA``: coarser blocks) is read where the current one
is not there, until the view is written again. A grey plane without any chroma (written
before colours were kept, or its chroma evicted) is compared without colour; a view missing
(never written, evicted, unreadable) only means the pair is judged without local evidence.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.localmatch import (
    CHROMA_BLOCK,
    CHROMA_RECIPE,
    EARLIER_CHROMA,
    LOCAL_RECIPE,
    chroma_blocks,
    grey,
    view,
    with_chroma,
)
from lookalike.thumbcache import ThumbnailCache

log = logging.getLogger(__name__)


class ViewStore:
    def __init__(self, root: Path, max_bytes: int, writers: int = 8) -> None:
        self.files = ThumbnailCache(
            root, max_bytes, writers, suffix=f".{LOCAL_RECIPE}.png", what="view store"
        )
        # The same folder and budget: each cache's eviction counts every PNG in it.
        self.chroma = ThumbnailCache(
            root, max_bytes, writers, suffix=f".{CHROMA_RECIPE}.png", what="view store"
        )
        # read only, where self.chroma has nothing: (files, their blocks' side)
        self.earlier_chroma = [
            (ThumbnailCache(root, max_bytes, writers, f".{recipe}.png", "view store"), block)
            for recipe, block in EARLIER_CHROMA.items()
        ]

    def put(self, image_id: str, picture: np.ndarray) -> None:
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(
                f"a view is a three-plane uint8 picture, not {picture.dtype} {picture.shape}"
            )
        blocks = chroma_blocks(picture)
        self.chroma.put(image_id, _png(image_id, np.vstack([blocks[..., 0], blocks[..., 1]])))
        self.files.put(image_id, _png(image_id, grey(picture)))

    def get(self, image_id: str) -> np.ndarray | None:
        """The image's view by this store's recipes: three planes, or its grey plane alone
        when its chroma is not there (or unreadable); None when its grey plane is not there
        or unreadable (a damaged file is logged and judged as missing)."""
        plane = _grey_png(self.files.get(image_id), image_id, "view")
        if plane is None:
            return None
        data, block = self._chroma(image_id)
        packed = _grey_png(data, image_id, "chroma")
        if packed is None:
            return plane
        half = packed.shape[0] // 2
        try:
            return with_chroma(plane, np.dstack([packed[:half], packed[half:]]), block)
        except ValueError as exc:
            log.warning("chroma of %s does not fit its view (%s): judged without it", image_id, exc)
            return plane

    def _chroma(self, image_id: str) -> tuple[bytes | None, int]:
        """The image's chroma file, by this store's recipe or else an earlier one, and the
        side of its blocks."""
        for files, block in [(self.chroma, CHROMA_BLOCK), *self.earlier_chroma]:
            data = files.get(image_id)
            if data is not None:
                return data, block
        return None, CHROMA_BLOCK

    def version(self, image_id: str) -> int | None:
        """When the image's view was last written (ns), or None when there is none: a view
        rewritten from a new thumbnail has a new version."""
        f = self.files.path(image_id)
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


def _png(image_id: str, plane: np.ndarray) -> bytes:
    import cv2

    # Level 3 of 9: nearly the size of the highest levels, in a fraction of their time.
    ok, png = cv2.imencode(".png", plane, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"the view of {image_id} could not be encoded")
    return bytes(png.tobytes())


def _grey_png(data: bytes | None, image_id: str, what: str) -> np.ndarray | None:
    import cv2

    if data is None:
        return None
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if out is None:
        log.warning("%s of %s is unreadable: judged without it", what, image_id)
        return None
    if out.dtype != np.uint8 or out.ndim != 2:
        log.warning("%s of %s is not a grey picture: judged without it", what, image_id)
        return None
    return np.asarray(out)
