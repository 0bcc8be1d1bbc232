"""Near-duplicate edits: the ways one picture reappears in a real collection.

The Wellcome collection holds re-scans and re-photographs of the same plates: smaller
copies, recompressed JPEGs, noisy scans, brighter exposures, grayscale prints, slightly
different crops, a plate photographed with a margin or sitting a little crooked, a mirrored
print, a copy with a caption stamped on it. This module is the one definition of those edits:
the replica's builder plants them as families with a ground truth, and the near-duplicate
evaluation (``lookalike evaluate --plant``) and the benchmarks apply the same ones.

Every edit is deterministic (the noise is seeded from the picture's pixels), so a planted
family is the same on every machine.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

# What each edit does, in the words the evaluation prints.
EDIT_DESCRIPTIONS: dict[str, str] = {
    "resize": "half the width and height",
    "jpeg": "recompressed as JPEG quality 15",
    "noise": "Gaussian noise, sigma 12 of 255",
    "brightness": "30% brighter",
    "grayscale": "converted to grayscale",
    "crop_center": "5% of the width and height cut off every side",
    "crop_side": "10% of the width cut off the left side",
    "border": "a white border 5% of the longer side wide on every side",
    "rotate": "rotated 3 degrees, corners filled with the mean colour",
    "mirror": "mirrored left to right",
    "text": "a caption stamped across the lower part",
}
EDITS: tuple[str, ...] = tuple(EDIT_DESCRIPTIONS)

JPEG_QUALITY = 90  # how every edited copy is saved, except the ``jpeg`` edit itself
JPEG_EDIT_QUALITY = 15


def _seed(rgb: Image.Image) -> int:
    small = np.asarray(rgb.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.uint8)
    return int.from_bytes(hashlib.sha256(small.tobytes()).digest()[:8], "big")


def _caption(rgb: Image.Image) -> Image.Image:
    out = rgb.copy()
    width, height = out.size
    size = max(8, round(height * 0.07))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(out)
    text = "Lookalike sample 1894"
    box = draw.textbbox((0, 0), text, font=font, stroke_width=max(1, size // 12))
    x = max(0, (width - (box[2] - box[0])) // 2)
    y = round(height * 0.78)
    draw.text(
        (x, y),
        text,
        font=font,
        fill=(255, 255, 255),
        stroke_width=max(1, size // 12),
        stroke_fill=(0, 0, 0),
    )
    return out


def apply(picture: Image.Image, edit: str) -> Image.Image:
    """The edited copy (before encoding; ``encode`` applies the JPEG quality)."""
    rgb = picture.convert("RGB")
    width, height = rgb.size
    if edit == "resize":
        return rgb.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    if edit == "jpeg":
        return rgb
    if edit == "noise":
        rng = np.random.default_rng(_seed(rgb))
        noisy = np.asarray(rgb, dtype=np.float32) + rng.normal(0, 12, (height, width, 3))
        return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
    if edit == "brightness":
        return ImageEnhance.Brightness(rgb).enhance(1.3)
    if edit == "grayscale":
        return ImageOps.grayscale(rgb).convert("RGB")
    if edit == "crop_center":
        dx, dy = round(width * 0.05), round(height * 0.05)
        return rgb.crop((dx, dy, width - dx, height - dy))
    if edit == "crop_side":
        return rgb.crop((round(width * 0.10), 0, width, height))
    if edit == "border":
        return ImageOps.expand(
            rgb, border=max(1, round(0.05 * max(width, height))), fill=(255, 255, 255)
        )
    if edit == "rotate":
        fill = tuple(int(c) for c in np.asarray(rgb).reshape(-1, 3).mean(axis=0))
        return rgb.rotate(3, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    if edit == "mirror":
        return ImageOps.mirror(rgb)
    if edit == "text":
        return _caption(rgb)
    raise ValueError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")


def encode(picture: Image.Image, edit: str) -> bytes:
    """JPEG bytes of an edited copy: heavy compression for ``jpeg``, light otherwise."""
    buf = io.BytesIO()
    quality = JPEG_EDIT_QUALITY if edit == "jpeg" else JPEG_QUALITY
    picture.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def edited_bytes(picture: Image.Image, edit: str) -> bytes:
    """``apply`` then ``encode``: the file a planted copy is stored as."""
    return encode(apply(picture, edit), edit)
