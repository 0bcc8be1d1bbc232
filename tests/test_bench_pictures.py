"""The benchmark picture sets flatten transparency onto a background the picture shows on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

PICTURES = Path(__file__).resolve().parent.parent / "bench" / "pictures.py"


def _pictures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pictures", PICTURES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _overlay(rgb: tuple[int, int, int]) -> Image.Image:
    """A flat colour whose alpha draws a pattern (stripes), like MATE's Silk or Stripes."""
    alpha = np.zeros((64, 96), dtype=np.uint8)
    alpha[:, ::8] = 200
    pixels = np.zeros((64, 96, 4), dtype=np.uint8)
    pixels[..., :3] = rgb
    pixels[..., 3] = alpha
    return Image.fromarray(pixels, "RGBA")


def test_a_light_overlay_is_flattened_onto_black_and_keeps_its_pattern() -> None:
    flat = np.asarray(_pictures()._flatten(_overlay((255, 255, 255))))
    assert flat.std() > 50  # on white it would be one blank page
    assert flat[:, 1].max() == 0 and flat[:, 0].min() > 150


def test_a_dark_overlay_and_an_opaque_picture_keep_a_white_background() -> None:
    module = _pictures()
    flat = np.asarray(module._flatten(_overlay((0, 0, 0))))
    assert flat[:, 1].min() == 255 and flat[:, 0].max() < 100
    opaque = Image.new("RGB", (8, 8), (10, 120, 30))
    assert np.array_equal(np.asarray(module._flatten(opaque)), np.asarray(opaque))


def test_a_set_made_by_an_older_recipe_is_made_again(tmp_path: Path) -> None:
    module = _pictures()
    folder = tmp_path / "blank"
    folder.mkdir()
    (folder / "stale.jpg").write_bytes(b"old")
    (folder / ".complete").write_text("1\n")
    made = module.fetch("blank", tmp_path, quiet=True)
    assert not (made / "stale.jpg").exists()
    assert (made / ".complete").read_text().strip() == str(module.RECIPE)
    assert len(module.pictures(made)) == 48


def test_no_two_sets_draw_on_the_same_package() -> None:
    """A threshold chosen on one set and reported on another means nothing if both sets hold
    pictures of one package."""
    seen: dict[str, str] = {}
    for spec in _pictures().SETS.values():
        for source in spec.debian:
            assert source.package not in seen, (source.package, seen.get(source.package))
            seen[source.package] = spec.name


def test_an_empty_layer_is_left_out_and_a_drawing_is_kept() -> None:
    module = _pictures()
    empty = Image.new("RGBA", (200, 200), (90, 10, 10, 0))
    assert module._uniform(empty)
    drawing = _overlay((0, 0, 0))
    assert not module._uniform(drawing)
