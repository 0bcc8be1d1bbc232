"""The vector hand-off through the real Bolt server and Redis, with small synthetic vectors
(the end-to-end test with the real model and workers is tests/crawl/test_lookalikes_e2e.py):
vectors in the stream become a generation's, LOOKS_LIKE relationships equal a numpy top-k,
fresh vectors are searchable before the next build, and lost ones are asked for again."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis

from lookalike import vectors as stream
from lookalike.graph import GraphStore
from lookalike.hashing import HASH_KINDS, algorithm_version
from services.indexer import generations as gens
from services.indexer.graph_io import GraphHashSource
from services.indexer.reader import IndexReader
from services.indexer.recent import StreamVectors
from services.indexer.service import Indexer, IndexerConfig
from services.indexer.synthetic import grouped_vectors
from services.indexer.vecread import NoVector

MODEL = "synthetic-model;v1"


def _now() -> int:
    return int(time.time() * 1000)


def _store(
    store: GraphStore, r: redis.Redis, vectors: dict[str, np.ndarray], model: str = MODEL
) -> None:
    """Images as a crawl leaves them: hashed, embedded (vector to the stream first, then
    the graph's record of it)."""
    at = _now()
    store.upsert_images(
        [
            {"id": i, "title": f"picture {i}", "fetched_at": at, "average_color": "#808080"}
            for i in vectors
        ]
    )
    store.write(
        "set_hashes",
        [
            {
                "id": i,
                **{
                    k: format(n, "016x") if k != "colorhash" else format(n, "014x")
                    for k in HASH_KINDS
                },
                "hash_version": algorithm_version(),
                "thumbnail": f"http://example.invalid/{i}/info.json",
                "hashed_at": at,
            }
            for n, i in enumerate(vectors)
        ],
    )
    stream.publish(r, [(i, model, at, v) for i, v in vectors.items()], maxlen=10_000)
    store.write(
        "set_embeddings",
        [
            {
                "id": i,
                "model": model,
                "at": at,
                "thumbnail": f"http://example.invalid/{i}/info.json",
            }
            for i in vectors
        ],
    )


def _numpy_top(ids: list[str], matrix: np.ndarray, k: int) -> dict[str, list[str]]:
    full = matrix @ matrix.T
    np.fill_diagonal(full, -np.inf)
    return {
        ids[i]: [ids[j] for j in np.lexsort((np.arange(len(ids)), -full[i]))[:k]]
        for i in range(len(ids))
    }


def _stored_looks_like(store: GraphStore, ids: list[str], refined: bool) -> dict[str, list]:
    out = {}
    for i in ids:
        rows = store.read("looks_like_of", id=i, refined=refined)
        out[i] = [(r["id"], r["score"], r["model"]) for r in rows]
    return out


@pytest.fixture
def setup(fresh_graph, redis_url, tmp_path):
    _, store = fresh_graph
    r = redis.Redis.from_url(redis_url)
    asked: list[list[tuple[str, str]]] = []
    config = IndexerConfig(
        index_dir=tmp_path / "index", trees=5, model=MODEL, looks_like_k=3, reembed_limit=100
    )
    return store, r, Indexer(store, config, r, asked.append), asked, config


def _fresh_reader(store, r, config, **options) -> IndexReader:
    """A reader that sees every hash and vector at once (no caching between queries)."""
    return IndexReader(
        config.index_dir,
        GraphHashSource(store),
        delta_ttl=0.0,
        check_interval=0.0,
        vectors=StreamVectors(r, ttl=0.0),
        **options,
    )


def test_vectors_travel_from_the_stream_into_a_generation_and_the_graph(setup) -> None:
    store, r, indexer, _asked, config = setup
    x, _labels = grouped_vectors(6, 4, 32, 1.0, seed=4)
    ids = [f"img{i:02d}" for i in range(len(x))]
    _store(store, r, dict(zip(ids, x, strict=True)))
    store.upsert_edges([(ids[0], ids[1], 1), (ids[0], ids[5], 2), (ids[1], ids[0], 1)])
    assert indexer.due() == "no index yet"
    report = indexer.build_once("test")
    assert report.vectors == len(ids) and report.missing == 0 and report.reembed == 0
    assert stream.pending(r) == 0  # drained into the generation
    meta = gens.read_meta(report.build.path)
    assert meta["vectors"]["model"] == MODEL and meta["vectors"]["items"] == len(ids)

    # LOOKS_LIKE equals numpy's top-3, raw and refined
    raw_top = _numpy_top(ids, x, 3)
    stored = _stored_looks_like(store, ids, refined=False)
    for i in ids:
        assert [b for b, _, _ in stored[i]] == raw_top[i]
        for b, score, model in stored[i]:
            assert model == MODEL
            assert score == pytest.approx(float(x[ids.index(i)] @ x[ids.index(b)]), abs=1e-4)
    refined = np.load(report.build.path / "refined.npy")
    refined_top = _numpy_top(ids, refined, 3)
    assert {
        i: [b for b, _, _ in v] for i, v in _stored_looks_like(store, ids, refined=True).items()
    } == refined_top

    # the reader: lookalikes and cosines equal numpy's; fresh vectors before any rebuild
    reader = _fresh_reader(store, r, config)
    found = reader.lookalikes(ids[0], k=3)
    assert [m.id for m in found] == raw_top[ids[0]]
    assert reader.cosine(ids[0], ids[5]) == pytest.approx(float(x[0] @ x[5]), abs=1e-6)
    assert [m.id for m in reader.lookalikes(ids[0], k=3, refined=True)] == refined_top[ids[0]]
    late = x[7] * 0.999 + x[0] * 0.001
    late /= np.linalg.norm(late)
    _store(store, r, {"late": late})
    assert reader.lookalikes(ids[7], k=1)[0].id == "late"
    match = reader.lookalikes("late", k=1, refined=True)[0]
    assert match.id == ids[7] and not match.refined  # "late" has no refined vector yet
    with pytest.raises(NoVector):
        reader.vector_of("unknown")

    # the next build takes "late" in and rewrites only what changed
    report = indexer.build_once("again")
    assert report.vectors == len(ids) + 1 and stream.pending(r) == 0
    assert not report.looks_like.full and report.looks_like.written < 2 * 3 * len(ids)
    assert next(b for b, _, _ in _stored_looks_like(store, ["late"], False)["late"]) == ids[7]
    assert reader.lookalikes(ids[7], k=1, refined=True)[0].refined

    # the audit of the three SIMILAR_TO edges
    audit = reader.vectors().gen.audit()
    assert len(audit) == 3 and audit.reciprocal.tolist() == [True, False, True]
    assert audit.cos_raw[1] == pytest.approx(float(x[0] @ x[5]), abs=1e-6)


def test_lost_vectors_and_a_model_change_are_embedded_again(setup) -> None:
    store, r, indexer, asked, config = setup
    x, _ = grouped_vectors(2, 3, 16, 1.0, seed=5)
    ids = [f"p{i}" for i in range(len(x))]
    _store(store, r, dict(zip(ids[:4], x[:4], strict=True)))
    indexer.build_once("first")
    # two more embedded while the indexer is away, and Redis loses them
    _store(store, r, dict(zip(ids[4:], x[4:], strict=True)))
    r.flushdb()
    report = indexer.build_once("after the flush")
    assert report.missing == 2 and report.vectors == 4
    assert asked == [[(i, f"http://example.invalid/{i}/info.json") for i in ids[4:]]]
    indexer.build_once("asked already")  # not asked again so soon
    assert len(asked) == 1
    # a worker embeds them again: the next build has them and the request marks go
    _store(store, r, dict(zip(ids[4:], x[4:], strict=True)))
    assert indexer.build_once("embedded again").vectors == 6
    assert stream.requested_reembeds(r) == []

    # another model: every image is to be embedded by it; the old LOOKS_LIKE go
    switched = Indexer(
        store,
        IndexerConfig(
            index_dir=config.index_dir,
            trees=5,
            model="synthetic-model;v2",
            looks_like_k=3,
            reembed_limit=100,
        ),
        r,
        asked.append,
    )
    report = switched.build_once("new model")
    assert report.vectors == 0 and sorted(i for i, _ in asked[-1]) == ids
    assert store.read("looks_like_count")[0]["n"] == 0


def test_whether_any_vector_exists_is_known_without_naming_the_model(setup) -> None:
    store, r, indexer, _asked, config = setup
    named: list[str] = []

    def model() -> str:
        named.append(MODEL)  # naming the real model checksums its weights
        return MODEL

    reader = _fresh_reader(store, r, config, model=model)
    assert not reader.any_vectors() and not named
    x, _ = grouped_vectors(1, 2, 16, 1.0, seed=6)
    _store(store, r, {"a": x[0], "b": x[1]})
    assert reader.any_vectors() and not named  # embedded since: in the stream
    assert reader.vectors().count == 2 and named == [MODEL]
    indexer.build_once("test")
    assert stream.pending(r) == 0 and reader.any_vectors()  # now in the generation
    assert reader.vectors().count == 2 and named == [MODEL]
