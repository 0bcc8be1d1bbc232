"""Local evidence in near-duplicate verification: the rule (verify.decide with ``Local``), the
pair-by-pair reader of views (localpairs.PairLocal), and the in-memory pipeline on real
pictures: a picture partly painted over is refused although its hashes agree, a copy rotated
beyond the hash limit is claimed on geometry, and pairs without views are judged as before."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
from PIL import Image

from lookalike import localmatch as lm
from lookalike.hashing import HASH_KINDS, hash_image
from services.indexer.duplicates import color_distance, near_duplicates
from services.indexer.localpairs import (
    MEMO_FILE,
    PairLocal,
    QueryLocal,
    deferred_pairs,
    load_memo,
    save_memo,
)
from services.indexer.ranking import Signature, rank
from services.indexer.table import HashTable, parse_color
from services.indexer.verify import (
    LOCAL_CLAIM_INLIERS,
    LOCAL_MAX_COLOR,
    LOCAL_MIN_SCORE,
    STRUCTURAL,
    Evidence,
    Local,
    VerifyConfig,
    decide,
    verify,
)
from services.replica.variants import apply, edited_bytes
from tests.indexer.test_core import _pictures
from tests.indexer.test_localmatch import colour_drawing, soft_texture, swapped

CLOSE = {"phash": 2, "dhash": 3, "whash": 1, "ahash": 2}
ROTATED = {"phash": 30, "dhash": 30, "whash": 20, "ahash": 25}  # beyond every hash limit


def _decide(distances: list[dict[str, int]], cosine: list[float], local: Local | None):
    d = np.array([[x[k] for x in distances] for k in STRUCTURAL])
    n = len(distances)
    return decide(d, np.full(n, 20.0), np.full(n, -1), np.array(cosine), VerifyConfig(), local)[
        0
    ].tolist()


def test_cells_that_disagree_veto_a_claimed_pair() -> None:
    local = Local(
        np.array([120.0, 120.0, np.nan]),
        np.array([0.41, 0.99, np.nan]),
        np.full(3, np.nan),
        np.full(3, np.nan),
    )
    assert _decide([CLOSE] * 3, [0.9] * 3, None) == [True] * 3
    assert _decide([CLOSE] * 3, [0.9] * 3, local) == [False, True, True]


def test_geometry_claims_what_the_hashes_cannot_when_the_embeddings_agree() -> None:
    config = VerifyConfig()
    assert config.min_cosine is not None
    enough, few = float(LOCAL_CLAIM_INLIERS), float(LOCAL_CLAIM_INLIERS - 1)
    local = Local(
        np.array([enough, few, enough, enough]),
        np.array([0.99, 0.99, 0.9, 0.99]),
        np.full(4, np.nan),
        np.full(4, np.nan),
    )
    cosine = [0.9, 0.9, 0.9, config.min_cosine - 0.01]
    assert _decide([ROTATED] * 4, cosine, None) == [False] * 4
    # enough inliers, cells alike, embeddings alike: claimed; short of any of them: not
    assert _decide([ROTATED] * 4, cosine, local) == [True, False, False, False]
    # unknown local evidence changes nothing
    assert _decide([ROTATED, CLOSE], [0.9, 0.9], Local.unknown(2)) == [False, True]


def test_colours_that_agree_under_the_transform_claim_at_the_veto_cosine() -> None:
    """A much brighter copy's embedding drifts below the embedding claim's cosine: where
    the colours agree through the transform as well as the cells, the veto's cosine is
    enough; grey structure alone (colours not compared or apart) still asks for the
    claim's, and nothing under the veto is claimed on geometry."""
    config = VerifyConfig()
    assert config.min_cosine is not None and config.veto_cosine is not None
    assert config.local_max_color is not None
    between = (config.min_cosine + config.veto_cosine) / 2
    enough = float(LOCAL_CLAIM_INLIERS)
    agree, apart = config.local_max_color - 1, config.local_max_color + 1
    local = Local(
        np.array([enough, enough, enough, enough, enough - 1]),
        np.full(5, 0.99),
        np.full(5, np.nan),
        np.array([agree, np.nan, apart, agree, agree]),
    )
    cosine = [between, between, between, config.veto_cosine - 0.01, between]
    assert _decide([ROTATED] * 5, cosine, local) == [True, False, False, False, False]
    off = replace(config, colour_claim_at_veto=False)
    d = np.array([[ROTATED[k]] * 5 for k in STRUCTURAL])
    match, _ = decide(d, np.full(5, 20.0), np.full(5, -1), np.array(cosine), off, local)
    assert match.tolist() == [False] * 5

    def aligned(colour: float) -> Evidence:
        return Evidence(
            ROTATED,
            information=20.0,
            cosine=between,
            inliers=LOCAL_CLAIM_INLIERS,
            local_score=0.99,
            local_color=colour,
        )

    said = verify(aligned(agree))
    assert said.match
    assert (
        f"embedding cosine {between:.3f} < {config.min_cosine:g}, but >= "
        f"{config.veto_cosine:g}: enough for pictures that align in colour"
    ) in said.reasons
    grey = verify(aligned(math.nan))  # not compared in colour
    assert not grey.match
    assert f"embedding cosine {between:.3f}" in grey.reasons


def test_a_flat_pair_stays_refused_however_well_it_aligns() -> None:
    d = np.array([[ROTATED[k]] for k in STRUCTURAL])
    local = Local(np.array([400.0]), np.array([1.0]), np.array([0.0]), np.array([0.0]))
    match, _ = decide(d, np.array([0.5]), np.array([-1]), np.array([0.99]), VerifyConfig(), local)
    assert not match[0]


def test_colours_that_agree_where_the_pictures_align_outweigh_their_layouts() -> None:
    """A copy whose colour layout moved (a rotation's filled corners, a crop) is claimed when
    its cells' colours agree where the pictures align; colours differing both ways, or the
    layout alone when the cells' colours are unknown, still refuse it."""
    config = VerifyConfig()
    assert config.max_color is not None and config.local_max_color is not None
    d = np.array([[CLOSE[k]] * 4 for k in STRUCTURAL])
    layout = np.full(4, config.max_color + 10)
    local = Local(
        np.full(4, 120.0),
        np.full(4, 0.99),
        np.full(4, np.nan),
        np.array([config.local_max_color - 1, config.local_max_color + 1, np.nan, np.nan]),
    )
    match, _ = decide(d, np.full(4, 20.0), layout, np.full(4, 0.9), config, local)
    assert match.tolist() == [True, False, False, False]
    agreeing = np.array([0, 0, 0, config.max_color])  # ... and the layouts alone still decide
    match, _ = decide(d, np.full(4, 20.0), agreeing, np.full(4, 0.9), config, local)
    assert match.tolist() == [True, True, True, True]
    said = verify(
        Evidence(CLOSE, information=20.0, color=40, inliers=120, local_score=0.99, local_color=1.0)
    )
    assert said.match and "colours differ (colour layout distance 40)" in said.reasons
    assert (
        f"colours agree where the pictures align (distance 1.0 <= {config.local_max_color:g})"
        in (said.reasons)
    )


def test_verify_says_what_the_pixels_said() -> None:
    vetoed = verify(Evidence(CLOSE, information=20.0, inliers=35, local_score=0.409))
    assert not vetoed.match
    assert (
        f"35 keypoints under one transform, cells alike 0.409 < {LOCAL_MIN_SCORE:g}"
        in (vetoed.reasons[-1])
    )
    assert vetoed.reasons[-1].endswith("the pictures differ")
    claimed = verify(Evidence(ROTATED, information=20.0, cosine=0.9, inliers=222, local_score=1))
    assert claimed.match
    unaligned = verify(Evidence(CLOSE, information=20.0, inliers=3))
    assert unaligned.match  # judged on the rest
    assert (
        unaligned.reasons[-1]
        == "3 keypoints under one transform: the pictures could not be compared"
    )
    assert not any("keypoints" in r for r in verify(Evidence(CLOSE, information=20.0)).reasons)
    as_is = verify(Evidence(CLOSE, information=20.0, cosine=0.1, inliers=2, local_score=0.99))
    assert as_is.match  # the cells lift the embedding veto
    assert as_is.reasons[-1] == (
        "2 keypoints under one transform (too few to align them): compared as they are, "
        f"cells alike 0.990 >= {LOCAL_MIN_SCORE:g}"
    )


def _painted_over(base: Image.Image, paint: Image.Image, frac: float = 0.4) -> Image.Image:
    out = base.convert("RGB")
    w, h = int(out.width * frac), int(out.height * frac)
    out.paste(
        paint.convert("RGB").resize((w, h)), (out.width // 2 - w // 2, out.height // 2 - h // 2)
    )
    return out


def _rotated(picture: Image.Image, degrees: float) -> Image.Image:
    """Rotated, and cropped to what the rotation left inside the frame (no fill colour)."""
    turned = picture.convert("RGB").rotate(degrees, resample=Image.Resampling.BICUBIC)
    w, h = turned.size
    return turned.crop((int(w * 0.08), int(h * 0.08), int(w * 0.92), int(h * 0.92)))


def test_pair_local_reads_views_pair_by_pair_within_its_cache() -> None:
    pictures = _pictures()[:4]
    views = {f"img{i}": lm.view(p) for i, p in enumerate(pictures)}
    views["copy0"] = lm.view(_rotated(pictures[0], 3))
    asked: list[str] = []

    def source(image_id: str) -> np.ndarray | None:
        asked.append(image_id)
        return views.get(image_id)

    local = PairLocal(source, cached=3)
    got = local(
        ["copy0", "copy0", "img1", "img2", "img9"], ["img0", "img1", "img2", "img3", "img0"]
    )
    assert got.inliers[0] >= 100 and got.score[0] >= 0.98  # the copy
    assert not got.score[1] >= LOCAL_MIN_SCORE  # different pictures (NaN: not aligned)
    assert math.isnan(got.inliers[4]) and math.isnan(got.score[4])  # no view: unknown
    assert local.compared == 4
    assert asked.count("copy0") == 1  # prepared once for its pairs in a row
    assert len(local._prepared) <= 3


def _table(named: dict[str, Image.Image]) -> HashTable:
    hashed = {name: hash_image(p) for name, p in named.items()}
    return HashTable.from_arrays(
        list(hashed),
        {
            k: np.array([int(h.as_dict()[k], 16) for h in hashed.values()], np.uint64)
            for k in HASH_KINDS
        },
        info=np.array([h.info for h in hashed.values()]),
        color=[h.color for h in hashed.values()],
    )


def test_the_pipeline_refuses_a_repaint_and_claims_a_rotation_with_local_evidence() -> None:
    pictures = _pictures()
    named = {
        "camera": pictures[1],
        "camera-painted": _painted_over(pictures[1], pictures[3]),
        "coins": pictures[4],
        "coins-rotated": _rotated(pictures[4], 12),
    }
    table = _table(named)
    # Embeddings that agree within each pair (cosine 0.9) and not across: a fake of the
    # model's vectors, so that the pairs are candidates and the cosine rules can act.
    base = np.eye(4, dtype=np.float32)
    vectors = np.stack(
        [
            base[0],
            0.9 * base[0] + math.sqrt(1 - 0.81) * base[1],
            base[2],
            0.9 * base[2] + math.sqrt(1 - 0.81) * base[3],
        ]
    )
    radii = {"phash": 14, "dhash": 14}
    views = {name: lm.view(p) for name, p in named.items()}

    _, before, _ = near_duplicates(table, radii, vectors=vectors, knn=1)
    claimed = {(p.a, p.b) for p in before}
    assert ("camera", "camera-painted") in claimed  # hashes and embeddings agree ...
    assert ("coins", "coins-rotated") not in claimed  # ... beyond the hash limit
    assert not any(p.local for p in before) and all(p.inliers == -1 for p in before)

    local = PairLocal(views.get)
    _, after, groups = near_duplicates(table, radii, vectors=vectors, knn=1, local=local)
    by_pair = {(p.a, p.b): p for p in after}
    assert ("camera", "camera-painted") not in by_pair  # the painted cells tell
    rotation = by_pair[("coins", "coins-rotated")]
    assert rotation.local and rotation.inliers >= LOCAL_CLAIM_INLIERS
    assert rotation.local_score >= LOCAL_MIN_SCORE
    assert groups["coins-rotated"] == ("coins", 2)

    # the same pairs without the views: judged as before
    missing = PairLocal(lambda image_id: None)
    _, same, _ = near_duplicates(table, radii, vectors=vectors, knn=1, local=missing)
    assert {(p.a, p.b) for p in same} == claimed and missing.compared == 0


def test_the_pipeline_claims_a_rotated_drawing_by_the_colours_where_it_aligns() -> None:
    """A drawing on white rotated (its corners filled with its mean colour: the colour layout
    moves beyond the limit) is claimed once its cells' colours are compared where the two
    align; the red-blue variant of the drawing, alike in hashes, embeddings and grey cells,
    is refused by those colours."""
    drawing = colour_drawing()
    named = {
        "drawing": drawing,
        "drawing-rotated": apply(drawing, "rotate"),
        "drawing-swapped": swapped(drawing),
    }
    table = _table(named)
    layouts = color_distance(table.color[[0]], table.color[[1]])
    assert layouts[0] > VerifyConfig().max_color  # what refused it before
    base = np.eye(3, dtype=np.float32)
    near = 0.9 * base[0] + math.sqrt(1 - 0.81) * base[1]  # cosine 0.9 with the drawing
    vectors = np.stack([base[0], near, near])
    radii = {"phash": 14, "dhash": 14}
    _, before, _ = near_duplicates(table, radii, vectors=vectors, knn=2)
    assert not {(p.a, p.b) for p in before} & {("drawing", "drawing-rotated")}
    views = {name: lm.view(p) for name, p in named.items()}
    _, after, _ = near_duplicates(table, radii, vectors=vectors, knn=2, local=PairLocal(views.get))
    by_pair = {(p.a, p.b): p for p in after}
    assert set(by_pair) == {("drawing", "drawing-rotated")}
    assert by_pair[("drawing", "drawing-rotated")].local_color <= LOCAL_MAX_COLOR


def test_the_pipeline_claims_a_brighter_texture_compared_as_it_is() -> None:
    """A brighter copy of a smooth texture: hashes alike, embeddings apart (cosine 0.6, under
    the veto) and no keypoint to align it by. Compared as it is, its cells and colours agree
    and lift the veto; the texture's colour variant and its grey copy, alike in grey as they
    are, stay refused."""
    sky = soft_texture(1)
    with Image.open(io.BytesIO(edited_bytes(sky, "brightness"))) as stored:
        brighter = stored.convert("RGB")
    named = {
        "sky": sky,
        "sky-brighter": brighter,
        "sky-variant": soft_texture(1, tint=(200, 160, 150)),
        "sky-grey": sky.convert("L").convert("RGB"),
    }
    table = _table(named)
    base = np.eye(4, dtype=np.float32)
    apart = math.sqrt(1 - 0.36)  # cosine 0.6 with the sky, 0.36 between the others
    vectors = np.stack([base[0], *(0.6 * base[0] + apart * base[k] for k in (1, 2, 3))])
    radii = {"phash": 14, "dhash": 14}
    _, before, _ = near_duplicates(table, radii, vectors=vectors, knn=3)
    assert not before
    views = {name: lm.view(p) for name, p in named.items()}
    _, after, _ = near_duplicates(table, radii, vectors=vectors, knn=3, local=PairLocal(views.get))
    by_pair = {(p.a, p.b): p for p in after}
    assert set(by_pair) == {("sky", "sky-brighter")}
    copy = by_pair[("sky", "sky-brighter")]
    assert copy.inliers < LOCAL_CLAIM_INLIERS and copy.local_score >= LOCAL_MIN_SCORE


def test_what_a_build_found_is_reused_while_both_views_are_unchanged(tmp_path) -> None:
    pictures = _pictures()[:3]
    views = {"img0": lm.view(pictures[0]), "img1": lm.view(_rotated(pictures[0], 3))}
    views["img2"] = lm.view(pictures[1])
    versions = {"img0": 1, "img1": 1, "img2": 1}
    read: list[str] = []

    def source(image_id: str) -> np.ndarray | None:
        read.append(image_id)
        return views.get(image_id)

    def judge(memo):
        local = PairLocal(source, versions=versions.get, memo=memo)
        return local, local(["img0", "img0", "img1"], ["img1", "img2", "img9"])

    first, got = judge({})
    assert first.compared == 2 and first.reused == 0 and set(read) == {"img0", "img1", "img2"}
    assert set(first.found) == {("img0", "img1"), ("img0", "img2")}  # img9 has no view
    save_memo(tmp_path, first.found)
    memo = load_memo(tmp_path)
    assert memo.keys() == first.found.keys()

    read.clear()
    second, again = judge(memo)
    assert second.reused == 2 and read == []  # nothing read again
    assert np.array_equal(again.inliers, got.inliers, equal_nan=True)
    assert np.array_equal(again.score, got.score, equal_nan=True)

    versions["img2"] = 2  # a new thumbnail, so a new view: its pair is compared again
    third, _ = judge(memo)
    assert third.reused == 1 and "img2" in read


def test_a_memo_of_another_recipe_comparison_or_damaged_is_not_used(tmp_path) -> None:
    save_memo(tmp_path, {("a", "b"): (1, 2, 40.0, 0.99, 3.5, 0.4)})
    assert load_memo(tmp_path) == {("a", "b"): (1, 2, 40.0, 0.99, 3.5, 0.4)}
    with np.load(tmp_path / MEMO_FILE) as z:
        fields = {k: z[k] for k in z.files}
    np.savez(tmp_path / MEMO_FILE, **{**fields, "recipe": np.array("grey160-area-0")})
    assert load_memo(tmp_path) == {}
    # evidence of another cell comparison (or of the one before comparisons were named)
    np.savez(tmp_path / MEMO_FILE, **{**fields, "comparison": np.array("ncc-cell16-p25-1")})
    assert load_memo(tmp_path) == {}
    unnamed = {k: v for k, v in fields.items() if k != "comparison"}
    np.savez(tmp_path / MEMO_FILE, **unnamed)
    assert load_memo(tmp_path) == {}
    # a memo written before the layouts were kept: every pair is compared again
    old = {k: v for k, v in fields.items() if k != "columns"}
    np.savez(tmp_path / MEMO_FILE, **{**old, "evidence": fields["evidence"][:, :2]})
    assert load_memo(tmp_path) == {}
    # ... or before the aligned colours were
    before = np.array(["inliers", "score", "layout"])
    np.savez(
        tmp_path / MEMO_FILE, **{**fields, "columns": before, "evidence": fields["evidence"][:, :3]}
    )
    assert load_memo(tmp_path) == {}
    (tmp_path / MEMO_FILE).write_bytes(b"not a memo")
    assert load_memo(tmp_path) == {}
    assert load_memo(None) == {} and load_memo(tmp_path / "absent") == {}


def test_the_one_ranking_weighs_the_pictures_of_the_query_and_its_candidates() -> None:
    pictures = _pictures()
    camera = pictures[1]
    stored_pictures = {
        "camera": camera,
        "painted": _painted_over(camera, pictures[3]),
        "other": pictures[0],
    }

    def signature(picture: Image.Image) -> Signature:
        h = hash_image(picture)
        return Signature(
            {k: int(v, 16) for k, v in h.as_dict().items()}, h.info, parse_color(h.color)
        )

    stored = {name: signature(p) for name, p in stored_pictures.items()}
    query = signature(camera)
    before = {r.id: r for r in rank(query, stored, k=3)}
    assert before["camera"].match and before["painted"].match  # by hashes alone
    views = {name: lm.view(p) for name, p in stored_pictures.items()}
    after = {
        r.id: r
        for r in rank(query, stored, k=3, local=QueryLocal(lambda: lm.view(camera), views.get))
    }
    assert after["camera"].match and not after["painted"].match
    assert after["painted"].reasons[-1].endswith("the pictures differ")
    assert "keypoints under one transform" in after["camera"].reasons[-1]
    assert not any("keypoints" in r for r in after["other"].reasons)  # never asked


def test_a_query_among_images_without_views_makes_no_view_of_its_own() -> None:
    made: list[str] = []

    def query_view() -> np.ndarray:
        made.append("query")
        return lm.view(_pictures()[0])

    got = QueryLocal(query_view, lambda image_id: None)(["a", "b"])
    assert made == [] and np.isnan(got.inliers).all()
    views = {"b": lm.view(_rotated(_pictures()[0], 3))}
    got = QueryLocal(query_view, views.get)(["a", "b"])
    assert made == ["query"] and np.isnan(got.inliers[0]) and got.score[1] >= LOCAL_MIN_SCORE


def test_a_budget_compares_the_newest_views_first_and_counts_the_rest(tmp_path) -> None:
    pictures = _pictures()[:4]
    views = {f"img{i}": lm.view(p) for i, p in enumerate(pictures)}
    versions = {"img0": 1, "img1": 5, "img2": 2, "img3": 9}
    pairs = (["img0", "img0", "img1", "img2"], ["img1", "img2", "img2", "img3"])

    first = PairLocal(views.get, versions=versions.get, budget=2)
    got = first(*pairs)
    # newest first: the pairs holding img3 (9) and img1 (5, twice: the earlier one kept)
    assert first.fresh == 2 and first.deferred == 2
    assert set(first.found) == {("img0", "img1"), ("img2", "img3")}
    assert np.isnan(got.inliers[[1, 2]]).all() and not np.isnan(got.inliers[[0, 3]]).any()
    save_memo(tmp_path, first.found, first.deferred)
    assert deferred_pairs(tmp_path) == 2

    # the next build reuses those, compares the two left, and leaves nothing
    second = PairLocal(views.get, versions=versions.get, memo=load_memo(tmp_path), budget=2)
    again = second(*pairs)
    assert second.reused == 2 and second.fresh == 2 and second.deferred == 0
    assert not np.isnan(again.inliers).any()
    save_memo(tmp_path, second.found, second.deferred)
    assert deferred_pairs(tmp_path) == 0

    # without a budget every pair is compared at once; no memo: nothing is waiting
    everything = PairLocal(views.get, versions=versions.get)
    everything(*pairs)
    assert everything.fresh == 4 and everything.deferred == 0
    assert deferred_pairs(tmp_path / "absent") == 0 and deferred_pairs(None) == 0
