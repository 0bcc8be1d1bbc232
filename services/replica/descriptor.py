"""Per-image numbers the catalogue's inferrers compute (SPEC §6.1), without VGG weights.

Feature vector. The real pipeline uses VGG16 fc7 (4096-d); no weights are available offline,
so the replica uses a deterministic hand-made descriptor with the properties the crawl
actually depends on: unit length (dot product = cosine, as in the ES index), nearly the same
vector for re-scans of one plate (resized, recompressed, slightly cropped/rotated,
brightened, mirrored), and a smooth spread between unrelated pictures so neighbour lists
chain into a connected graph. It concatenates three L2-normalised blocks:

- colour: a 4x4x4 RGB histogram, square-rooted (Hellinger), which is insensitive to
  geometry and only mildly to brightness;
- layout: a 16x16 grayscale thumbnail averaged with its mirror image and mean-centred,
  so a mirrored copy gets the same block and a brightened one nearly the same;
- texture: a magnitude-weighted histogram of gradient orientations, folded so that an
  angle and its mirror share a bin, over the top and bottom halves, left and right summed.

Palette embedding and average colour follow the palette inferrer: a 100x100 bilinear fetch,
50x50 NEAREST, a 10x10x10 RGB histogram of pixels blurred by Gaussian noise (sigma 30). The
inferrer samples the noise (100 copies of each pixel); the replica takes the expectation
of that histogram in closed form, which is deterministic and 100x cheaper.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

FEATURE_VERSION = 1
_WEIGHTS = {"colour": 0.55, "layout": 0.30, "texture": 0.15}


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def feature_vector(image: Image.Image) -> np.ndarray:
    """The replica's unit feature vector (332-d float32) for one picture."""
    rgb = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR, reducing_gap=3.0)
    rgb = np.asarray(rgb)
    rgb = rgb.astype(np.float32) / 255.0

    bins = np.minimum((rgb * 4).astype(np.int64), 3)
    flat = bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]
    colour = np.sqrt(np.bincount(flat.ravel(), minlength=64).astype(np.float32))

    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    small = gray.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    layout = (small + small[:, ::-1]) / 2
    layout = layout - layout.mean()

    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    folded = np.minimum(angle, np.pi - angle)  # mirror maps theta to pi - theta
    obin = np.minimum((folded / (np.pi / 2) * 6).astype(np.int64), 5)
    cells = []
    for rows in (slice(0, 32), slice(32, 64)):
        left = np.bincount(obin[rows, :32].ravel(), magnitude[rows, :32].ravel(), 6)
        right = np.bincount(obin[rows, 32:].ravel(), magnitude[rows, 32:].ravel(), 6)
        cells.append(left + right)
    texture = np.concatenate(cells).astype(np.float32)

    vec = np.concatenate(
        [
            _unit(colour) * math.sqrt(_WEIGHTS["colour"]),
            _unit(layout.ravel()) * math.sqrt(_WEIGHTS["layout"]),
            _unit(texture) * math.sqrt(_WEIGHTS["texture"]),
        ]
    )
    return _unit(vec).astype(np.float32)


def _palette_pixels(image: Image.Image) -> np.ndarray:
    fetched = image.convert("RGB").resize((100, 100), Image.Resampling.BILINEAR, reducing_gap=3.0)
    small = fetched.resize((50, 50), Image.Resampling.NEAREST)
    return np.asarray(small, dtype=np.float64).reshape(-1, 3)


def average_color(image: Image.Image) -> str:
    """``#rrggbb`` (lowercase, as in real data) of the mean pixel of the 50x50 downsample."""
    mean = _palette_pixels(image).mean(axis=0)
    r, g, b = (round(c) for c in mean)
    return f"#{r:02x}{g:02x}{b:02x}"


def aspect_ratio(image: Image.Image) -> float:
    """width / height, as the aspect-ratio inferrer returns it."""
    width, height = image.size
    return width / height


_EDGES = np.linspace(0, 255, 11)


@lru_cache(maxsize=1)
def _mass_table(sigma: float = 30.0) -> np.ndarray:
    """(256, 10): P(value + N(0, sigma) falls in each bin) for every 8-bit value."""
    from scipy.special import ndtr

    values = np.arange(256, dtype=np.float64)
    return np.diff(ndtr((_EDGES[None, :] - values[:, None]) / sigma), axis=1)


def palette_embedding(image: Image.Image) -> np.ndarray:
    """Unit 1000-d expected noisy colour histogram (index = r*100 + g*10 + b)."""
    px = _palette_pixels(image).astype(np.uint8)
    table = _mass_table()
    r, g, b = table[px[:, 0]], table[px[:, 1]], table[px[:, 2]]
    rg = (r[:, :, None] * g[:, None, :]).reshape(len(px), 100)
    # Elementwise rather than a matmul: tiny BLAS calls crawl on a loaded machine.
    hist = (rg[:, :, None] * b[:, None, :]).sum(axis=0).ravel()  # [r*10+g, b]
    return _unit(hist).astype(np.float32)


def color_query_vector(rgb: tuple[int, int, int]) -> np.ndarray:
    """The 1000-d query vector for ``?color=`` (ColorQuery.scala, SPEC §6.3)."""
    centre = np.array([round(c / 255 * 9) for c in rgb], dtype=np.float64)
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10), np.arange(10), indexing="ij"), -1)
    d2 = ((grid - centre) ** 2).sum(-1)
    return _unit(np.exp(-d2 / (2 * 0.3**2)).ravel()).astype(np.float32)


def hex_to_rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
