"""The replica answers what the real catalogue's own tests expect, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from services.replica.collection import Collection
from services.replica.server import run_replica

SIMILAR_SET = {"rnhd2myb", "sbmh5uyx", "axgvzf2c", "npdye6u5", "x5hpzzfs"}


def _expected(spec: Path) -> list[Path]:
    files = sorted((spec / "expected_responses").glob("include-*.json"))
    if not files:
        pytest.skip(f"no expected_responses in {spec}")
    return files


def test_expected_single_image_responses(replica_spec_dir: Path, docs_replica) -> None:
    files = [f for f in _expected(replica_spec_dir) if f.name.startswith("include-image-")]
    assert len(files) == 3
    for file in files:
        include = "source." + file.stem.removeprefix("include-image-")
        got = requests.get(
            f"{docs_replica.catalogue_url}/images/bwlh4xon", params={"include": include}, timeout=10
        )
        assert got.status_code == 200
        assert got.json() == json.loads(file.read_text()), file.name


def test_expected_list_responses(replica_spec_dir: Path, everything_dir: Path) -> None:
    # The catalogue's list tests index only images.everything, so the replica does too.
    files = [f for f in _expected(replica_spec_dir) if f.name.startswith("include-list-")]
    assert len(files) == 3
    with run_replica(everything_dir) as rep:
        for file in files:
            include = "source." + file.stem.removeprefix("include-list-")
            got = requests.get(
                f"{rep.catalogue_url}/images", params={"include": include}, timeout=10
            )
            assert got.status_code == 200
            assert got.json() == json.loads(file.read_text()), file.name


def test_similar_features_of_the_real_vectors(docs_replica) -> None:
    got = requests.get(
        f"{docs_replica.catalogue_url}/images/hqnskj6m",
        params={"include": "withSimilarFeatures"},
        timeout=10,
    ).json()
    similar = got["withSimilarFeatures"]
    assert {s["id"] for s in similar} == SIMILAR_SET
    # Best first, by the dot product of the stored 4096-d vectors, and never itself.
    coll = docs_replica.collection
    v = coll.vector("hqnskj6m")
    assert v is not None and v.shape == (4096,)
    scores = [float(coll.vector(s["id"]) @ v) for s in similar]
    assert scores == sorted(scores, reverse=True)
    assert all(0.8 < s < 0.9 for s in scores)
    # Nested images are full Image documents, trimmed like the parent, without their own list.
    for s in similar:
        assert s["type"] == "Image" and "thumbnail" in s and "withSimilarFeatures" not in s
        assert set(s["source"]) <= {"id", "title", "type"}


def test_similar_lists_are_the_exact_top5_of_each_dimension(docs_dir: Path) -> None:
    coll = Collection.load(docs_dir)
    ids = [i for i in coll.ids if coll.vector(i) is not None]
    mat = np.stack([coll.vector(i) for i in ids])
    scores = mat @ mat.T
    np.fill_diagonal(scores, -np.inf)
    for row, image_id in enumerate(ids):
        best = [ids[j] for j in np.argsort(-scores[row], kind="stable")[:5]]
        assert coll.similar_ids(image_id) == best


def test_image_without_vector_has_empty_similar_list(docs_replica) -> None:
    got = requests.get(
        f"{docs_replica.catalogue_url}/images/tc3wxz6j",
        params={"include": "withSimilarFeatures"},
        timeout=10,
    ).json()
    assert got["withSimilarFeatures"] == []
    assert got["aspectRatio"] == 1.0 and got["averageColor"] == "#ffffff"


def test_test_documents_are_served_unchanged(replica_spec_dir: Path, docs_replica) -> None:
    include = "source.contributors,source.genres,source.languages,source.subjects"
    for file in sorted((replica_spec_dir / "test_documents").glob("*.json"))[::7]:
        display = json.loads(file.read_text())["document"]["display"]
        got = requests.get(
            f"{docs_replica.catalogue_url}/images/{display['id']}",
            params={"include": include},
            timeout=10,
        ).json()
        assert got == display, file.name
        assert got["thumbnail"]["url"].startswith("https://iiif.wellcomecollection.org/")


def test_trimming_is_recursive_into_similar_images(docs_replica) -> None:
    url = f"{docs_replica.catalogue_url}/images/hqnskj6m"
    bare = requests.get(url, params={"include": "withSimilarFeatures"}, timeout=10).json()
    full = requests.get(
        url, params={"include": "withSimilarFeatures,source.subjects,source.genres"}, timeout=10
    ).json()
    for doc in [bare, *bare["withSimilarFeatures"]]:
        assert "subjects" not in doc["source"] and "genres" not in doc["source"]
    for doc in [full, *full["withSimilarFeatures"]]:
        assert isinstance(doc["source"]["subjects"], list)
        assert isinstance(doc["source"]["genres"], list)
        assert "contributors" not in doc["source"]


def test_snapshot_matches_the_expected_serialisation(replica_spec_dir: Path, docs_replica) -> None:
    import gzip

    got = requests.get(docs_replica.snapshot_url, timeout=30)
    assert got.status_code == 200
    lines = [json.loads(line) for line in gzip.decompress(got.content).splitlines()]
    assert [d["id"] for d in lines] == docs_replica.collection.ids
    for doc in lines:
        assert {"contributors", "genres", "languages", "subjects"} <= set(doc["source"])
        assert "withSimilarFeatures" not in doc
    # Same serialisation as the catalogue's own snapshot lines: all four source lists.
    expected = replica_spec_dir / "snapshot" / "expected-snapshot-images.txt"
    if expected.exists():
        sample = json.loads(expected.read_text().splitlines()[0])
        assert set(sample["source"]) <= set(lines[0]["source"]) | {"title"}
