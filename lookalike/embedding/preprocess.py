"""From a decoded picture to the model's input: a square of RGB pixels, as float32 0..255.

Three ways to fit a picture of any shape into the model's square (each a pure function):

- ``crop``: short side to 256/224 of the square, then the centre square (ImageNet's
  evaluation recipe). Loses the picture's ends, so a crop off one side or a border moves
  what the model sees.
- ``squash``: the whole picture resized to the square, aspect ratio not kept. Everything
  stays in view; a crop off one side stretches the rest a little.
- ``pad``: the whole picture fitted inside the square, aspect kept, the rest filled with
  the grey the model normalises to zero.

The normalisation itself ((x - 127) / 128) is part of the ONNX graph, so this module only
decides which pixels the model sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BILINEAR
PAD_GREY = (127, 127, 127)  # (127 - 127) / 128 = 0: padding adds no signal


def _crop(image: Image.Image, size: int) -> Image.Image:
    short = round(size * 256 / 224)
    w, h = image.size
    scale = short / min(w, h)
    rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
    resized = image.resize((rw, rh), RESAMPLE)
    left, top = (rw - size) // 2, (rh - size) // 2
    return resized.crop((left, top, left + size, top + size))


def _squash(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), RESAMPLE)


def _pad(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / max(w, h)
    rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = Image.new("RGB", (size, size), PAD_GREY)
    canvas.paste(image.resize((rw, rh), RESAMPLE), ((size - rw) // 2, (size - rh) // 2))
    return canvas


FITS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    "crop": _crop,
    "squash": _squash,
    "pad": _pad,
}


def to_input(image: Image.Image, fit: str, size: int) -> np.ndarray:
    """One picture as a (3, size, size) float32 array of RGB values 0..255."""
    try:
        fitted = FITS[fit](image.convert("RGB"), size)
    except KeyError:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}") from None
    return np.asarray(fitted, dtype=np.float32).transpose(2, 0, 1)


def batch(images: Sequence[Image.Image], fit: str, size: int, mirrored: bool) -> np.ndarray:
    """The model input for several pictures; with ``mirrored``, each followed by its mirror."""
    rows: list[np.ndarray] = []
    if not images:
        return np.zeros((0, 3, size, size), np.float32)
    for image in images:
        x = to_input(image, fit, size)
        rows.append(x)
        if mirrored:
            rows.append(x[:, :, ::-1])
    return np.ascontiguousarray(np.stack(rows))
