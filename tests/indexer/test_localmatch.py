"""lookalike.localmatch on real pictures: copies keep their keypoints under one transform and
their cells agree through it; different pictures, and a picture partly painted over, do not."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import localmatch as lm
from tests.indexer.test_core import _pictures

# The thresholds the indexer applies are chosen by bench/bench_local.py; these tests only ask
# what every planted copy of these textured photographs passes by a wide margin.
COPY_SCORE = 0.98
TEXTURED = 6  # the first pictures of _pictures() (astronaut ... moon) are textured throughout


def _jpeg(picture: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    picture.convert("RGB").save(buf, "JPEG", quality=40)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return im.convert("RGB")


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize": lambda p: p.resize((p.width * 3 // 5, p.height * 3 // 5)),
    "jpeg": _jpeg,
    "rotate 3 degrees": lambda p: p.convert("RGB").rotate(
        3, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255)
    ),
    "mirror": ImageOps.mirror,
    "crop 10% off one side": lambda p: p.crop((p.width // 10, 0, p.width, p.height)),
    "grayscale": lambda p: p.convert("L"),
}


def test_the_view_is_grey_with_the_recipes_longer_side() -> None:
    for picture in _pictures()[:4]:
        v = lm.view(picture)
        assert v.dtype == np.uint8 and v.ndim == 2
        assert max(v.shape) == lm.SIDE
        ratio = picture.width / picture.height
        assert v.shape[1] / v.shape[0] == pytest.approx(ratio, rel=0.02)
    assert str(lm.SIDE) in lm.LOCAL_RECIPE


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_copy_keeps_its_keypoints_and_its_cells_agree(edit: str) -> None:
    for picture in _pictures()[:TEXTURED]:
        ev = lm.compare(lm.view(picture), lm.view(EDITS[edit](picture)))
        assert ev.inliers >= 5 * lm.MIN_ALIGNED, (edit, ev)
        assert ev.compared and ev.score >= COPY_SCORE, (edit, ev)
        assert ev.mirrored == (edit == "mirror"), (edit, ev)


def test_different_pictures_cannot_be_aligned() -> None:
    pictures = _pictures()[:TEXTURED]
    for a, b in itertools.pairwise(pictures):
        ev = lm.compare(lm.view(a), lm.view(b))
        assert not ev.compared, ev
        assert np.isnan(ev.score)


def test_a_picture_painted_over_keeps_keypoints_but_its_cells_disagree() -> None:
    """Half of one picture replaced by another: the untouched half aligns (many inliers, as
    a copy), the painted half's cells do not correlate, so the score stays low."""
    base, paint = _pictures()[0].convert("RGB"), _pictures()[2].convert("RGB")
    repainted = base.copy()
    half = (0, base.height // 2, base.width, base.height)
    repainted.paste(paint.resize((base.width, base.height - base.height // 2)), half[:2])
    ev = lm.compare(lm.view(base), lm.view(repainted))
    assert ev.inliers >= 5 * lm.MIN_ALIGNED, ev
    assert ev.compared and ev.score < 0.5, ev


def test_features_are_found_once_and_compared_many_times() -> None:
    """compare_features (each picture's keypoints found once) says what compare says."""
    a, b = (lm.view(p) for p in _pictures()[:2])
    copy = lm.view(EDITS["jpeg"](_pictures()[0]))
    fa, fb, fc = lm.features(a), lm.features(b), lm.features(copy)
    assert lm.compare_features(a, fa, copy, fc) == lm.compare(a, copy)
    assert lm.compare_features(a, fa, b, fb) == lm.compare(a, b)


def test_a_featureless_view_cannot_be_compared() -> None:
    flat = np.full((200, 320), 128, np.uint8)
    ev = lm.compare(flat, lm.view(_pictures()[0]))
    assert ev.inliers == 0 and not ev.compared
    assert lm.compare(flat, flat).inliers == 0


def test_an_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown detector 'surf'"):
        lm.features(np.zeros((32, 32), np.uint8), lm.Config(detector="surf"))
