"""Local evidence (lookalike.localmatch) for the pairs the indexer judges, read view by view.

Views come from the view store the workers fill (lookalike.viewstore), one pair at a time,
so memory is bounded by a small cache of the most recent pictures' views and keypoints, not
by the collection: pairs arrive sorted by their first id, so a picture's keypoints are found
once for all its pairs in a row. A pair with either view missing is reported as unknown and
judged without local evidence.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from lookalike import localmatch
from services.indexer.verify import Local

log = logging.getLogger(__name__)

# A picture's view and keypoints (~100 KB + ~40 KB): this many are kept between pairs.
CACHED_PICTURES = 256

# Gives an image's verification view, or None when there is none.
ViewSource = Callable[[str], np.ndarray | None]
# Gives the local evidence of the pairs (a[k], b[k]) of image ids.
LocalPairs = Callable[[Sequence[str], Sequence[str]], Local]

Prepared = tuple[np.ndarray, localmatch.Features] | None


class PairLocal:
    """``LocalPairs`` over a view source, with a bounded cache of prepared pictures."""

    def __init__(self, views: ViewSource, cached: int = CACHED_PICTURES) -> None:
        self.views = views
        self.cached = max(2, cached)
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()
        self._matcher = localmatch.make_matcher(localmatch.Config())
        self.compared = 0  # pairs whose two views were both there

    def _picture(self, image_id: str) -> Prepared:
        if image_id in self._prepared:
            self._prepared.move_to_end(image_id)
            return self._prepared[image_id]
        try:
            picture = self.views(image_id)
        except Exception as exc:  # an unreadable picture: its pairs are judged without it
            log.warning("no view of %s: %s: %s", image_id, type(exc).__name__, exc)
            picture = None
        prepared = None if picture is None else (picture, localmatch.features(picture))
        self._prepared[image_id] = prepared
        if len(self._prepared) > self.cached:
            self._prepared.popitem(last=False)
        return prepared

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> Local:
        out = Local.unknown(len(a))
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            pa, pb = self._picture(str(x)), self._picture(str(y))
            if pa is None or pb is None:
                continue
            try:
                ev = localmatch.compare_features(pa[0], pa[1], pb[0], pb[1], matcher=self._matcher)
            except Exception as exc:  # one odd picture must not stop the judging of the rest
                log.warning("local evidence of %s ~ %s failed: %s", x, y, exc, exc_info=True)
                continue
            self.compared += 1
            out.inliers[k] = ev.inliers
            out.score[k] = ev.score
        return out
