"""The Collection API tests and the crawler's references build on: lists, walks, changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import requests

from services.replica.collection import Collection, CollectionError
from services.replica.server import run_replica


def test_bfs_depths_follow_the_similar_lists(demo: Collection) -> None:
    seed = demo.ids[3]
    depths = demo.bfs([seed], 2)
    assert depths[seed] == 0
    level1 = set(demo.similar_ids(seed))
    assert {i for i, d in depths.items() if d == 1} == level1 - {seed}
    level2 = {j for i in level1 for j in demo.similar_ids(i)} - level1 - {seed}
    assert {i for i, d in depths.items() if d == 2} == level2
    # Unexpanded images are reached but their own lists are not followed.
    blocked = demo.bfs([seed], 2, unexpanded=level1)
    assert set(blocked) == {seed} | level1


def test_documents_rebase_urls_and_are_copies(demo: Collection) -> None:
    image_id = demo.ids[0]
    doc = demo.document(image_id, "http://example.test:8080")
    assert doc["thumbnail"]["url"] == (
        f"http://example.test:8080/image/{demo.asset_id(image_id)}/info.json"
    )
    doc["source"]["title"] = "changed"
    assert demo.document(image_id)["source"]["title"] != "changed"
    assert demo.image_for_asset(demo.asset_id(image_id)) == image_id
    assert demo.image_for_asset("LNOPE") is None


def test_with_changes_to_a_new_dir(demo_dir: Path, tmp_path: Path) -> None:
    original = Collection.load(demo_dir)
    a, b, c = original.ids[:3]
    removed = original.similar_ids(a)[0]
    changed = original.with_changes(tmp_path / "v2", similar={b: [c, a]}, remove=[removed])
    assert removed not in changed and len(changed) == len(original) - 1
    assert changed.similar_ids(b) == [c, a]
    # Every list that named the removed image was recomputed from the vectors that remain.
    for image_id in changed.ids:
        assert removed not in changed.similar_ids(image_id)
    listed_it = [i for i in original.ids if removed in original.similar_ids(i) and i != b]
    assert listed_it
    for image_id in listed_it:
        v = changed.vector(image_id)
        same_dim = [
            j
            for j in changed.ids
            if j != image_id
            and changed.vector(j) is not None
            and changed.vector(j).shape == v.shape
        ]
        scores = {j: float(changed.vector(j) @ v) for j in same_dim}
        best = sorted(same_dim, key=lambda j: (-scores[j], j))[:5]
        assert [scores[j] for j in changed.similar_ids(image_id)] == pytest.approx(
            [scores[j] for j in best], abs=1e-6
        )
    # Untouched lists stay as they were; the original directory is unchanged.
    untouched = [i for i in changed.ids if i not in listed_it and i != b]
    assert all(changed.similar_ids(i) == original.similar_ids(i) for i in untouched)
    assert Collection.load(demo_dir).similar_map() == original.similar_map()
    with run_replica(changed) as rep:
        gone = requests.get(f"{rep.catalogue_url}/images/{removed}", timeout=10)
        assert gone.status_code == 404
        body = requests.get(
            f"{rep.catalogue_url}/images/{b}", params={"include": "withSimilarFeatures"}, timeout=10
        ).json()
        assert [d["id"] for d in body["withSimilarFeatures"]] == [c, a]
        thumb = requests.get(f"{rep.base_url}/image/{changed.asset_id(a)}/info.json", timeout=10)
        assert thumb.status_code == 200


def test_with_changes_in_place_and_bad_changes(scale_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "scale"
    shutil.copytree(scale_dir, copy)
    coll = Collection.load(copy)
    victim, keeper = coll.ids[10], coll.ids[11]
    changed = coll.with_changes(remove=[victim], similar={keeper: []})
    assert changed.path == copy and victim not in Collection.load(copy)
    assert Collection.load(copy).similar_ids(keeper) == []
    # The generated pictures of the remaining images are unchanged.
    other = coll.ids[12]
    assert np.array_equal(changed.vector(other), coll.vector(other))
    assert changed.thumbnail_bytes(changed.asset_id(other), "!100,100") == coll.thumbnail_bytes(
        coll.asset_id(other), "!100,100"
    )
    with pytest.raises(CollectionError, match="unknown image ids: zzzzzzzz"):
        changed.with_changes(tmp_path / "x", remove=["zzzzzzzz"])
    with pytest.raises(CollectionError, match="similar list for"):
        changed.with_changes(tmp_path / "y", similar={other: [other]})
    with pytest.raises(CollectionError, match="not empty"):
        changed.with_changes(tmp_path, remove=[other])
