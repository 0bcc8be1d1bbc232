"""Near-duplicates weighed by learned embeddings, end to end: the real graph server and Redis,
the real model (EfficientNet-Lite0 through onnxruntime), the indexer taking the vectors in
from the stream as it does from the workers, and the API as a real server.

Each stored picture is what a crawl keeps of a catalogue picture: its thumbnail (fitted in
400x400, JPEG), hashed and embedded. The same graph is indexed twice, by hashes alone and
then with the vectors, so each test shows what the embedding decided: a rotated or cropped
copy the hashes miss is a near-duplicate, flat pictures stay apart however alike their
embeddings, A~B and B~C with A unlike C (by embedding) do not make one group, and a search
for an exact copy ranks the original first, its cosine among the reasons."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import redis
from PIL import Image

from lookalike import vectors as stream
from lookalike.graph import GraphStore
from lookalike.hashing import algorithm_version, decode_image, hash_image
from lookalike.settings import Settings
from services.indexer.service import Indexer, IndexerConfig
from services.indexer.verify import VerifyConfig
from services.replica import variants
from tests.indexer.test_core import _pictures
from tests.indexer.test_neardup_e2e import _flat_page, bits, masked_rows

from .conftest import ApiServer, own_graph

pytestmark = pytest.mark.timeout(900)

RULES = VerifyConfig()
# Copies the hashes miss (beyond MAX_WEIGHTED) that the embedding rule claims, for the sample
# pictures used here: rotated 10 degrees, 15% cut off the left side.
HARD_COPIES = {"rot10": (0, 1, 5), "crop15": (1, 4, 5)}


def _jpeg(picture: Image.Image) -> bytes:
    """The picture as the crawler receives it: fitted into 400x400, JPEG."""
    small = picture.convert("RGB")
    small.thumbnail((400, 400), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _hard_copy(picture: Image.Image, edit: str) -> Image.Image:
    rgb = picture.convert("RGB")
    if edit == "rot10":
        mean = tuple(int(x) for x in np.asarray(rgb).reshape(-1, 3).mean(axis=0))
        return rgb.rotate(10, resample=Image.Resampling.BICUBIC, fillcolor=mean)
    w, h = rgb.size
    return rgb.crop((round(w * 0.15), 0, w, h))


@dataclass
class World:
    local: Settings
    store: GraphStore
    thumbnails: dict[str, bytes]
    vectors: dict[str, np.ndarray]
    hashes_only: dict[str, dict]  # id -> what the hash-only build stored
    with_vectors: dict[str, dict]  # the same after the build with vectors


def _near(store: GraphStore, ids: list[str]) -> dict[str, dict]:
    out = {}
    for i in ids:
        rows = store.read("near_duplicates_of", id=i)
        out[i] = {
            "group": rows[0]["group"] if rows else None,
            "near": {r["id"]: r for r in rows if r["id"]},
        }
    return out


def _chain(model_dim: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    """A, B, C whose hashes are all close (a group of three by hashes alone) and whose
    embeddings say A~B and B~C (cosine 0.9) but A unlike C (0.62)."""
    rows = masked_rows({"chaina": bits(4, 0), "chainb": 0, "chainc": bits(4, 4)})
    rng = np.random.default_rng(5)
    axes = np.linalg.qr(rng.normal(size=(model_dim, 2)))[0].T.astype(np.float32)
    theta = np.arccos(0.9)
    vectors = {
        "chainb": axes[0],
        "chaina": np.cos(theta) * axes[0] + np.sin(theta) * axes[1],
        "chainc": np.cos(theta) * axes[0] - np.sin(theta) * axes[1],
    }
    return rows, vectors


@pytest.fixture(scope="module")
def world(settings: Settings, embedded: bool) -> Iterator[World]:
    embedder = stream.embedder(settings)
    if embedder is None:
        pytest.skip("embeddings are off (LOOKALIKE_EMBEDDINGS=0)")
    assert not isinstance(embedder, stream.ModelUnavailable), embedder
    pictures = _pictures()[:8]
    thumbnails: dict[str, bytes] = {}
    for i, picture in enumerate(pictures):
        thumbnails[f"zzoriginal{i}"] = _jpeg(picture)
    for edit, which in HARD_COPIES.items():
        for i in which:
            thumbnails[f"copy{edit}x{i}"] = _jpeg(_hard_copy(pictures[i], edit))
    for edit in ("jpeg", "noise", "brightness"):  # easy copies that sort before the original
        edited = Image.open(io.BytesIO(variants.edited_bytes(pictures[2], edit)))
        thumbnails[f"aa{edit}2"] = _jpeg(edited)
    for i in range(6):
        thumbnails[f"page{i}"] = _jpeg(_flat_page(i))
    decoded = {i: decode_image(b) for i, b in thumbnails.items()}
    vectors = dict(zip(decoded, embedder.embed_many(list(decoded.values())), strict=True))
    chain_rows, chain_vectors = _chain(embedder.dim)
    vectors.update(chain_vectors)
    model = stream.current_model(settings)
    assert model == embedder.version

    with own_graph(settings, embedded) as (local, store):
        at = int(time.time() * 1000) - 60_000
        ids = [*decoded, *chain_vectors]
        store.upsert_images([{"id": i, "title": f"picture {i}", "fetched_at": at} for i in ids])
        hash_rows = [{"id": i, **hash_image(p).node_properties()} for i, p in decoded.items()]
        store.write(
            "set_hashes",
            [
                {
                    "hash_version": algorithm_version(),
                    "hashed_at": at,
                    "thumbnail": f"http://example.invalid/{r['id']}.jpg",
                    **r,
                }
                for r in [*hash_rows, *chain_rows]
            ],
        )
        config = IndexerConfig.from_settings(local, trees=3)
        Indexer(store, IndexerConfig(index_dir=config.index_dir, trees=3, model=None)).build_once(
            "hashes only"
        )
        hashes_only = _near(store, ids)
        # as the workers hand vectors over: to the stream first, then the graph's record
        client = redis.Redis.from_url(local.redis())
        stream.publish(client, [(i, model, at, v) for i, v in vectors.items()], maxlen=100_000)
        store.write(
            "set_embeddings",
            [
                {"id": i, "model": model, "at": at, "thumbnail": f"http://example.invalid/{i}.jpg"}
                for i in ids
            ],
        )
        report = Indexer(store, config, client).build_once("with vectors")
        assert report.vectors >= len(ids)
        # a vector embedded since the build, of an image the index has no hashes of (yet):
        # searchable by embedding, never a candidate of the one ranking (its id sorts after
        # every hashed one: looked up among the hashes, it would fall off the end)
        unhashed = stream.publish(
            client, [("zzznohash", model, at, vectors["zzoriginal2"])], maxlen=100_000
        )
        try:
            yield World(local, store, thumbnails, vectors, hashes_only, _near(store, ids))
        finally:
            stream.delete(client, unhashed)


@pytest.fixture(scope="module")
def api(world: World, servers) -> ApiServer:
    return servers(world.local)


def test_rotated_and_cropped_copies_are_near_duplicates_thanks_to_the_embedding(world, api):
    for edit, which in HARD_COPIES.items():
        for i in which:
            copy, original = f"copy{edit}x{i}", f"zzoriginal{i}"
            assert original not in world.hashes_only[copy]["near"]  # the hashes miss it ...
            stored = world.with_vectors[copy]["near"][original]  # ... the embedding does not
            assert stored["weighted"] > RULES.max_weighted
            assert stored["cosine"] == pytest.approx(
                float(world.vectors[copy] @ world.vectors[original]), abs=1e-3
            )
            assert stored["cosine"] >= RULES.min_cosine
            r = api.get(f"/images/{copy}/duplicates?k=3")
            assert r.status_code == 200, r.text
            first = r.json()["matches"][0]
            assert first["id"] == original and first["match"]
            assert first["cosine"] == pytest.approx(stored["cosine"], abs=1e-3)
            assert any(
                w.startswith("embedding cosine") and f">= {RULES.min_cosine:g}" in w
                for w in first["why"]
            )


def test_flat_pictures_do_not_match_however_alike_their_embeddings(world):
    pages = [f"page{i}" for i in range(6)]
    cosines = [
        float(world.vectors[a] @ world.vectors[b])
        for n, a in enumerate(pages)
        for b in pages[n + 1 :]
    ]
    assert max(cosines) >= RULES.min_cosine  # the embeddings alone would call them copies
    for page in pages:
        assert world.with_vectors[page]["near"] == {}
        assert world.with_vectors[page]["group"] is None


def test_a_like_b_like_c_with_a_unlike_c_is_not_one_group(world):
    before = {n: world.hashes_only[f"chain{n.lower()}"]["group"] for n in "ABC"}
    assert before["A"] is not None and len(set(before.values())) == 1  # hashes: one group
    after = world.with_vectors
    assert set(after["chainb"]["near"]) == {"chaina", "chainc"}
    assert "chainc" not in after["chaina"]["near"]  # the embedding vetoes A~C ...
    groups = {n: after[f"chain{n.lower()}"]["group"] for n in "ABC"}
    assert groups["A"] != groups["C"]  # ... so the three never share a group
    assert list(groups.values()).count(None) == 1


def test_a_search_for_an_exact_copy_ranks_the_original_first(world, api):
    for image_id in ("zzoriginal2", "zzoriginal0", "copyrot10x1"):
        r = api.post(
            "/search",
            files={"image": ("query.jpg", world.thumbnails[image_id], "image/jpeg")},
            data={"k": "5"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        first = body["matches"][0]
        assert first["id"] == image_id and first["match"] and first["weighted"] == 0
        assert first["cosine"] == pytest.approx(1.0, abs=1e-3)
        assert any(w.startswith("embedding cosine 1.000") for w in first["why"])
        assert "zzznohash" not in {m["id"] for m in body["matches"]}
    # the copies of original2 whose hashes equal its own come after it, by their cosines
    r = api.post(
        "/search",
        files={"image": ("q.jpg", world.thumbnails["zzoriginal2"], "image/jpeg")},
        data={"k": "5"},
    )
    assert {m["id"] for m in r.json()["embedding"][:2]} == {"zzoriginal2", "zzznohash"}
    matches = r.json()["matches"]
    copies = [m for m in matches[1:] if m["id"].startswith("aa")]
    assert copies and all(m["match"] for m in copies)
