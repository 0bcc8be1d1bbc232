"""The lookalikes benchmark's truth: pixel-identical originals are one picture, and the colour
re-ranking's weight is the tuning sets' best."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_lookalikes.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_lookalikes", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_grayscale_picture_stored_as_rgb_is_the_same_picture() -> None:
    bench = _bench()
    gray = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (24, 1))
    as_gray = Image.fromarray(gray, "L")
    as_rgb = Image.fromarray(np.stack([gray] * 3, axis=2), "RGB")
    other = Image.fromarray(255 - gray, "L")
    digests = [bench.pixel_digest(im) for im in (as_gray, other, as_rgb, other.copy())]
    assert bench.first_twins(digests).tolist() == [0, 1, 0, 1]


def test_same_pixels_at_another_size_are_another_picture() -> None:
    bench = _bench()
    flat = np.zeros((4, 6, 3), np.uint8)
    wide, tall = Image.fromarray(flat), Image.fromarray(flat.reshape(6, 4, 3))
    assert bench.pixel_digest(wide) != bench.pixel_digest(tall)
    assert bench.first_twins([]).tolist() == []


def test_the_weight_is_the_best_mean_recall_and_the_smallest_on_ties() -> None:
    bench = _bench()
    assert bench.choose_weight({0.0: 0.9, 0.002: 0.95, 0.005: 0.97, 0.01: 0.96}) == 0.005
    assert bench.choose_weight({0.0: 0.97, 0.002: 0.97, 0.005: 0.97}) == 0.0
    assert bench.choose_weight({0.01: 1.0, 0.003: 1.0}) == 0.003
