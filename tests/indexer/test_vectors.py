"""The vector half of the index, on small synthetic vectors: which vectors a build keeps,
exact and Annoy search, refinement, LOOKS_LIKE diffs and the audit, each checked against a
plain numpy computation."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.vectors import BadVector, VectorEntry, check_vector
from services.indexer import angular, audit, lookslike
from services.indexer.refine import RefineConfig, adjacency, refine, to_refined_space
from services.indexer.synthetic import grouped_vectors
from services.indexer.vectortable import GraphEmbedding, VectorTable, merge


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_check_vector_normalises_and_refuses_garbage() -> None:
    v = check_vector([3.0, 4.0])
    assert v.dtype == np.float32 and np.allclose(v, [0.6, 0.8])
    for bad in ([0.0, 0.0], [np.nan, 1.0], [[1.0, 2.0]], []):
        with pytest.raises(BadVector):
            check_vector(bad)
    with pytest.raises(BadVector, match="expected 3 dimensions"):
        check_vector([1.0, 0.0], dim=3)


def test_merge_keeps_what_the_graph_names_and_finds_what_is_missing() -> None:
    rng = np.random.default_rng(0)
    v = _unit(rng, 6)
    now = 10_000_000
    previous = VectorTable.from_rows(
        "m1", [("a", 100, v[0]), ("b", 100, v[1]), ("gone", 100, v[2])]
    )
    graph = {
        "a": GraphEmbedding("m1", 100, "ua"),  # in the previous generation
        "b": GraphEmbedding("m1", 200, "ub"),  # re-embedded since: the stream has it
        "c": GraphEmbedding("m1", 300, "uc"),  # embedded, vector lost
        "d": GraphEmbedding(None, 0, "ud"),  # hashed, never embedded
        "e": GraphEmbedding(None, 0, "ue", failed=True),  # its embedding failed
        "f": GraphEmbedding("m0", 50, "uf"),  # another model
    }
    entries = [
        VectorEntry("1-0", "b", "m1", 200, v[3]),
        VectorEntry("2-0", "f", "m0", 50, v[4]),  # another model: consumed, dropped
        VectorEntry("3-0", "g", "m1", now - 1000, v[5]),  # graph does not know it yet: kept
        VectorEntry("4-0", "h", "m1", now - 3_600_000, v[5]),  # unknown for an hour: dropped
    ]
    out = merge("m1", graph, previous, entries, now)
    assert out.table.ids.tolist() == ["a", "b"]
    assert np.array_equal(out.table.vectors[1], v[3])  # the stream's newer vector
    assert out.table.embedded_at.tolist() == [100, 200]
    assert out.consumed == ["1-0", "2-0", "4-0"]
    assert out.missing == ["c"]
    assert out.unembedded == ["d", "f"]
    assert out.thumbnails == {"c": "uc", "d": "ud", "f": "uf"}
    # a model change: nothing of the old model survives, everything is to be embedded
    switched = merge("m2", graph, out.table, [], now)
    assert len(switched.table) == 0 and switched.missing == []
    assert switched.unembedded == ["a", "b", "c", "d", "f"]


@pytest.mark.parametrize("n", [1, 2, 50])
def test_exact_and_annoy_search_agree_with_numpy(tmp_path, n: int) -> None:
    rng = np.random.default_rng(n)
    x = _unit(rng, n)
    q = _unit(rng, 1)[0]
    k = min(5, n)
    truth = np.argsort(-(x @ q), kind="stable")[:k]
    rows, scores = angular.exact_top_k(x, q, k)
    assert rows.tolist() == truth.tolist()
    assert np.allclose(scores, x[truth] @ q, atol=1e-6)
    angular.build_annoy(x, 10, tmp_path / "v.ann")
    index = angular.load_annoy(tmp_path / "v.ann", x.shape[1])
    rows, scores = angular.annoy_top_k(index, x, q, k, search_k=-1)
    assert set(rows.tolist()) <= set(range(n))
    assert np.allclose(scores, x[rows] @ q, atol=1e-6)  # re-ranked by the exact cosine
    assert list(scores) == sorted(scores, reverse=True)
    all_rows, all_scores = angular.all_top_k(x, 3)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    for i in range(n):
        want = [j for j in np.argsort(-full[i], kind="stable")[: min(3, n - 1)]]
        assert all_rows[i, : len(want)].tolist() == want
        assert np.allclose(all_scores[i, : len(want)], full[i, want], atol=1e-6)
    approx_rows, _ = angular.all_top_k(x, 3, index=index, search_k=-1)
    assert (approx_rows[:, 0] != np.arange(n)).all()


def test_refinement_pulls_groups_together() -> None:
    """The issue's synthetic check, smaller: noisy copies of group centres, a SIMILAR_TO-like
    graph with 60% right edges; propagation lifts precision@10 well above the raw one."""
    x, labels = grouped_vectors(100, 10, 64, 2.2, seed=1)
    rng = np.random.default_rng(2)
    src = np.repeat(np.arange(len(x)), 5)
    right = rng.random(len(src)) < 0.6
    dst = np.where(
        right, labels[src] * 10 + rng.integers(0, 10, len(src)), rng.integers(0, len(x), len(src))
    )
    rows, scores = angular.all_top_k(x, 10)

    def p10(v: np.ndarray) -> float:
        r, _ = angular.all_top_k(v, 10)
        return float((labels[r] == labels[:, None]).mean())

    raw = p10(x)
    for method in ("appnp", "sgc"):
        z, mean = refine(
            x, rows, scores, (src, dst), RefineConfig(method, hops=2 if method == "sgc" else 10)
        )
        assert np.allclose(mean, x.mean(axis=0), atol=1e-6)
        assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
        # the default APPNP keeps half of each image's own vector: a gentler lift
        assert p10(z) > raw + (0.05 if method == "appnp" else 0.1), (method, p10(z), raw)
    same, mean = refine(x, rows, scores, (src, dst), RefineConfig("none", center=False))
    assert np.allclose(same, x, atol=1e-6) and not mean.any()
    centred, mean = refine(x, rows, scores, (src, dst), RefineConfig("none"))
    assert np.allclose(centred, to_refined_space(x, mean), atol=1e-6)
    assert np.allclose(np.linalg.norm(centred, axis=1), 1, atol=1e-5)


def test_adjacency_is_symmetric_and_keeps_the_larger_weight() -> None:
    rows = np.array([[1], [0], [-1]])
    scores = np.array([[0.9], [0.9], [-np.inf]], np.float32)
    adj = adjacency(3, rows, scores, (np.array([0, 2]), np.array([1, 2])), 0.5).toarray()
    assert np.allclose(adj, adj.T)
    assert adj[0, 1] == pytest.approx(0.9) and adj[2, 2] == 0  # self-pairs left out


def test_looks_like_diff_writes_only_changes() -> None:
    ids = np.array(["a", "b", "c"])
    rows = np.array([[1, 2], [0, 2], [0, 1]])
    scores = np.array([[0.9, 0.5], [0.9, 0.4], [0.5, 0.4]], np.float32)
    old = lookslike.from_top_k(ids, rows, scores, False, "m", 2)
    assert len(old) == 6 and old.rows()[0] == {"a": "a", "b": "b", "score": 0.9, "refined": False}
    assert lookslike.diff(old, None).full
    moved = scores.copy()
    moved[0, 1] = 0.502  # within SCORE_STEP: not rewritten
    moved[2, 0] = 0.6
    new = lookslike.from_top_k(ids, np.array([[1, 2], [0, 2], [0, 1]]), moved, False, "m", 2)
    d = lookslike.diff(new, old)
    assert not d.full and [new.keys()[i] for i in d.write] == [("c", "a", False)]
    fewer = lookslike.from_top_k(ids, np.array([[1, -1], [0, 2], [0, 1]]), scores, False, "m", 2)
    assert lookslike.diff(fewer, old).delete == [("a", "c", False)]
    assert lookslike.diff(new, lookslike.from_top_k(ids, rows, scores, False, "m2", 2)).full


def test_audit_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    ids = np.array(["a", "b", "c", "d"])
    raw = _unit(rng, 4)
    refined = _unit(rng, 4)
    edges = (
        np.array(["a", "b", "a", "c", "x"]),
        np.array(["b", "a", "c", "d", "a"]),
        np.array([1, 1, 2, 1, 1]),
    )
    kinds = ("phash", "dhash")
    values = np.array([[0b1111, 0], [0b0111, 1], [0, 3], [1, 7]], np.uint64)
    present = np.ones((4, 2), bool)
    present[3, 1] = False
    colours = {"a": "#ff0000", "b": "#ff0000", "c": "#00ff00", "d": "bad", "x": None}
    pairs = (
        np.array(["a", "b", "d"]),
        np.array(["d", "d", "b"]),
        np.array([0.9, 0.8, 0.8], np.float32),
    )
    found = audit.compute(
        edges,
        ids,
        raw,
        refined,
        ids,
        kinds,
        values,
        present,
        colours,
        {"a", "b", "c"},
        pairs,
        "m",
        strong=0.75,
    )
    assert list(zip(found.source, found.target, found.rank, strict=True)) == [
        ("a", "b", 1),
        ("a", "c", 2),
        ("b", "a", 1),
        ("c", "d", 1),
        ("x", "a", 1),
    ]
    assert np.allclose(
        found.cos_raw[:4],
        [raw[0] @ raw[1], raw[0] @ raw[2], raw[1] @ raw[0], raw[2] @ raw[3]],
        atol=1e-6,
    )
    assert np.isnan(found.cos_raw[4]) and np.isnan(found.cos_refined[4])
    assert np.allclose(found.cos_refined[0], refined[0] @ refined[1], atol=1e-6)
    assert found.hash_distance["phash"].tolist() == [1, 4, 1, 1, audit.NO_DISTANCE]
    assert found.hash_distance["dhash"].tolist() == [1, 2, 1, audit.NO_DISTANCE, audit.NO_DISTANCE]
    assert found.reciprocal.tolist() == [True, False, True, False, False]
    assert found.colour[0] == 0 and found.colour[1] > 50 and np.isnan(found.colour[3])
    assert np.argsort(found.cos_raw[:4]).tolist() == found.least_supported()[:4].tolist()
    # a-d and b-d are strong and unlisted (b-d counted once, at its best score)
    assert list(zip(found.unlisted_a, found.unlisted_b, strict=True)) == [("a", "d"), ("b", "d")]
    assert np.allclose(found.unlisted_raw, [raw[0] @ raw[3], raw[1] @ raw[3]], atol=1e-6)


def test_audit_colour_distance_is_cielab() -> None:
    lab = audit.hex_to_lab(["#ffffff", "#000000", "#ff0000", None])
    assert np.allclose(lab[0], [100, 0, 0], atol=0.1) and np.allclose(lab[1], [0, 0, 0])
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)
    assert np.isnan(lab[3]).all()
