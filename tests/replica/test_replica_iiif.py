"""The IIIF Image API 2 server: info.json, the request grammar, plain-text errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image


def _picture(resp: requests.Response) -> Image.Image:
    assert resp.status_code == 200, resp.text
    picture = Image.open(io.BytesIO(resp.content))
    picture.load()
    return picture


@pytest.fixture
def asset(demo_replica) -> tuple[str, str, dict]:
    coll = demo_replica.collection
    image_id = coll.ids[5]
    doc = requests.get(f"{demo_replica.catalogue_url}/images/{image_id}", timeout=10).json()
    info = requests.get(doc["thumbnail"]["url"], timeout=10).json()
    return image_id, doc["thumbnail"]["url"].removesuffix("/info.json"), info


def test_info_json(demo_replica, asset) -> None:
    image_id, base, info = asset
    record = demo_replica.collection.record(image_id)
    assert info["@context"] == "http://iiif.io/api/image/2/context.json"
    assert info["@id"] == base and info["protocol"] == "http://iiif.io/api/image"
    assert (info["width"], info["height"]) == (record["width"], record["height"])
    assert info["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    assert {"width", "height"} <= set(info["sizes"][0])


@pytest.mark.parametrize(
    ("size", "check"),
    [
        ("!400,400", lambda w, h, W, H: max(w, h) == 400 and abs(w / h - W / H) < 0.02),
        ("200,", lambda w, h, W, H: w == 200 and abs(h - round(H * 200 / W)) <= 1),
        (",150", lambda w, h, W, H: h == 150),
        ("full", lambda w, h, W, H: (w, h) == (W, H)),
        ("max", lambda w, h, W, H: (w, h) == (W, H)),
        ("120,80", lambda w, h, W, H: (w, h) == (120, 80)),
        ("pct:50", lambda w, h, W, H: abs(w - W / 2) <= 1 and abs(h - H / 2) <= 1),
        ("250%2C", lambda w, h, W, H: w == 250),  # the story mocks' URL-encoded comma
    ],
)
def test_sizes(asset, size, check) -> None:
    _, base, info = asset
    picture = _picture(requests.get(f"{base}/full/{size}/0/default.jpg", timeout=10))
    assert picture.format == "JPEG"
    assert check(*picture.size, info["width"], info["height"]), picture.size


def test_the_recipe_clients_use(demo_replica) -> None:
    coll = demo_replica.collection
    for image_id in coll.ids[:5]:
        doc = requests.get(f"{demo_replica.catalogue_url}/images/{image_id}", timeout=10).json()
        url = doc["thumbnail"]["url"].replace("info.json", "full/!400,400/0/default.jpg")
        assert url.startswith(f"http://{demo_replica.image_host}/image/")
        resp = requests.get(url, timeout=10)
        assert resp.content == coll.thumbnail_bytes(coll.asset_id(image_id), "!400,400")
        assert max(_picture(resp).size) == 400


def test_regions_rotation_quality_format(asset) -> None:
    _, base, info = asset
    w, h = info["width"], info["height"]
    full = np.asarray(_picture(requests.get(f"{base}/full/full/0/default.png", timeout=10)))
    crop = _picture(requests.get(f"{base}/10,20,100,50/full/0/default.png", timeout=10))
    assert crop.size == (100, 50)
    assert np.array_equal(np.asarray(crop), full[20:70, 10:110])
    assert _picture(requests.get(f"{base}/square/100,/0/default.jpg", timeout=10)).size == (
        100,
        100,
    )
    rotated = _picture(requests.get(f"{base}/full/full/90/default.png", timeout=10))
    assert rotated.size == (h, w)
    mirrored = np.asarray(_picture(requests.get(f"{base}/full/full/!0/default.png", timeout=10)))
    assert np.array_equal(mirrored, full[:, ::-1])
    assert _picture(requests.get(f"{base}/full/!50,50/0/gray.jpg", timeout=10)).mode == "L"
    assert (
        _picture(requests.get(f"{base}/pct:0,0,50,50/!50,50/0/default.webp", timeout=10)).format
        == "WEBP"
    )


@pytest.mark.parametrize(
    "tail",
    [
        "nonsense/full/0/default.jpg",
        "full/huge/0/default.jpg",
        "full/full/45x/default.jpg",
        "full/full/0/fancy.jpg",
        "full/full/0/default.bmp",
        "99999,0,10,10/full/0/default.jpg",
        "full/99999,99999/0/default.jpg",
    ],
)
def test_bad_requests_get_plain_400(asset, tail) -> None:
    _, base, _ = asset
    resp = requests.get(f"{base}/{tail}", timeout=10)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_unknown_assets_get_plain_404(demo_replica) -> None:
    for path in (
        "/image/LNOPE/info.json",
        "/image/LNOPE/full/!400,400/0/default.jpg",
        "/image/V0014401/info.json",
        "/thumbs/LNOPE/full/!200,200/0/default.jpg",
    ):
        resp = requests.get(demo_replica.base_url + path, timeout=10)
        assert resp.status_code == 404, path
        assert resp.headers["Content-Type"].startswith("text/plain")


def test_fast_thumbnail_service(demo_replica, asset) -> None:
    _, base, _ = asset
    thumbs = base.replace("/image/", "/thumbs/")
    assert (
        max(_picture(requests.get(f"{thumbs}/full/!200,200/0/default.jpg", timeout=10)).size) == 200
    )
