"""The colour check: colours diluted by white paper agree, colour variants of one design do not."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lookalike.hashing import hash_image
from services.indexer.duplicates import color_distance, diluted_distance
from services.indexer.evaluation import thumbnail
from services.indexer.table import parse_color
from services.indexer.verify import MAX_COLOR, Evidence, verify
from services.replica.variants import apply

RED, BLUE, GREEN = (200, 30, 30), (30, 60, 200), (30, 150, 40)
CLOSE = {"phash": 2, "dhash": 3, "whash": 1, "ahash": 2}


def _drawing(colours: tuple[tuple[int, int, int], ...] = (RED, BLUE, GREEN)) -> Image.Image:
    """Clip art: a few coloured shapes and a black line on white paper."""
    picture = Image.new("RGB", (400, 300), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((20, 20, 170, 170), fill=colours[0], outline=(0, 0, 0), width=3)
    draw.rectangle((230, 40, 380, 140), outline=colours[1], width=6)
    draw.polygon([(120, 280), (200, 170), (280, 280)], fill=colours[2])
    draw.line((10, 200, 390, 220), fill=(0, 0, 0), width=4)
    return picture


def _layout(picture: Image.Image) -> np.ndarray:
    """The colour layout the crawl would store for the picture, as one row."""
    return parse_color(hash_image(thumbnail(picture)).color)[None, :]


def test_a_drawing_on_white_cropped_framed_or_rotated_keeps_colours_that_agree() -> None:
    original = _layout(_drawing())
    rotated = _layout(apply(_drawing(), "rotate"))
    # the rotation's corners, filled with the picture's mean colour, tint cells that were
    # white paper: the plain difference refused this copy
    assert diluted_distance(original, rotated, 1.0)[0] > MAX_COLOR
    assert color_distance(original, rotated)[0] <= MAX_COLOR
    for edit in ("crop_center", "crop_side", "border", "resize", "mirror"):
        copy = _layout(apply(_drawing(), edit))
        if edit == "mirror":
            copy = copy.reshape(1, 3, 3, 2)[:, :, ::-1].reshape(1, -1)
        assert color_distance(original, copy)[0] <= MAX_COLOR, edit


def test_a_colour_variant_of_one_design_is_still_refused() -> None:
    original = _layout(_drawing())
    variant = _layout(_drawing((BLUE, RED, (200, 150, 40))))  # the same shapes, other inks
    distance = float(color_distance(original, variant)[0])
    assert distance > MAX_COLOR
    assert not verify(Evidence(CLOSE, information=20.0, color=round(distance))).match
    assert verify(Evidence(CLOSE, information=20.0, color=0)).match


def test_paper_dilution_is_forgiven_up_to_a_factor_and_hue_never() -> None:
    cells = np.tile(np.array([60, -70], np.int16), 9)[None, :]
    diluted = np.round(cells * 0.3).astype(np.int16)  # the same ink, 70% more paper
    assert diluted_distance(cells, diluted, 1.0)[0] > MAX_COLOR
    assert diluted_distance(cells, diluted, 4.0)[0] < 1
    assert color_distance(cells, diluted)[0] < 1
    assert color_distance(diluted, cells)[0] == color_distance(cells, diluted)[0]
    # a pale page and a saturated page of one hue, ten times apart: beyond the dilution
    # forgiven, they differ
    pale = np.round(cells * 0.1).astype(np.int16)
    assert color_distance(cells, pale)[0] > MAX_COLOR
    # another hue of the same strength is a plain difference
    turned = np.tile(np.array([-70, 60], np.int16), 9)[None, :]
    assert color_distance(cells, turned)[0] == diluted_distance(cells, turned, 1.0)[0] == 260
    assert color_distance(cells[:0], cells[:0]).shape == (0,)
