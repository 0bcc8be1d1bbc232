"""Local evidence (lookalike.localmatch) for the pairs the indexer judges, read view by view.

Views come from the view store the workers fill (lookalike.viewstore), one pair at a time,
so memory is bounded by a small cache of the most recent pictures' views and keypoints, not
by the collection: pairs arrive sorted by their first id, so a picture's keypoints are found
once for all its pairs in a row. A pair with either view missing is reported as unknown and
judged without local evidence.

Every build judges every candidate again, so what a build found is kept with its generation
(``local.npz``: per pair the evidence and the versions of the two views it came from, with the
names of the views' recipe and of the comparison) and the next build reuses it for the pairs
whose two views are unchanged: only pairs with a new or rewritten view are compared again,
and every pair once the recipe or the comparison (``localmatch.COMPARISON``) changes.

A build compares at most ``budget`` pairs afresh (``LOOKALIKE_INDEX_LOCAL_PAIRS_PER_BUILD``):
a collection's first build has a million pairs or more to compare, hours of work that would
hold back every other change to the index. The pairs with the newest views go first; the
rest are judged without local evidence for now, counted in the memo (``deferred``), and the
indexer builds again until none is left.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

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

# Gives the version of an image's view (it changes whenever the view is written), or None
# when there is none.
ViewVersion = Callable[[str], int | None]
# (first view's version, second's, inliers, score, layouts' distance, aligned colours' distance)
MemoRow = tuple[int, int, float, float, float, float]
# (first id, second id) -> what comparing their views found
Memo = Mapping[tuple[str, str], MemoRow]

# a view, its keypoints and its grey layout
Prepared = tuple[np.ndarray, localmatch.Features, np.ndarray] | None
MEMO_FILE = "local.npz"
# What a memo row holds besides the versions; a memo of another layout is not used.
MEMO_EVIDENCE = ("inliers", "score", "layout", "color")


class PairLocal:
    """``LocalPairs`` over a view source, with a bounded cache of prepared pictures."""

    def __init__(
        self,
        views: ViewSource,
        cached: int = CACHED_PICTURES,
        versions: ViewVersion | None = None,
        memo: Memo | None = None,
        budget: int | None = None,
    ) -> None:
        """``versions``: the views' versions, to reuse ``memo`` (what an earlier build
        found) for pairs whose views are unchanged and to record what this one finds
        (``found``); without it nothing is reused or recorded. ``budget``: the most pairs
        compared afresh, those with the newest views first (None: every pair)."""
        self.views = views
        self.cached = max(2, cached)
        self.versions = versions
        self.memo: Memo = memo or {}
        self.found: dict[tuple[str, str], MemoRow] = {}
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()
        self._matcher = localmatch.make_matcher(localmatch.Config())
        self.compared = 0  # pairs whose two views were both there
        self.reused = 0  # ... of which the evidence came from the memo
        self.budget = budget
        self.fresh = 0  # pairs whose views were compared here (not from the memo)
        self.deferred = 0  # pairs left for a later build by the budget

    def _picture(self, image_id: str) -> Prepared:
        if image_id in self._prepared:
            self._prepared.move_to_end(image_id)
            return self._prepared[image_id]
        try:
            picture = self.views(image_id)
            prepared = None if picture is None else _prepare(picture)
        except Exception as exc:  # an unreadable picture: its pairs are judged without it
            log.warning("no view of %s: %s: %s", image_id, type(exc).__name__, exc)
            prepared = None
        self._prepared[image_id] = prepared
        if len(self._prepared) > self.cached:
            self._prepared.popitem(last=False)
        return prepared

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> Local:
        out = Local.unknown(len(a))
        keys = [(str(x), str(y)) for x, y in zip(a, b, strict=True)]
        todo: list[int] = []
        versions: dict[int, tuple[int, int]] = {}
        for k, key in enumerate(keys):
            if self.versions is not None:
                va, vb = self.versions(key[0]), self.versions(key[1])
                if va is None or vb is None:
                    continue
                known = self.memo.get(key)
                if known is not None and known[:2] == (va, vb):
                    out.inliers[k], out.score[k], out.layout[k], out.color[k] = known[2:]
                    self.found[key] = known
                    self.compared += 1
                    self.reused += 1
                    continue
                versions[k] = (va, vb)
            todo.append(k)
        for k in self._within_budget(todo, versions):
            key = keys[k]
            pa, pb = self._picture(key[0]), self._picture(key[1])
            self.fresh += 1
            if pa is None or pb is None:
                continue
            try:
                ev = localmatch.compare_features(pa[0], pa[1], pb[0], pb[1], matcher=self._matcher)
            except Exception as exc:  # one odd picture must not stop the judging of the rest
                log.warning("local evidence of %s ~ %s failed: %s", *key, exc, exc_info=True)
                continue
            self.compared += 1
            out.inliers[k] = ev.inliers
            out.score[k] = ev.score
            out.layout[k] = localmatch.layout_distance(pa[2], pb[2])
            out.color[k] = ev.color
            if k in versions:
                self.found[key] = (
                    *versions[k],
                    float(ev.inliers),
                    float(ev.score),
                    float(out.layout[k]),
                    float(ev.color),
                )
        return out

    def _within_budget(self, todo: list[int], versions: Mapping[int, tuple[int, int]]) -> list[int]:
        """The pairs of ``todo`` the budget leaves to compare now: the newest views' first
        (a picture just crawled is the one its user is looking for), in their given order
        (sorted by first id: each picture's keypoints found once for its pairs in a row)."""
        if self.budget is None:
            return todo
        room = max(0, self.budget - self.fresh)
        if len(todo) <= room:
            return todo
        newest = sorted(todo, key=lambda k: -max(versions.get(k, (0, 0))))[:room]
        self.deferred += len(todo) - room
        return sorted(newest)


def _prepare(picture: np.ndarray) -> tuple[np.ndarray, localmatch.Features, np.ndarray]:
    return picture, localmatch.features(picture), localmatch.layout(picture)


def save_memo(folder: Path, memo: Memo, deferred: int = 0) -> None:
    """Keep what a build found beside its generation (written whole or not at all), and how
    many pairs it left for a later build (``deferred``)."""
    keys = sorted(memo)
    width = 2 + len(MEMO_EVIDENCE)
    rows = np.array([memo[k] for k in keys], np.float64).reshape(len(keys), width)
    tmp = folder / f".{MEMO_FILE}.part"
    with tmp.open("wb") as f:
        np.savez(
            f,
            recipe=np.array(localmatch.LOCAL_RECIPE),
            comparison=np.array(localmatch.COMPARISON),
            columns=np.array(MEMO_EVIDENCE),
            a=np.array([k[0] for k in keys], dtype=str),
            b=np.array([k[1] for k in keys], dtype=str),
            versions=np.array([memo[k][:2] for k in keys], np.int64).reshape(len(keys), 2),
            evidence=rows[:, 2:],
            deferred=np.array(deferred, np.int64),
        )
    os.replace(tmp, folder / MEMO_FILE)


def deferred_pairs(folder: Path | None) -> int:
    """How many pairs the build of ``folder`` left to compare (0: none, or no memo)."""
    if folder is None:
        return 0
    try:
        with np.load(folder / MEMO_FILE, allow_pickle=False) as z:
            return int(z["deferred"]) if "deferred" in z.files else 0
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cannot read %s (%s)", folder / MEMO_FILE, exc)
        return 0


def load_memo(folder: Path | None) -> dict[tuple[str, str], MemoRow]:
    """What the build of ``folder`` found (empty: none, another recipe's, comparison's or
    layout's, or unreadable)."""
    if folder is None:
        return {}
    try:
        with np.load(folder / MEMO_FILE, allow_pickle=False) as z:
            if str(z["recipe"]) != localmatch.LOCAL_RECIPE:
                return {}
            if "comparison" not in z or str(z["comparison"]) != localmatch.COMPARISON:
                return {}
            if "columns" not in z or tuple(z["columns"].tolist()) != MEMO_EVIDENCE:
                return {}
            a, b = z["a"].tolist(), z["b"].tolist()
            versions, evidence = z["versions"].tolist(), z["evidence"].tolist()
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cannot read %s (%s): every pair is compared again", folder / MEMO_FILE, exc)
        return {}
    return {
        (x, y): (int(v[0]), int(v[1]), float(e[0]), float(e[1]), float(e[2]), float(e[3]))
        for x, y, v, e in zip(a, b, versions, evidence, strict=True)
    }


# Most candidates of one search whose pictures are compared with the query's (the ones
# local evidence could change, those with the lowest weighted distance first): each costs
# reading a view and finding its keypoints (~5 ms).
QUERY_MAX = 32


class QueryLocal:
    """The local evidence of one query picture against stored images, for the one ranking:
    ``__call__(ids)`` compares the query's view with each image's. The query's view
    (``query_view``: made or read when first needed, None: it has none) and keypoints are
    made only once a candidate has a view, so a search among images without views never
    loads OpenCV."""

    def __init__(self, query_view: Callable[[], np.ndarray | None], views: ViewSource) -> None:
        self.query_view = query_view
        self.views = views
        self._query: Prepared | bool = False  # False: not made yet
        self._matcher: object = None

    def _prepared_query(self) -> Prepared:
        if self._query is False:
            view = self.query_view()
            self._query = None if view is None else _prepare(view)
            self._matcher = localmatch.make_matcher(localmatch.Config())
        return self._query if not isinstance(self._query, bool) else None

    def __call__(self, ids: Sequence[str]) -> Local:
        out = Local.unknown(len(ids))
        for k, image_id in enumerate(ids):
            try:
                other = self.views(image_id)
                if other is None:
                    continue
                query = self._prepared_query()
                if query is None:
                    break
                ev = localmatch.compare_features(
                    query[0],
                    query[1],
                    other,
                    localmatch.features(other),
                    matcher=self._matcher,
                )
                layout = localmatch.layout_distance(query[2], localmatch.layout(other))
            except Exception as exc:  # judged without it, like a missing view
                log.warning("local evidence against %s failed: %s", image_id, exc)
                continue
            out.inliers[k], out.score[k], out.layout[k] = ev.inliers, ev.score, layout
            out.color[k] = ev.color
        return out
