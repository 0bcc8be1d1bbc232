"""lookalike.localmatch on real pictures and drawings on white: copies keep their keypoints under
one transform and their cells agree through it (a brighter copy's clipped inks included);
different pictures, and a picture partly painted over, do not."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from lookalike import localmatch as lm
from services.replica.variants import apply, edited_bytes
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
    # ECC alone can slide a framed picture over its frame: the better alignment is kept
    "white border": lambda p: apply(p, "border"),
}


def test_the_view_is_grey_and_chroma_with_the_recipes_longer_side() -> None:
    import cv2

    for picture in _pictures()[:4]:
        v = lm.view(picture)
        assert v.dtype == np.uint8 and v.ndim == 3 and v.shape[2] == 3
        assert max(v.shape[:2]) == lm.SIDE
        ratio = picture.width / picture.height
        assert v.shape[1] / v.shape[0] == pytest.approx(ratio, rel=0.02)
        # the grey plane is the grey view the thresholds were chosen on, to the level
        luma = np.asarray(picture.convert("L"))
        before = cv2.resize(luma, v.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.array_equal(lm.grey(v), before)
        # chroma constant over blocks, which are all a view's colours
        blocks = lm.chroma_blocks(v)
        assert np.array_equal(lm.with_chroma(lm.grey(v), blocks), v)
        assert blocks.shape[:2] == tuple(-(-n // lm.CHROMA_BLOCK) for n in v.shape[:2])
    assert str(lm.SIDE) in lm.LOCAL_RECIPE and str(lm.SIDE) in lm.CHROMA_RECIPE
    with pytest.raises(ValueError, match="do not fit a grey plane"):
        lm.with_chroma(np.zeros((8, 8), np.uint8), np.zeros((3, 2, 2), np.uint8))


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


def _drawing(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Shapes and strokes on white paper, half of them in light inks (grey 200-235) that a
    30% brighter copy turns white, the others dark."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for _ in range(60):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = (int(v) for v in rng.integers(10, 70, 2))
        g = int(rng.integers(200, 235)) if rng.random() < 0.5 else int(rng.integers(20, 140))
        ink = (g, g, min(255, g + 10))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x, y, x + w, y + h), fill=ink, outline=(0, 0, 0), width=2)
        elif shape == 1:
            draw.rectangle((x, y, x + w, y + h), fill=ink)
        else:
            draw.line((x, y, x + w, y + h), fill=ink, width=3)
    return picture


DRAWINGS = range(4)


@pytest.mark.parametrize("seed", DRAWINGS)
def test_a_brighter_drawing_on_white_is_a_copy_though_its_light_inks_clip(seed: int) -> None:
    """Brightened by 30%, the light inks turn as white as the paper: cells mixing them with
    paper and dark ink no longer correlate linearly, but through the pair's tone curve (a
    line clipped at white) they do, and the cells on white paper are compared too (not left
    out as clipped)."""
    drawing = _drawing(seed)
    brighter = apply(drawing, "brightness")
    clipped = np.asarray(brighter.convert("L")) >= 255 - lm.CLIPPED
    assert clipped.mean() > (np.asarray(drawing.convert("L")) >= 255 - lm.CLIPPED).mean()
    a, b = lm.view(drawing), lm.view(brighter)
    ev = lm.compare(a, b)
    assert ev.inliers >= 5 * lm.MIN_ALIGNED, ev
    assert ev.compared and ev.score >= COPY_SCORE, ev
    # the comparison before the tone curve left most cells out as clipped
    fa, fb = lm.features(a), lm.features(b)
    plain = lm.compare_features(a, fa, b, fb, method="ncc")
    assert ev.cells.count > 4 * plain.cells.count, (ev, plain)


@pytest.mark.parametrize("seed", DRAWINGS)
def test_a_drawing_half_painted_over_is_refused(seed: int) -> None:
    """The tone curve cannot make a repaint a copy: the painted half's cells disagree."""
    drawing = _drawing(seed)
    repainted = drawing.copy()
    repainted.paste(_drawing(seed + 100).crop((0, 0, 240, 360)), (0, 0))
    ev = lm.compare(lm.view(drawing), lm.view(repainted))
    assert ev.inliers >= 5 * lm.MIN_ALIGNED, ev
    assert ev.compared and ev.score < 0.8, ev


@pytest.mark.parametrize("fit", [lm.linear_tone_curve, lm.tone_curve])
def test_the_tone_curve_follows_a_brighter_copy_up_to_white(
    fit: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> None:
    """A 30% brighter copy: the curve is 1.3 x up to the clipping point, then 255; monotone."""
    ramp = np.tile(np.arange(256, dtype=np.float32), (8, 1))
    brighter = np.minimum(255, np.round(1.3 * ramp))
    curve = fit(ramp, brighter, np.ones(ramp.shape, bool))
    assert curve.shape == (256,) and np.all(np.diff(curve) >= 0)
    levels = np.arange(0, 256, 16)
    assert np.abs(curve[levels] - np.minimum(255, 1.3 * levels)).max() <= 3
    # nothing to fit: the identity
    assert np.array_equal(fit(ramp, brighter, np.zeros(ramp.shape, bool)), np.arange(256))


def test_the_linear_tone_curve_does_not_bend_to_a_light_variant() -> None:
    """A light variant of a design (its grey levels through a bent curve, as light and dark
    wallpapers of one design are): the monotone curve follows the bend, the line does not."""
    ramp = np.tile(np.arange(256, dtype=np.float32), (8, 1))
    bent = 255 * np.sqrt(ramp / 255)
    where = np.ones(ramp.shape, bool)
    levels = np.arange(16, 240, 16)
    assert np.abs(lm.tone_curve(ramp, bent, where)[levels] - bent[0, levels]).max() <= 3
    assert np.abs(lm.linear_tone_curve(ramp, bent, where)[levels] - bent[0, levels]).max() > 15
    # a negative is no copy: its cells are compared as they are (anticorrelated)
    negative = lm.linear_tone_curve(ramp, 255 - ramp, where)
    assert np.array_equal(negative, np.arange(256))


def test_every_cell_comparison_says_a_copy_is_a_copy_and_an_unknown_one_is_refused() -> None:
    a, copy = lm.view(_pictures()[0]), lm.view(EDITS["jpeg"](_pictures()[0]))
    fa, fc = lm.features(a), lm.features(copy)
    for method in lm.CELL_METHODS:
        ev = lm.compare_features(a, fa, copy, fc, method=method)
        assert ev.compared and ev.score >= COPY_SCORE, (method, ev)
    assert lm.CELLS in lm.CELL_METHODS and lm.CELLS in lm.COMPARISON
    model = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="unknown cell comparison 'ssim'"):
        lm.aligned(a, copy, model, method="ssim")


def colour_drawing(seed: int = 3) -> Image.Image:
    """A drawing in the middle of white paper: red shapes on its left, blue on its right."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (480, 360), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for k in range(16):
        left = k % 2 == 0
        x = int(rng.integers(120, 220) if left else rng.integers(240, 330))
        y = int(rng.integers(90, 240))
        w, h = (int(v) for v in rng.integers(20, 50, 2))
        ink = (210, 40, 40) if left else (40, 80, 210)
        shape = draw.ellipse if k % 3 else draw.rectangle
        shape((x, y, x + w, y + h), fill=ink, outline=(0, 0, 0), width=3)
    for _ in range(8):
        x0, x1 = (int(v) for v in rng.integers(120, 360, 2))
        y0, y1 = (int(v) for v in rng.integers(90, 270, 2))
        draw.line((x0, y0, x1, y1), fill=(0, 0, 0), width=2)
    return picture


def swapped(picture: Image.Image) -> Image.Image:
    """The colour variant of a design: red and blue swapped, the grey structure nearly kept."""
    return Image.fromarray(np.asarray(picture.convert("RGB"))[..., [2, 1, 0]])


def test_colours_are_compared_where_the_pictures_align() -> None:
    """A rotated copy (its corners filled with its mean colour), a cropped and a framed one
    keep the colours of the cells both pictures have; the red-blue variant of the design,
    whose cells agree in grey, does not; a grey copy or a grey view has none to compare."""
    from services.indexer.verify import LOCAL_MAX_COLOR

    drawing = colour_drawing()
    base = lm.view(drawing)
    for edit in ("rotate", "crop_side", "crop_center", "border", "jpeg"):
        ev = lm.compare(base, lm.view(apply(drawing, edit)))
        assert ev.compared and ev.color <= LOCAL_MAX_COLOR / 2, (edit, ev)
    variant = lm.compare(base, lm.view(swapped(drawing)))
    assert variant.compared and variant.score >= COPY_SCORE  # the grey cells cannot tell
    assert variant.color > 10 * LOCAL_MAX_COLOR
    grey_copy = lm.compare(base, lm.view(apply(drawing, "grayscale")))
    assert grey_copy.compared and np.isnan(grey_copy.color)
    grey_view = lm.compare(lm.grey(base), lm.view(apply(drawing, "jpeg")))
    assert grey_view.compared and np.isnan(grey_view.color)


def test_the_darker_picture_is_brightened_before_colours_are_compared() -> None:
    """30% brighter, an orange's red channel clips and the orange turns towards yellow; the
    original brightened by the pair's gain (measured on the colour it does not clip) turns
    alike, whichever of the two comes first."""
    original = np.zeros((40, 80, 3), np.uint8)
    original[:, :40] = (230, 120, 20)  # orange
    original[:, 40:] = (60, 140, 60)  # a green that does not clip: the gain
    brighter = np.clip(original.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    a, b = (
        np.asarray(Image.fromarray(x).convert("YCbCr"), np.float32) for x in (original, brighter)
    )
    where = np.ones(a.shape[:2], bool)
    orange = np.s_[:, :40]
    apart = np.abs(a[orange][..., 1:] - b[orange][..., 1:]).sum(axis=-1)
    assert apart.mean() > 8  # not a scaled copy of the same colour: the hue moved
    for first, second in ((a, b), (b, a)):
        ta, tb = lm.toned_chroma(first, second, where)
        assert np.abs(ta[orange] - tb[orange]).sum(axis=-1).max() <= 3
    # nothing to measure the gain on (every channel clipped or dark): compared as they are
    red = np.zeros((40, 40, 3), np.uint8)
    red[:] = (250, 20, 20)
    ra, rb = (
        np.asarray(Image.fromarray(x).convert("YCbCr"), np.float32)
        for x in (red, np.clip(red * 1.3, 0, 255).astype(np.uint8))
    )
    assert lm.pair_gain(ra, rb, where[:, :40]) == 1.0
    ta, tb = lm.toned_chroma(ra, rb, where[:, :40])
    assert np.allclose(ta, lm._chroma(np.clip(lm._rgb(ra), 0, 255)))


def test_the_gain_is_read_off_the_channels_that_do_not_clip() -> None:
    """A bright yellow ink has its red channel at white already and its green clips 30%
    brighter, so its grey level rises by ~1.1: the gain is read off its blue channel (and
    off any ink with no channel at white), whichever picture comes first, and an edited
    copy's gain is found however the channels clip."""
    original = np.zeros((40, 80, 3), np.uint8)
    original[:, :40] = (250, 225, 70)  # yellow: red at white, green clips
    original[:, 40:] = (255, 240, 90)  # a paler yellow: the same
    brighter = np.clip(original.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    a, b = (
        np.asarray(Image.fromarray(x).convert("YCbCr"), np.float32) for x in (original, brighter)
    )
    where = np.ones(a.shape[:2], bool)
    assert np.median(b[..., 0] / a[..., 0]) < 1.15  # the grey levels say far less than 1.3
    assert lm.pair_gain(a, b, where) == pytest.approx(1.3, abs=0.02)
    assert lm.pair_gain(b, a, where) == pytest.approx(1 / 1.3, abs=0.02)
    ta, tb = lm.toned_chroma(a, b, where)
    assert np.abs(ta - tb).sum(axis=-1).max() <= 3


def hatched_rope() -> Image.Image:
    """A yellow rope (every strand's red at white already, its shading in fine dark stripes)
    over a grey bar, hatched black lines on white paper around them: drawn at twice the
    view's size, so the view's pixels blend the strokes with the paper."""
    picture = Image.new("RGB", (640, 400), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((40, 40, 600, 70), fill=(192, 192, 192))
    for x in range(260, 380, 6):
        draw.rectangle((x, 20, x + 3, 380), fill=(255, 230, 30))
        draw.rectangle((x + 4, 20, x + 5, 380), fill=(150, 120, 0))
    for y in range(150, 390, 10):
        draw.line((30, y, 240, y), fill=(0, 0, 0), width=3)
        draw.line((400, y, 620, y), fill=(0, 0, 0), width=3)
    return picture


def test_the_gain_is_read_off_grey_fills_too() -> None:
    """A drawing whose only colour is a bright ink with a channel clipping in any brighter
    copy (a yellow rope, finely shaded) has nothing coloured to read the gain from; its grey
    fill has, while the blends of black hatching and white paper keep their level under any
    gain (the paper clips) and do not count, though they outnumber the fill, nor does white
    paper a recompression left just under white in both."""
    drawing = hatched_rope()
    a, b = (lm.view(x).astype(np.float32) for x in (drawing, apply(drawing, "brightness")))
    everywhere = np.ones(a.shape[:2], bool)
    assert lm.pair_gain(a, b, everywhere) == pytest.approx(1.3, abs=0.02)
    assert lm.pair_gain(b, a, everywhere) == pytest.approx(1 / 1.3, abs=0.02)
    hatching = np.zeros_like(everywhere)
    hatching[75:, :120] = hatching[75:, 200:] = True
    blends = (a[..., 0] > lm.TONE_DARK) & (a[..., 0] < 255 - lm.CLIPPED) & hatching
    bar = np.zeros_like(everywhere)
    bar[22:33, 22:298] = True
    assert blends.sum() > bar.sum()  # the blends outnumber the fill
    assert lm.pair_gain(a, b, hatching) == 1.0  # and say nothing
    # white paper recompressed a little under white in both says nothing either, however
    # much of it there is (its copy's level is noise, not the gain)
    paper = np.zeros_like(everywhere)
    paper[40:, :120] = True
    a[paper], b[paper] = (248, 128, 128), (250, 128, 128)
    assert paper.sum() > 2 * bar.sum()
    assert lm.pair_gain(a, b, everywhere) == pytest.approx(1.3, abs=0.02)
    rope = np.zeros_like(everywhere)
    rope[40:, 130:190] = True
    assert abs(lm.pair_gain(a, b, rope) - 1.3) > 0.1  # its colours alone mislead
    assert lm.pair_gain(a, b, bar) == pytest.approx(1.3, abs=0.02)


def test_the_darker_picture_s_grey_is_brightened_as_its_inks_clip() -> None:
    """30% brighter, a clipped orange's grey level rises less than the gain: no one line
    takes the original's grey levels to the copy's, the original brightened channel by
    channel does, whichever of the two comes first; at a gain of 1, and for grey views,
    the grey planes are left as they are."""
    original = np.zeros((40, 80, 3), np.uint8)
    original[:, :40] = (230, 120, 20)  # orange: its red channel clips
    original[:, 40:] = (60, 140, 60)  # green: it does not
    brighter = np.clip(original.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    a, b = (
        np.asarray(Image.fromarray(x).convert("YCbCr"), np.float32) for x in (original, brighter)
    )
    gain = lm.pair_gain(a, b, np.ones(a.shape[:2], bool))
    linear = np.clip(a[..., 0] * gain, 0, 255)
    assert np.abs(linear - b[..., 0])[:, :40].min() > 8  # the line misses the orange
    toned, same = lm.brightened(a, b, gain)
    assert np.array_equal(same, b[..., 0]) and np.abs(toned - b[..., 0]).max() <= 3
    same, toned = lm.brightened(b, a, 1 / gain)
    assert np.array_equal(same, b[..., 0]) and np.abs(toned - b[..., 0]).max() <= 3
    assert all(np.array_equal(x, a[..., 0]) for x in lm.brightened(a, a, 1.0))
    assert all(np.array_equal(x, a[..., 0]) for x in lm.brightened(a[..., 0], a[..., 0], gain))


def test_cells_are_compared_brightened_only_where_the_colours_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A brighter copy's cells are compared once more with the darker picture brightened,
    the better score kept; the brighter red-blue variant of the design, whose colours do
    not agree, keeps the plain comparison. (The brightened planes are replaced by two equal
    ones here, so taking them shows as a perfect score.)"""
    drawing = colour_drawing()
    base = lm.view(drawing)
    copy, variant = (lm.view(apply(x, "brightness")) for x in (drawing, swapped(drawing)))
    before = {name: lm.compare(base, x) for name, x in (("copy", copy), ("variant", variant))}
    gains: list[float] = []

    def alike(a: np.ndarray, b: np.ndarray, gain: float) -> tuple[np.ndarray, np.ndarray]:
        gains.append(gain)
        return lm.grey(b).astype(np.float32), lm.grey(b).astype(np.float32)

    monkeypatch.setattr(lm, "brightened", alike)
    ev = lm.compare(base, copy)
    assert ev.color <= lm.COLORS_AGREE and gains == [pytest.approx(1.3, abs=0.05)]
    assert ev.score > before["copy"].score and ev.score == pytest.approx(1.0, abs=1e-3)
    ev = lm.compare(base, variant)
    assert ev.color > lm.COLORS_AGREE and len(gains) == 1
    assert ev.score == before["variant"].score < 1


def test_a_brighter_drawing_keeps_its_colours_where_the_pictures_align(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Orange and green inks, 30% brighter: the orange's red channel clips and its hue
    moves, so the colours as they are differ; with the darker picture brightened first they
    agree, whichever comes first."""
    from services.indexer.verify import LOCAL_MAX_COLOR

    pixels = np.asarray(colour_drawing())
    red = (pixels == np.array([210, 40, 40], np.uint8)).all(axis=2, keepdims=True)
    blue = (pixels == np.array([40, 80, 210], np.uint8)).all(axis=2, keepdims=True)
    inks = np.where(red, np.array([235, 150, 30], np.uint8), pixels)
    drawing = Image.fromarray(np.where(blue, np.array([60, 140, 60], np.uint8), inks))
    base, brighter = lm.view(drawing), lm.view(apply(drawing, "brightness"))
    for first, second in ((base, brighter), (brighter, base)):
        ev = lm.compare(first, second)
        assert ev.compared and ev.color <= LOCAL_MAX_COLOR, ev
    monkeypatch.setattr(
        lm, "toned_chroma", lambda a, b, where, gain=None: (a[..., 1:] - 128, b[..., 1:] - 128)
    )
    assert lm.compare(base, brighter).color > 2 * LOCAL_MAX_COLOR  # as they are


def test_the_keypoints_transform_is_refined_on_the_pixels() -> None:
    """A transform two pixels and half a degree off (what a few keypoints on a flat drawing
    give) leaves the drawing's lines apart in the cells; refined on the pixels, they agree
    again. ECC that cannot converge (a flat picture) leaves the transform as it was."""
    import cv2

    drawing = colour_drawing()
    a, b = lm.view(drawing), lm.view(apply(drawing, "rotate"))
    exact = lm.compare(a, b)
    assert exact.compared and exact.score >= COPY_SCORE
    fa, fb = lm.features(a), lm.features(b)
    found = lm.geometry(fa.direct, fb.direct, lm.Config())
    assert found.model is not None
    off = cv2.getRotationMatrix2D((160.0, 120.0), 0.5, 1.0) @ np.vstack([found.model, [0, 0, 1]])
    off[:, 2] += (2.0, -2.0)
    assert lm.aligned(a, b, off).p25 < exact.score - 0.2
    assert lm.aligned(a, b, lm.refined(a, b, off)).p25 >= COPY_SCORE
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert np.array_equal(lm.refined(flat, flat, off), off)
    # placed ten pixels and two degrees off (keypoints on a few repeated strokes): realigned
    far = cv2.getRotationMatrix2D((160.0, 120.0), 2.0, 1.0) @ np.vstack([found.model, [0, 0, 1]])
    far[:, 2] += (8.0, -6.0)
    assert lm.aligned(a, b, far).p25 < 0.5
    cells, model = lm.best_aligned(a, b, far)
    assert cells.p25 >= COPY_SCORE and not np.array_equal(model, far)


def soft_flames(seed: int) -> Image.Image:
    """Strokes of orange, yellow and red inks on white paper, their edges softened (a fire
    stamp): a brighter copy clips their red and green channels, not the paper's blend."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (480, 360), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for k in range(60):
        x, y = int(rng.integers(60, 420)), int(rng.integers(40, 320))
        ink = [(245, 120, 20), (250, 200, 40), (230, 60, 20)][k % 3]
        points = [
            (x + int(rng.integers(-40, 40)), y + int(rng.integers(-40, 40))) for _ in range(4)
        ]
        draw.line(points, fill=ink, width=int(rng.integers(2, 7)))
    return picture.filter(ImageFilter.GaussianBlur(1.0))


def test_a_brighter_copy_of_soft_inks_keeps_its_colours_pixel_by_pixel() -> None:
    """The darker picture is brightened from its view's colours: in blocks as coarse as 4 px
    an ink's colour bleeds into the paper beside it and clips wrongly along every soft edge,
    and the colours of a brighter copy of such inks seemed to differ (3.0-3.5 apart, over
    COLORS_AGREE); in the view's 2 px blocks they agree (1.8-2.1)."""
    for seed in (1, 2, 3):
        flames = soft_flames(seed)
        with Image.open(io.BytesIO(edited_bytes(flames, "brightness"))) as stored:
            brighter = lm.view(stored.convert("RGB"))
        ev = lm.compare(lm.view(flames), brighter)
        assert ev.inliers >= lm.MIN_ALIGNED and ev.score >= lm.CELLS_AGREE, ev
        assert ev.color <= lm.COLORS_AGREE, ev


def soft_texture(seed: int, tint: tuple[int, int, int] = (150, 170, 200)) -> Image.Image:
    """Smooth noise in one tint (a sky, a wash): no corner for a keypoint to sit on."""
    import cv2

    noise = np.random.default_rng(seed).normal(0, 1, (360, 480)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 20.0)
    smooth = (smooth - smooth.mean()) / smooth.std()
    rgb = np.asarray(tint, np.float32) + 30 * smooth[..., None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def test_pictures_without_keypoints_are_compared_as_they_are() -> None:
    """A brighter copy of a texture has no transform to be compared through: in one frame,
    it is compared as it is, and said to be so only where its cells and its colours agree.
    A shifted copy or another texture of that frame disagrees as it is, which says nothing
    of a copy that moved: they stay not compared (judged on the rest), not refused; a colour
    variant or a grey copy agree in grey only, which keypoints do not corroborate here."""
    sky = soft_texture(1)
    a = lm.view(sky)
    with Image.open(io.BytesIO(edited_bytes(sky, "brightness"))) as stored:
        brighter = lm.view(stored.convert("RGB"))
    ev = lm.compare(a, brighter)
    assert ev.inliers < lm.MIN_ALIGNED, ev
    assert ev.compared and ev.score >= lm.CELLS_AGREE and ev.color <= lm.COLORS_AGREE, ev
    shifted = lm.view(Image.fromarray(np.roll(np.asarray(sky), 16, axis=1)))
    for other in (shifted, lm.view(soft_texture(11))):
        assert lm.aligned(a, other, lm.AS_IS).p25 < lm.CELLS_AGREE
        ev = lm.compare(a, other)
        assert ev.inliers < lm.MIN_ALIGNED and not ev.compared and np.isnan(ev.color), ev
    # another frame: nothing to compare as it is
    cropped = lm.view(sky.crop((48, 0, 480, 360)))
    assert not lm.compare(a, cropped).compared
    # a colour variant of the texture: its grey cells agree as they are, its colours do not
    variant = lm.view(soft_texture(1, tint=(200, 160, 150)))
    assert lm.aligned(a, variant, lm.AS_IS).p25 >= lm.CELLS_AGREE
    assert not lm.compare(a, variant).compared
    # nor is a grey copy compared as it is: it would be as like every colour variant
    grey_copy = lm.view(sky.convert("L").convert("RGB"))
    assert lm.aligned(a, grey_copy, lm.AS_IS).p25 >= lm.CELLS_AGREE
    assert not lm.compare(a, grey_copy).compared
