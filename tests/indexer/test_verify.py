"""Unit tests of near-duplicate verification, pair evidence, grouping and the one ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.hashing import HASH_KINDS, hash_image, information, mirrored_hashes, trim_borders
from services.indexer.duplicates import (
    EMBEDDING,
    Duplicate,
    embedding_pairs,
    group_duplicates,
    near_duplicates,
    pair_evidence,
)
from services.indexer.ranking import Signature, rank
from services.indexer.table import HashTable, parse_color
from services.indexer.verify import WEIGHTS, Evidence, VerifyConfig, decide, verify
from tests.indexer.test_core import _pictures

CLOSE = {"phash": 2, "dhash": 3, "whash": 1, "ahash": 2}
FAR = {"phash": 30, "dhash": 28, "whash": 20, "ahash": 25}


def test_verify_claims_pairs_close_in_every_kind_and_says_why():
    verdict = verify(Evidence(CLOSE, information=20.0, color=3))
    assert verdict.match
    expected = sum(WEIGHTS[k] * d for k, d in CLOSE.items())
    assert verdict.weighted == pytest.approx(expected, abs=0.01)
    assert verdict.reasons[0].startswith(f"weighted distance {expected:.1f} <= ")
    assert "colours agree (colour layout distance 3)" in verdict.reasons
    assert not verify(Evidence(FAR, information=20.0)).match


def test_one_colliding_kind_is_not_enough():
    # phash identical, the other kinds disagree: a collision, not a copy
    evidence = Evidence({"phash": 0, "dhash": 30, "whash": 22, "ahash": 26}, information=20.0)
    assert not verify(evidence).match


def test_low_information_pairs_are_never_claimed_but_unknown_information_is_not_held_against():
    zero = {k: 0 for k in CLOSE}
    flat = verify(Evidence(zero, information=0.7))
    assert not flat.match and any("too little detail" in r for r in flat.reasons)
    assert verify(Evidence(zero, information=math.nan)).match


def test_colour_disagreement_vetoes_and_a_grayscale_copy_is_tolerated():
    assert not verify(Evidence(CLOSE, information=20.0, color=60)).match
    assert verify(Evidence(CLOSE, information=20.0, color=None)).match


def test_embedding_evidence_slots_in():
    weak = {"phash": 22, "dhash": 20, "whash": 8, "ahash": 10}  # a one-side crop, say
    config = VerifyConfig(min_cosine=0.9, loose_weighted=25.0, veto_cosine=0.5)
    assert not verify(Evidence(weak, information=20.0), config).match
    claimed = verify(Evidence(weak, information=20.0, cosine=0.95), config)
    assert claimed.match
    assert "embedding cosine 0.950 >= 0.9, weighted distance <= 25" in claimed.reasons
    vetoed = verify(Evidence(CLOSE, information=20.0, cosine=0.3), config)
    assert not vetoed.match
    assert "embedding cosine 0.300 < 0.5: the pictures differ" in vetoed.reasons
    # the array form gives the same answers
    d = np.array([[weak[k], CLOSE[k]] for k in ("phash", "dhash", "whash", "ahash")])
    match, _ = decide(d, np.array([20.0, 20.0]), np.array([-1, -1]), np.array([0.95, 0.3]), config)
    assert match.tolist() == [True, False]


def test_embedding_rules_only_act_on_known_cosines():
    config = VerifyConfig(min_cosine=0.8, loose_weighted=20.0, veto_cosine=0.7)
    d = np.array([[2, 20], [3, 20], [1, 20], [2, 20]])  # close; loose (weighted 20)
    nan = np.array([np.nan, np.nan])
    match, _ = decide(d, np.array([20.0, 20.0]), np.array([-1, -1]), nan, config)
    assert match.tolist() == [True, False]  # unknown cosine: the hashes decide alone
    match, _ = decide(d, np.array([20.0, 20.0]), np.array([-1, -1]), np.array([0.6, 0.85]), config)
    assert match.tolist() == [False, True]
    # flat pictures stay refused, however alike their embeddings
    match, _ = decide(d, np.array([0.5, 0.5]), np.array([-1, -1]), np.array([0.99, 0.99]), config)
    assert not match.any()


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.array(rows, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_embedding_pairs_are_each_pictures_nearest_above_the_cosine():
    ids = np.array(["a", "b", "c", "d", "e"])
    vectors = _unit([[1, 0, 0], [0.95, 0.3, 0], [0, 1, 0], [0, 0.9, 0.44], [1, 1, 1]])
    vectors[4] = np.nan  # no vector: finds nothing, is found by nothing
    pairs = embedding_pairs(ids, vectors, k=1, min_cosine=0.8)
    assert [(p.a, p.b, p.kind) for p in pairs] == [("a", "b", EMBEDDING), ("c", "d", EMBEDDING)]
    assert pairs[0].distance == round(1000 * (1 - float(vectors[0] @ vectors[1])))
    assert embedding_pairs(ids, vectors, k=3, min_cosine=0.99) == []
    assert embedding_pairs(ids[:1], vectors[:1], k=3, min_cosine=0.0) == []


def test_embedding_neighbours_propose_what_no_hash_radius_does():
    # "b" is a copy whose hashes moved 18 bits in every kind (a rotation, say): beyond the
    # candidate radii, within the loose distance the embedding rule allows
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**63, 4, dtype=np.uint64)
    far = rng.integers(0, 2**63, 4, dtype=np.uint64)
    moved = base ^ np.uint64((1 << 18) - 1)
    table = HashTable.from_arrays(
        ["a", "b", "c"],
        {
            k: np.array([base[j], moved[j], far[j]], np.uint64)
            for j, k in enumerate(("phash", "dhash", "whash", "ahash"))
        },
        info=np.array([20.0, 20.0, 20.0]),
    )
    vectors = _unit([[1, 0], [0.97, 0.24], [0, 1]])
    config = VerifyConfig(min_cosine=0.9, loose_weighted=20.0, veto_cosine=0.5)
    radii = {"phash": 14, "dhash": 14}
    assert near_duplicates(table, radii, config, vectors)[1] == []  # no hash candidate
    candidates, pairs, groups = near_duplicates(table, radii, config, vectors, knn=2)
    assert {(p.a, p.b, p.kind) for p in candidates} == {("a", "b", EMBEDDING)}
    assert [(p.a, p.b) for p in pairs] == [("a", "b")]
    assert pairs[0].weighted == pytest.approx(18.0) and pairs[0].cosine == pytest.approx(
        float(vectors[0] @ vectors[1]), abs=1e-4
    )
    assert groups == {"a": ("a", 2), "b": ("a", 2)}
    # without vectors nothing changes: the pipeline runs on hashes alone
    assert near_duplicates(table, radii, config, None, knn=2)[1] == []


def _dup(a: str, b: str, weighted: float = 1.0) -> Duplicate:
    return Duplicate(a, b, weighted, False, tuple((k, 1) for k in HASH_KINDS), 20.0, 2)


def test_groups_do_not_chain():
    # A~B and B~C, A not like C: B joins one of them, never both
    groups = group_duplicates([_dup("A", "B", 1.0), _dup("B", "C", 2.0)])
    assert groups == {"A": ("A", 2), "B": ("A", 2)}
    # a triangle of verified pairs is one group; a fourth member verified with only two of
    # them stays out
    verified = {("A", "B"), ("B", "C"), ("A", "C"), ("C", "D"), ("B", "D")}
    groups = group_duplicates([_dup(a, b, 0.5 if "D" in (a, b) else 1.0) for a, b in verified])
    # the strongest pairs (with D) form {B, C, D} first; A is not like D, so A stays out
    assert groups == {"B": ("B", 3), "C": ("B", 3), "D": ("B", 3)}
    for image, (group, _) in groups.items():
        mates = [m for m, (g, _) in groups.items() if g == group and m != image]
        assert all(tuple(sorted((image, m))) in verified for m in mates)
    assert group_duplicates([_dup("x", "y")]) == {"x": ("x", 2), "y": ("x", 2)}
    assert group_duplicates([]) == {}


def test_evidence_takes_the_mirrored_orientation_for_a_mirrored_copy():
    picture = _pictures()[0]
    ids = np.array(["flip", "orig"])
    direct, flipped = hash_image(picture), mirrored_hashes(picture)
    values = np.array(
        [
            [int(flipped.as_dict()[k], 16) for k in HASH_KINDS],
            [int(direct.as_dict()[k], 16) for k in HASH_KINDS],
        ],
        np.uint64,
    )
    colors = np.stack([parse_color(flipped.color), parse_color(direct.color)])
    info = np.array([flipped.info, direct.info], np.float32)
    ev = pair_evidence(values, HASH_KINDS, info, colors, np.array([0]), np.array([1]))
    assert ev.mirrored[0] and ev.structural().max() <= 8 and ids.size == 2


def test_trim_borders_and_information():
    for picture in _pictures()[:5]:
        picture = picture.convert("RGB")
        own_margins = trim_borders(picture).size != picture.size
        framed = ImageOps.expand(picture, border=20, fill=(255, 255, 255))
        letterboxed = ImageOps.expand(picture, border=(0, 40), fill=(0, 0, 0))
        for bordered in (framed, letterboxed):
            moved = int(hash_image(bordered).phash, 16) ^ int(hash_image(picture).phash, 16)
            assert moved.bit_count() <= (8 if own_margins else 2)
            if not own_margins:
                # trimmed on a copy at most 160 pixels wide: within a line of that copy
                assert abs(trim_borders(bordered).width - picture.width) <= 8
                assert abs(trim_borders(bordered).height - picture.height) <= 8
    blank = Image.new("RGB", (300, 200), (200, 190, 180))
    assert trim_borders(blank).size == blank.size  # all border: kept
    assert information(blank) < 1 < 5 < information(picture)


def _flat_pages(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    pages = []
    for _ in range(n):
        tone = rng.uniform(120, 230, 3)
        noise = rng.normal(0, 2, (240, 320, 3))
        pages.append(Image.fromarray(np.clip(tone + noise, 0, 255).astype(np.uint8)))
    return pages


def test_flat_pictures_are_not_near_duplicates_of_each_other():
    pages = _flat_pages(8)
    hashed = [hash_image(p) for p in pages]
    table = HashTable.from_arrays(
        [f"page{i}" for i in range(len(pages))],
        {k: np.array([int(h.as_dict()[k], 16) for h in hashed], np.uint64) for k in HASH_KINDS},
        info=np.array([h.info for h in hashed]),
        color=[h.color for h in hashed],
    )
    candidates, pairs, groups = near_duplicates(table, {"phash": 14, "dhash": 14})
    assert candidates  # their hashes do collide ...
    assert pairs == [] and groups == {}  # ... and the verifier refuses them


def test_ranking_puts_the_exact_original_first_and_says_why():
    pictures = _pictures()[:5]

    def signature(picture: Image.Image) -> Signature:
        h = hash_image(picture)
        return Signature(
            {k: int(v, 16) for k, v in h.as_dict().items()}, h.info, parse_color(h.color)
        )

    stored = {f"img{i}": signature(p) for i, p in enumerate(pictures)}
    # a second copy of img2 with the same hashes but stored under a smaller id
    stored["aaa-copy"] = Signature(
        stored["img2"].hashes, stored["img2"].information, np.zeros_like(stored["img2"].color)
    )
    ranked = rank(signature(pictures[2]), stored, k=3)
    assert ranked[0].id == "img2" and ranked[0].match
    assert ranked[0].distances["phash"] == 0
    assert ranked[0].reasons and ranked[0].reasons[0].startswith("weighted distance 0.0")
    assert ranked[1].id == "aaa-copy"  # equal hashes: the colour evidence breaks the tie
    assert not ranked[2].match


def test_ranking_a_colourful_query_among_colourless_candidates():
    query = Signature({k: 0 for k in HASH_KINDS}, 20.0, np.full(18, 30, np.int8))
    gray = Signature({k: 1 for k in HASH_KINDS}, 20.0, np.zeros(18, np.int8))
    ranked = rank(query, {"gray": gray}, k=3)
    assert [r.id for r in ranked] == ["gray"] and ranked[0].color is None and ranked[0].match
    assert rank(query, {}, k=3) == []


def test_ranking_weighs_the_embeddings_and_says_so():
    config = VerifyConfig(min_cosine=0.8, loose_weighted=25.0, veto_cosine=0.6)
    base = {k: 0 for k in HASH_KINDS}
    loose = {**base, **{k: (1 << 20) - 1 for k in ("phash", "dhash", "whash", "ahash")}}
    color = np.zeros(18, np.int8)
    query = Signature(base, 20.0, color, vector=_unit([[1, 0]])[0])
    stored = {
        "rotated": Signature(loose, 20.0, color, vector=_unit([[0.95, 0.31]])[0]),
        "painted-over": Signature(base, 20.0, color, vector=_unit([[0.5, 0.87]])[0]),
        "unembedded": Signature(base, 20.0, color),
        "twin": Signature(base, 20.0, color, vector=_unit([[0.99, 0.14]])[0]),
    }
    ranked = {r.id: r for r in rank(query, stored, k=4, config=config)}
    assert ranked["rotated"].match and ranked["rotated"].weighted == pytest.approx(20.0)
    assert any(r.endswith(">= 0.8, weighted distance <= 25") for r in ranked["rotated"].reasons)
    assert not ranked["painted-over"].match  # identical hashes, but the embeddings disagree
    assert ranked["unembedded"].match and ranked["unembedded"].cosine is None
    # equal hashes: the one whose embedding agrees more comes first
    order = [r.id for r in rank(query, stored, k=4, config=config)]
    assert order.index("twin") < order.index("unembedded") < order.index("rotated")
    assert order[-1] == "painted-over"
    assert ranked["twin"].as_json()["cosine"] == pytest.approx(0.99, abs=1e-3)
