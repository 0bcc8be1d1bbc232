"""Near-duplicates and picture search through the real server and the indexer's real Annoy
index, checked against an exact hamming scan over the collection's hashes; upload limits."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.graph import GraphStore
from lookalike.hashing import HASH_KINDS, algorithm_version, hamming, hash_image
from lookalike.settings import Settings
from services.indexer.service import Indexer, IndexerConfig

from .data import Collection


@pytest.fixture(scope="module")
def indexed(known_graph: tuple[Settings, GraphStore]) -> Iterator[tuple[Settings, GraphStore]]:
    """The known collection with a published index generation (and near-duplicates written)."""
    local, store = known_graph
    Indexer(store, IndexerConfig.from_settings(local, trees=5)).build_once("test")
    yield local, store


@pytest.fixture(scope="module")
def search_api(indexed, servers):
    local, _ = indexed
    return servers(local)


def exact_nearest(
    col: Collection, kind: str, value: str, exclude: str | None = None
) -> list[tuple[int, str]]:
    """Every hashed image by exact hamming distance to ``value``, nearest first."""
    return sorted(
        (hamming(value, img[kind]), img["id"])
        for img in col.images
        if img.get(kind) and img["id"] != exclude
    )


def check_top_k(matches: list[dict], expected: list[tuple[int, str]], k: int) -> None:
    """The k nearest by exact scan: same distances; ids exact except ties at the boundary."""
    got = [(m["distance"], m["id"]) for m in matches]
    assert [d for d, _ in got] == [d for d, _ in expected[:k]]
    truth = dict((i, d) for d, i in expected)
    assert all(truth[i] == d for d, i in got)
    boundary = got[-1][0] if got else -1
    assert {i for d, i in expected if d < boundary} <= {i for _, i in got}


@pytest.mark.parametrize("kind", HASH_KINDS)
def test_duplicates_match_an_exact_scan(search_api, collection: Collection, kind: str) -> None:
    for image_id in ("c0i000", "c3i014", "c5dup"):
        r = search_api.get(f"/images/{image_id}/duplicates?kind={kind}&k=8")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["hash"] == collection.by_id(image_id)[kind]
        expected = exact_nearest(collection, kind, body["hash"], exclude=image_id)
        check_top_k(body["matches"], expected, 8)
        assert all(m["title"] == collection.by_id(m["id"])["title"] for m in body["matches"])


def test_planted_near_duplicates_are_found_and_grouped(search_api, collection) -> None:
    for original, copy in collection.near_pairs:
        body = search_api.get(f"/images/{original}/duplicates?kind=phash&k=1").json()
        assert body["matches"][0]["id"] == copy
        assert body["matches"][0]["distance"] == hamming(
            collection.by_id(original)["phash"], collection.by_id(copy)["phash"]
        )
        # The indexer grouped them (a group is named by its smallest id); the image endpoint
        # shows the group.
        group = {search_api.get(f"/images/{i}").json()["dup_group"] for i in (original, copy)}
        assert group == {min(original, copy)}


def test_one_ranking_puts_the_verified_copy_first_and_says_why(search_api, collection) -> None:
    for original, copy in collection.near_pairs:
        r = search_api.get(f"/images/{original}/duplicates?k=5")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] is None and body["mirror"] is True
        best = body["matches"][0]
        assert best["id"] == copy and best["match"] is True
        assert best["why"][0].startswith("weighted distance")
        truth = collection.by_id(copy)
        assert best["distances"] == {
            k: hamming(collection.by_id(original)[k], truth[k]) for k in HASH_KINDS
        }
        assert best["title"] == truth["title"]
        weighted = [m["weighted"] for m in body["matches"]]
        verified = [m["match"] for m in body["matches"]]
        assert verified == sorted(verified, reverse=True)  # verified ones first ...
        assert all(
            weighted[i] <= weighted[i + 1]
            for i in range(len(weighted) - 1)
            if verified[i] == verified[i + 1]
        )  # ... each part by weighted distance


def test_max_distance(search_api, collection: Collection) -> None:
    value = collection.by_id("c2i000")["dhash"]
    r = search_api.get("/images/c2i000/duplicates?kind=dhash&k=100&max_distance=14")
    within = [(d, i) for d, i in exact_nearest(collection, "dhash", value, "c2i000") if d <= 14]
    assert sorted((m["distance"], m["id"]) for m in r.json()["matches"]) == within[:100]


def test_duplicates_errors(search_api) -> None:
    r = search_api.get("/images/broken01/duplicates")
    assert r.status_code == 409 and "not_an_image" in r.json()["error"]["message"]
    assert search_api.get("/images/nothere1/duplicates").status_code == 404
    r = search_api.get("/images/c0i000/duplicates?kind=md5")
    assert r.status_code == 400 and "phash" in r.json()["error"]["message"]
    # One bound for every kind: beyond a hash's bits (colorhash: 56) means "any distance".
    r = search_api.get("/images/c0i000/duplicates?kind=colorhash&max_distance=65")
    assert r.status_code == 400 and "from 0 to 64" in r.json()["error"]["message"]
    r = search_api.get("/images/c0i000/duplicates?kind=colorhash&max_distance=59")
    assert r.status_code == 200 and r.json()["max_distance"] == 56


def picture(seed: int, size: int = 96) -> Image.Image:
    """A smooth random picture (perceptual hashes of pure noise are unstable)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_search_by_upload_matches_an_exact_scan(search_api, collection: Collection) -> None:
    pic = picture(3)
    hashes = hash_image(pic).as_dict()
    r = search_api.post(
        "/search",
        files={"image": ("p.png", png(pic), "image/png")},
        data={"kinds": "phash,ahash", "k": "5", "mirror": "false"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hashes"] == hashes
    assert len(body["matches"]) == 5 and all("why" in m for m in body["matches"])
    for kind in ("phash", "ahash"):
        check_top_k(body["results"][kind], exact_nearest(collection, kind, hashes[kind]), 5)


def test_a_new_mirrored_copy_is_found_at_once(search_api, indexed) -> None:
    """An image hashed after the index was built, whose picture is the mirror of the upload."""
    _, store = indexed
    pic = picture(8)
    flipped = hash_image(ImageOps.mirror(pic)).as_dict()
    store.upsert_images(
        [
            {
                "id": "mirror01",
                "title": "Flipped",
                **flipped,
                "hash_version": algorithm_version(),
                "hashed_at": int(time.time() * 1000),
            }
        ]
    )
    # The reader re-reads recent hashes at most once a second (delta_ttl): ask until then.
    deadline = time.monotonic() + 30
    while True:
        r = search_api.post(
            "/search",
            files={"image": ("p.png", png(pic), "image/png")},
            data={"kinds": "phash,dhash", "k": "3"},
        )
        best = {k: r.json()["results"][k][0] for k in ("phash", "dhash")}
        if best["phash"]["id"] == "mirror01" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for kind in ("phash", "dhash"):
        got = best[kind]
        assert (got["id"], got["distance"], got["mirrored"]) == ("mirror01", 0, True)


def test_upload_limits_and_bad_uploads(indexed, servers) -> None:
    local, _ = indexed
    small = servers(
        local, LOOKALIKE_API_MAX_UPLOAD_BYTES="20000", LOOKALIKE_API_MAX_UPLOAD_PIXELS="1000000"
    )
    noisy = Image.fromarray(
        np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    )
    big = png(noisy)
    assert 20000 < len(big) < 60000
    r = small.post("/search", files={"image": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "20000 bytes" in r.json()["error"]["message"]
    huge = png(Image.new("L", (1200, 1200)))  # tiny file, 1.44M pixels
    assert len(huge) < 20000
    r = small.post("/search", files={"image": ("huge.png", huge, "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["error"]["message"]
    r = small.post("/search", files={"image": ("x.png", b"not an image at all", "image/png")})
    assert r.status_code == 400 and "not a decodable image" in r.json()["error"]["message"]
    r = small.post("/search", files={"picture": ("p.png", png(picture(1)), "image/png")})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "image"
    r = small.post("/search", data=png(picture(1)), headers={"Content-Type": "image/png"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    r = small.post(
        "/search",
        files={"image": ("p.png", png(picture(1)), "image/png")},
        data={"kinds": "phash,sha1"},
    )
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "kinds"
    # Far over the body limit: refused before the body is read.
    r = small.post("/search", files={"image": ("b.bin", b"\0" * 2_000_000, "image/png")})
    assert r.status_code == 413 and "at most 20000 bytes" in r.json()["error"]["message"]
