"""The embedder on real pictures: shape, normalisation, determinism, batches, processes."""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from lookalike.embedding import preprocess
from lookalike.embedding.embedder import Embedder, shared_embedder
from lookalike.hashing import decode_image, hash_image
from lookalike.settings import Settings
from services.replica.edits import crawler_thumbnail, paintings


@pytest.fixture(scope="module")
def pictures() -> list[Image.Image]:
    return [crawler_thumbnail(p) for p in paintings("tuning")[:6]]


def test_one_unit_float32_vector_per_picture(
    embedder: Embedder, pictures: list[Image.Image]
) -> None:
    vectors = embedder.embed_many(pictures)
    assert vectors.shape == (len(pictures), 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors >= 0).all()  # pooled ReLU6 features: cosines lie in [0, 1]
    single = embedder.embed(pictures[0])
    assert single.shape == (1280,) and single.dtype == np.float32
    assert np.allclose(single, vectors[0], atol=1e-5)
    assert embedder.embed_many([]).shape == (0, 1280)


def test_deterministic(embedder: Embedder, pictures: list[Image.Image]) -> None:
    assert np.array_equal(embedder.embed(pictures[1]), embedder.embed(pictures[1]))


def test_different_paintings_differ(embedder: Embedder, pictures: list[Image.Image]) -> None:
    v = embedder.embed_many(pictures)
    sims = v @ v.T
    assert np.allclose(np.diag(sims), 1.0, atol=1e-5)
    assert sims[~np.eye(len(v), dtype=bool)].max() < 0.95


def test_same_decoded_image_as_hashing(embedder: Embedder, pictures: list[Image.Image]) -> None:
    buf = io.BytesIO()
    pictures[2].save(buf, "JPEG", quality=90)
    image = decode_image(buf.getvalue())  # decoded once, for both
    hashes, vector = hash_image(image), embedder.embed(image)
    assert len(hashes.phash) == 16 and vector.shape == (1280,)


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("L", (300, 200), 128),
        Image.new("RGBA", (120, 80), (255, 0, 0, 40)),
        Image.new("RGB", (1, 1), (0, 0, 0)),
        Image.new("RGB", (2000, 3), (255, 255, 255)),
        Image.new("P", (50, 70)),
    ],
)
def test_any_mode_and_shape(embedder: Embedder, picture: Image.Image) -> None:
    vector = embedder.embed(picture)
    assert np.isfinite(vector).all() and vector.shape == (1280,)


@pytest.mark.parametrize("fit", list(preprocess.FITS))
def test_every_fit_gives_the_models_square(fit: str) -> None:
    for size in [(400, 300), (300, 400), (7, 900)]:
        x = preprocess.to_input(Image.new("RGB", size, (10, 20, 30)), fit, 224)
        assert x.shape == (3, 224, 224) and x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 255


def test_threads_share_one_embedder(embedder: Embedder, pictures: list[Image.Image]) -> None:
    expected = embedder.embed_many(pictures)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(embedder.embed, pictures * 3))
    assert np.allclose(np.stack(got), np.concatenate([expected] * 3), atol=1e-6)


def _child_embeds(settings: Settings, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    embedder = shared_embedder(settings)
    assert embedder is not None
    image = crawler_thumbnail(paintings("tuning")[0])
    queue.put((id(embedder), embedder.embed(image).tobytes()))


def test_a_forked_worker_gets_its_own_session(model_settings: Settings) -> None:
    # Celery's prefork pool: the parent may hold a session; each child must make its own.
    parent = shared_embedder(model_settings)
    assert parent is not None and shared_embedder(model_settings) is parent
    expected = parent.embed(crawler_thumbnail(paintings("tuning")[0]))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_embeds, args=(model_settings, queue))
    child.start()
    child_id, data = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert child_id != id(parent)
    assert np.allclose(np.frombuffer(data, np.float32), expected, atol=1e-6)
