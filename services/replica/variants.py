"""Near-duplicate transforms: the ways one plate reappears in a real collection.

The Wellcome collection holds re-scans and re-photographs of the same plates: smaller
copies, recompressed JPEGs, slightly different crops, a plate that sat a little crooked,
a brighter exposure, a mirrored print. The builder plants such families so that
near-duplicate search can be scored against a known ground truth.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

TRANSFORMS: tuple[str, ...] = ("resize", "recompress", "crop", "rotate", "brighten", "mirror")


def apply(picture: Image.Image, transform: str) -> Image.Image:
    """The transformed copy (before encoding; ``encode`` applies the JPEG quality)."""
    rgb = picture.convert("RGB")
    width, height = rgb.size
    if transform == "resize":
        return rgb.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    if transform == "recompress":
        return rgb
    if transform == "crop":
        dx, dy = round(width * 0.04), round(height * 0.04)
        return rgb.crop((dx, dy, width - dx, height - dy))
    if transform == "rotate":
        fill = tuple(int(c) for c in np.asarray(rgb).reshape(-1, 3).mean(axis=0))
        return rgb.rotate(2.5, resample=Image.Resampling.BICUBIC, fillcolor=fill)
    if transform == "brighten":
        return ImageEnhance.Brightness(rgb).enhance(1.2)
    if transform == "mirror":
        return ImageOps.mirror(rgb)
    raise ValueError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")


def encode(picture: Image.Image, transform: str) -> bytes:
    """JPEG bytes of a variant: heavy compression for ``recompress``, light otherwise."""
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=30 if transform == "recompress" else 90)
    return buf.getvalue()
