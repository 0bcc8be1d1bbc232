"""Collection builders: stable ids, inferred numbers, planted families, scale mode, bad input."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, ImageOps

from services.replica.builder import build_collection
from services.replica.collection import Collection, CollectionError
from services.replica.scale import build_scale_collection
from services.replica.server import run_replica
from services.replica.variants import EDITS


def _write_pictures(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (300, 200), (12, 34, 56)).save(folder / "solid.png")
    rng = np.random.default_rng(0)
    for k in range(6):
        pixels = rng.integers(0, 255, (60 + 10 * k, 90, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"noise{k}.jpg", quality=90)


def test_ids_are_stable_across_builds_and_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_pictures(src)
    a = Collection.load(build_collection(tmp_path / "a", src=src))
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in src.iterdir():  # same content, other names and mtimes
        (copy / f"renamed-{f.name}").write_bytes(f.read_bytes())
    b = Collection.load(build_collection(tmp_path / "b", src=copy))
    assert a.ids == b.ids and len(a.ids) == 7
    assert all(len(i) == 8 and i.isalnum() and i == i.lower() for i in a.ids)
    assert a.similar_map() == b.similar_map()


def test_rebuild_with_same_inputs_is_skipped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_pictures(src)
    out = build_collection(tmp_path / "c", src=src)
    before = (out / "manifest.json").stat().st_mtime_ns
    build_collection(out, src=src)
    assert (out / "manifest.json").stat().st_mtime_ns == before
    build_collection(out, src=src, families=1, variants_per_family=2)  # options changed
    assert (out / "manifest.json").stat().st_mtime_ns != before
    assert len(Collection.load(out)) == 9


def test_aspect_ratio_and_average_colour_of_a_known_image(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_pictures(src)
    coll = Collection.load(
        build_collection(
            tmp_path / "c",
            src=src,
            metadata={
                "solid.png": {
                    "title": "A solid plate",
                    "contributors": ["Ann Example"],
                    "year": 1850,
                    "genres": ["Lithographs"],
                    "subjects": ["Colour"],
                    "license": "cc-by",
                }
            },
        )
    )
    [solid] = [i for i in coll.ids if coll.document(i)["source"].get("title") == "A solid plate"]
    doc = coll.document(solid)
    assert doc["aspectRatio"] == 1.5
    assert doc["averageColor"] == "#0c2238"
    assert doc["thumbnail"]["license"]["id"] == "cc-by"
    assert doc["source"]["contributors"][0]["agent"]["label"] == "Ann Example"
    assert coll.record(solid)["filterable"]["source.production.dates.range.from"] == [
        -3786825600000
    ]
    # A noise picture, checked against an independent computation of the inferrers' recipe.
    noise = next(i for i in coll.ids if i != solid)
    with Image.open(coll.path / coll.record(noise)["file"]) as im:
        w, h = im.size
        small = (
            im.convert("RGB")
            .resize((100, 100), Image.Resampling.BILINEAR)
            .resize((50, 50), Image.Resampling.NEAREST)
        )
    mean = np.asarray(small, dtype=float).reshape(-1, 3).mean(axis=0)
    got = coll.document(noise)
    assert got["aspectRatio"] == pytest.approx(w / h, abs=1e-6)
    rgb = [int(got["averageColor"][k : k + 2], 16) for k in (1, 3, 5)]
    assert np.abs(np.array(rgb) - mean).max() <= 1.5
    # Unit feature vectors and palette embeddings.
    for image_id in coll.ids:
        assert np.linalg.norm(coll.vector(image_id)) == pytest.approx(1, abs=1e-5)
        assert np.linalg.norm(coll.palette(image_id)) == pytest.approx(1, abs=1e-2)


def test_demo_ground_truth_is_consistent(demo: Collection) -> None:
    truth = json.loads((demo.path / "ground_truth.json").read_text())
    families = truth["families"]
    assert len(families) == 20
    variant_ids = [v["id"] for f in families for v in f["variants"]]
    assert len(variant_ids) == 60 == len(set(variant_ids))
    assert {v["transform"] for f in families for v in f["variants"]} == set(EDITS)
    originals = {f["original"] for f in families}
    assert not originals & set(variant_ids)
    assert set(variant_ids) | originals <= set(demo.ids)
    assert len(demo) == 174 + 60
    for f in families:
        original = demo.document(f["original"])
        transforms = [v["transform"] for v in f["variants"]]
        assert len(set(transforms)) == len(transforms)
        for v in f["variants"]:
            doc = demo.document(v["id"])
            assert doc["source"] == original["source"]  # a re-scan of the same plate
    # Near-duplicates are what the similarity lists find first: most variants list their
    # original or a sibling among their five.
    hits = sum(
        bool(({f["original"]} | {w["id"] for w in f["variants"]}) & set(demo.similar_ids(v["id"])))
        for f in families
        for v in f["variants"]
    )
    assert hits >= 0.9 * len(variant_ids)


def _pixels(coll: Collection, image_id: str) -> np.ndarray:
    with Image.open(coll.path / coll.record(image_id)["file"]) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def test_variants_really_are_transformed_copies(demo: Collection) -> None:
    truth = demo.ground_truth
    seen = set()
    for family in truth["families"]:
        original = _pixels(demo, family["original"])
        oh, ow, _ = original.shape
        for v in family["variants"]:
            t, copy = v["transform"], _pixels(demo, v["id"])
            seen.add(t)
            if t == "resize":
                assert copy.shape[:2] == (oh // 2, ow // 2)
            elif t == "crop_center":
                dy, dx = round(oh * 0.05), round(ow * 0.05)
                assert copy.shape[:2] == (oh - 2 * dy, ow - 2 * dx)
                assert np.abs(copy - original[dy : oh - dy, dx : ow - dx]).mean() < 6
            elif t == "crop_side":
                dx = round(ow * 0.10)
                assert np.abs(copy - original[:, dx:]).mean() < 6
            elif t == "border":
                b = round(0.05 * max(oh, ow))
                assert copy.shape[:2] == (oh + 2 * b, ow + 2 * b)
                assert copy[: b - 2].min() > 230 and copy[:, : b - 2].min() > 230
                assert np.abs(copy[b : b + oh, b : b + ow] - original).mean() < 6
            elif t == "mirror":
                assert copy.shape == original.shape
                assert np.abs(copy - original[:, ::-1]).mean() < 6
                assert np.abs(copy - original).mean() > np.abs(copy - original[:, ::-1]).mean()
            elif t == "brightness":
                assert copy.shape == original.shape and copy.mean() > original.mean() + 3
            elif t == "grayscale":
                assert copy.shape == original.shape
                assert np.abs(copy - copy.mean(axis=2, keepdims=True)).max() < 6
            elif t in ("jpeg", "noise", "text"):
                assert copy.shape == original.shape
                assert 0 < np.abs(copy - original).mean() < 20
                if t == "jpeg":
                    orig_bytes = (demo.path / demo.record(family["original"])["file"]).stat()
                    size = (demo.path / demo.record(v["id"])["file"]).stat().st_size
                    assert size < orig_bytes.st_size
            elif t == "rotate":
                assert copy.shape == original.shape
                assert np.abs(copy - original).mean() > 1
                assert (
                    np.abs(copy - original).mean()
                    < np.abs(
                        copy
                        - np.asarray(
                            ImageOps.flip(Image.fromarray(original.astype(np.uint8))),
                            dtype=np.float64,
                        )
                    ).mean()
                )
            else:
                raise AssertionError(f"no check for the edit {t!r}")
    assert seen == set(EDITS)


def test_demo_metadata_comes_from_the_met_records(demo: Collection) -> None:
    titled = [demo.document(i) for i in demo.ids]
    assert all(d["source"].get("title") for d in titled)
    assert sum(bool(d["source"]["contributors"]) for d in titled) > 100
    assert any(d["source"]["subjects"] for d in titled)
    assert all(d["thumbnail"]["url"].startswith("http://replica.invalid/image/L") for d in titled)
    dated = [
        i for i in demo.ids if demo.record(i)["filterable"]["source.production.dates.range.from"]
    ]
    assert len(dated) > 100


def test_scale_collection_builds_and_serves_generated_thumbnails(scale_dir: Path) -> None:
    coll = Collection.load(scale_dir)
    assert len(coll) == 5000 and coll.manifest["kind"] == "scale"
    assert len(set(coll.ids)) == 5000
    # Similar lists are the exact top 5 by dot product of the stored vectors.
    mat = np.stack([coll.vector(i) for i in coll.ids])
    for image_id in coll.ids[::250]:
        scores = mat @ coll.vector(image_id)
        scores[coll.index_of(image_id)] = -np.inf
        want = np.argsort(-scores, kind="stable")[:5]
        got = [coll.index_of(j) for j in coll.similar_ids(image_id)]
        assert np.allclose(scores[got], scores[want], atol=1e-5)
    # A breadth-first walk from almost any seed reaches most of the collection.
    reach = [len(coll.bfs([seed], 1000)) / len(coll) for seed in coll.ids[::250]]
    assert sum(r > 0.9 for r in reach) >= 0.9 * len(reach)
    image_id = coll.ids[17]
    with run_replica(scale_dir) as rep:
        doc = requests.get(f"{rep.catalogue_url}/images/{image_id}", timeout=10).json()
        info = requests.get(doc["thumbnail"]["url"], timeout=10).json()
        url = doc["thumbnail"]["url"].replace("info.json", "full/!400,400/0/default.jpg")
        first = requests.get(url, timeout=10)
        again = requests.get(url, timeout=10)
        other = requests.get(
            rep.base_url + "/image/L" + coll.ids[18].upper() + "/full/!400,400/0/default.jpg",
            timeout=10,
        )
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    assert first.content == again.content != other.content
    picture = Image.open(io.BytesIO(first.content))
    picture.load()
    assert max(picture.size) == 400
    assert picture.size[0] / picture.size[1] == pytest.approx(doc["aspectRatio"], rel=0.02)
    assert info["width"] / info["height"] == pytest.approx(doc["aspectRatio"], rel=0.01)
    mean = np.asarray(picture.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    rgb = [int(doc["averageColor"][k : k + 2], 16) for k in (1, 3, 5)]
    assert np.abs(mean - rgb).max() < 12
    # Deterministic: the same N and seed give the same collection.
    assert build_scale_collection(scale_dir, 5000, seed=3) == scale_dir


def test_bad_inputs_fail_with_clear_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_pictures(src)
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(CollectionError, match=r"broken\.jpg is not a readable image"):
        build_collection(tmp_path / "out", src=src)
    (src / "broken.jpg").unlink()
    with pytest.raises(CollectionError, match=r"noise0\.jpg: unknown fields colour"):
        build_collection(tmp_path / "out", src=src, metadata={"noise0.jpg": {"colour": "red"}})
    with pytest.raises(CollectionError, match=r"license 'cc-what'"):
        build_collection(tmp_path / "out", src=src, metadata={"noise0.jpg": {"license": "cc-what"}})
    with pytest.raises(CollectionError, match="asked for 50 families"):
        build_collection(tmp_path / "out", src=src, families=50, variants_per_family=1)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    with pytest.raises(CollectionError, match="refusing to overwrite"):
        build_collection(precious, src=src)
    assert (precious / "thesis.txt").read_text() == "do not delete"
    with pytest.raises(CollectionError, match=r"no manifest\.json"):
        Collection.load(precious)
    # Nothing half-built was left behind.
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".replica-")]
