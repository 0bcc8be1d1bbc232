"""The verification views on disk (lookalike.viewstore) and the worker step that writes them:
keyed by image and recipe, within a budget, and nothing lost when a view cannot be written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from lookalike import localmatch as lm
from lookalike.localmatch import LOCAL_RECIPE, SIDE, view
from lookalike.settings import load_settings
from lookalike.viewstore import ViewStore
from tests.indexer.test_core import _pictures
from workers.pipeline import HASH_ONLY, examine


def test_a_view_round_trips_under_its_image_and_recipe(tmp_path: Path) -> None:
    store = ViewStore(tmp_path, max_bytes=10_000_000)
    picture = _pictures()[0]
    assert store.save("img1", picture)
    got = store.get("img1")
    assert got is not None and np.array_equal(got, view(picture))
    assert store.files.path("img1") == tmp_path / "im" / f"img1.{LOCAL_RECIPE}.png"
    assert store.get("img2") is None
    with pytest.raises(ValueError, match="not a valid image id for the view store"):
        store.put("../escape", view(picture))
    with pytest.raises(ValueError, match="three-plane uint8 picture"):
        store.put("img3", np.zeros((4, 4), np.uint8))
    assert store.files.get("img3") is None and store.chroma.get("img3") is None


def test_a_grey_plane_without_its_chroma_is_read_alone_until_both_are_written(
    tmp_path: Path, caplog
) -> None:
    """Views written before colours were kept (the same grey recipe), or whose chroma was
    evicted or damaged, are compared without colour; the next crawl writes both."""
    store = ViewStore(tmp_path, max_bytes=10_000_000)
    picture = _pictures()[0]
    grey_view = lm.grey(view(picture))
    store.files.put("img1", _png(grey_view))
    before = store.files.path("img1")
    assert before is not None
    os.utime(before, (5, 5))
    got = store.get("img1")
    assert got is not None and np.array_equal(got, grey_view)  # compared without colour
    assert store.version("img1") == 5 * 10**9
    store.save("img1", picture)
    got = store.get("img1")
    assert got is not None and np.array_equal(got, view(picture))
    assert store.version("img1") != 5 * 10**9  # a new version: its pairs are compared again
    assert store.chroma.path("img1") == tmp_path / "im" / f"img1.{lm.CHROMA_RECIPE}.png"
    store.chroma.put("img1", _png(np.zeros((6, 4), np.uint8)))  # blocks of another picture
    with caplog.at_level(logging.WARNING, logger="lookalike.viewstore"):
        got = store.get("img1")
    assert got is not None and np.array_equal(got, grey_view)
    assert "does not fit its view" in caplog.text


def test_chroma_of_an_earlier_recipe_is_read_with_its_own_blocks_until_rewritten(
    tmp_path: Path,
) -> None:
    """Views written with coarser chroma blocks keep their colours (read at their own block
    size) until the view is written again, which the current recipe then serves."""
    store = ViewStore(tmp_path, max_bytes=10_000_000)
    picture = _pictures()[0]
    current = view(picture)
    store.files.put("img1", _png(lm.grey(current)))
    (recipe, block), *_ = lm.EARLIER_CHROMA.items()
    assert block != lm.CHROMA_BLOCK
    coarse = np.ascontiguousarray(current[::block, ::block, 1:])
    old = tmp_path / "im" / f"img1.{recipe}.png"
    old.write_bytes(_png(np.vstack([coarse[..., 0], coarse[..., 1]])))
    got = store.get("img1")
    assert got is not None and np.array_equal(got, lm.with_chroma(lm.grey(current), coarse, block))
    assert not np.array_equal(got, current)  # coarser than the current recipe's colours
    store.save("img1", picture)
    got = store.get("img1")
    assert got is not None and np.array_equal(got, current)


def test_views_of_another_recipe_are_not_read_and_are_evicted_first(tmp_path: Path) -> None:
    store = ViewStore(tmp_path, max_bytes=10**9)
    old = tmp_path / "im" / "img0.grey160-area-0.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x" * 100_000)
    os.utime(old, (1, 1))  # written long ago
    assert store.get("img0") is None
    for k, picture in enumerate(_pictures()[:3], start=1):
        store.save(f"img{k}", picture)
        for files in (store.files, store.chroma):  # a view's two files, written together
            os.utime(files.path(f"img{k}"), (1000 + k, 1000 + k))
    sizes = [
        sum(files.path(f"img{k}").stat().st_size for files in (store.files, store.chroma))
        for k in (1, 2, 3)
    ]
    # room for the two most recent views only
    full = ViewStore(tmp_path, max_bytes=sizes[1] + sizes[2], writers=1)
    assert full.files.evict() == 3  # the old recipe's file, then the oldest view's two
    assert not old.exists()
    assert [full.get(f"img{k}") is not None for k in (1, 2, 3)] == [False, True, True]


def test_a_damaged_view_is_judged_as_missing(tmp_path: Path, caplog) -> None:
    store = ViewStore(tmp_path, max_bytes=10_000_000)
    store.files.put("img1", b"not a picture")
    store.files.put("img2", _png(np.zeros((3, 4, 3), np.uint8)))  # a colour picture
    with caplog.at_level(logging.WARNING, logger="lookalike.viewstore"):
        assert store.get("img1") is None
        assert store.get("img2") is None
    assert "unreadable" in caplog.text and "not a grey picture" in caplog.text


def _png(array: np.ndarray) -> bytes:
    import cv2

    ok, png = cv2.imencode(".png", array)
    assert ok
    return png.tobytes()


def test_the_worker_leaves_the_view_of_the_thumbnail_it_hashes(tmp_path: Path) -> None:
    store = ViewStore(tmp_path / "views", max_bytes=10_000_000)
    picture = _pictures()[1]
    thumb = examine(
        picture, "img7", "http://x/info.json", want=HASH_ONLY, embedder=None, views=store
    )
    assert thumb.hashes is not None
    got = store.get("img7")
    assert got is not None and max(got.shape) == SIDE


def test_a_view_that_cannot_be_written_loses_nothing(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "views"
    blocked.write_text("a file where the folder should be")
    store = ViewStore(blocked, max_bytes=10_000_000)
    with caplog.at_level(logging.WARNING, logger="lookalike.viewstore"):
        thumb = examine(
            _pictures()[1], "img7", "http://x/info.json", want=HASH_ONLY, embedder=None, views=store
        )
    assert thumb.hashes is not None  # hashed all the same
    assert "view of img7 not stored" in caplog.text
    assert store.get("img7") is None


def test_the_store_lives_in_the_state_folder_every_service_mounts(tmp_path: Path) -> None:
    settings = load_settings({"LOOKALIKE_STATE_DIR": str(tmp_path)})
    assert settings.view_dir == tmp_path / "views"
    assert settings.view_store_mb > 0
    assert load_settings({"LOOKALIKE_VIEW_STORE_MB": "0"}).view_store_mb == 0


def test_the_default_budget_keeps_a_whole_collections_views() -> None:
    """A 250,000-image collection (the Wellcome catalogue's 150-200k with room) at the ~45 KB
    a PNG view takes (bench/bench_views.py; bench/README.md, "views"), with some to spare:
    no view evicted, no pair judged without local evidence for want of disk."""
    budget = load_settings({}).view_store_mb * 1_000_000
    assert budget >= 1.2 * 250_000 * 45_000
