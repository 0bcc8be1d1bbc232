"""Perceptual hashes of a thumbnail: pure functions from image bytes to hex strings.

Five imagehash algorithms, each answering a different question about "the same picture":
phash (DCT; robust to rescaling and recompression), dhash (gradients), whash (Haar
wavelets), ahash (mean threshold; fast, brittle) and colorhash (hue/saturation bins; ignores
structure). The parameters live in ``HASH_PARAMS`` and are recorded on every node together
with the library version, so hashes computed with other settings are never compared silently.

Two things happen before hashing, because the hashes cannot see them:
- Uniform borders are trimmed (a margin, a mount, letterboxing): a 5% white border moves a
  phash more than recompression does, and the picture inside is what matters.
- The picture's *information* is measured: how much detail the hashed grayscale holds. A
  near-uniform picture (a blank page, a plain wallpaper) hashes to bits decided by noise and
  faint gradients, so two different blank pages can share a hash; the near-duplicate verifier
  refuses to call pictures copies on the word of such hashes (services/indexer/verify.py).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import imagehash
import numpy as np
from PIL import Image, ImageOps

HASH_KINDS: tuple[str, ...] = ("phash", "dhash", "whash", "ahash", "colorhash")

HASH_PARAMS: dict[str, dict[str, int | str]] = {
    "phash": {"hash_size": 8, "highfreq_factor": 4},
    "dhash": {"hash_size": 8},
    "whash": {"hash_size": 8, "mode": "haar"},
    "ahash": {"hash_size": 8},
    "colorhash": {"binbits": 4},
}

# Border trimming: a line of pixels (on a copy at most TRIM_SIDE pixels wide, where noise and
# JPEG ringing are averaged away) belongs to the border when TRIM_FRACTION of its pixels are
# within TRIM_TOLERANCE (max over channels, of 255) of the side's outermost line, TRIM_ENDS of
# the line left out at each end (where a slightly rotated copy's filled corners lie: without
# that, a picture on a plain background is trimmed and its rotated copy is not); at most
# TRIM_MAX of each dimension goes from each side, and a picture that is all border is kept.
# Strict on purpose: an added border or letterbox is flat, while trimming a picture's own,
# less even margins makes copies disagree (on the tuning paintings, tolerance 16 and 95% lost
# 7% of the centre crops; 8 and 98% lost none).
TRIM_SIDE = 160
TRIM_TOLERANCE = 8
TRIM_FRACTION = 0.98
TRIM_MAX = 0.3
TRIM_ROUNDS = 3
TRIM_ENDS = 0.06
# Information: the standard deviation of the 64x64 grayscale's detail (the picture minus its
# 8x8-block-smoothed self), in grey levels. Blank pages and plain gradients score ~0-1;
# paintings, photographs and portraits score 5-40.
INFO_SIDE = 64
# Colour: the chromaticity (r, g = R/(R+G+B), G/(R+G+B), minus gray's 1/3) of each cell's mean
# colour in a COLOR_GRID x COLOR_GRID grid, in 1/COLOR_SCALE steps as signed bytes (0 for
# cells darker than COLOR_DARK, whose chromaticity is noise): brightness changes leave it
# alone, a grayscale copy has none, a recoloured picture moves it.
COLOR_GRID = 3
COLOR_SCALE = 512
COLOR_DARK = 24  # mean R+G+B of a cell
# Part of algorithm_version: bump when trimming, information or colour change.
PREPARE_VERSION = "numpy-phash-whash;trim8/0.98/0.3/0.06x3;info64;color3x3/512/24"

# Bits per hash kind: 8x8 for the structural hashes, 14 bins x binbits for colorhash.
HASH_BITS: dict[str, int] = {
    "phash": 64,
    "dhash": 64,
    "whash": 64,
    "ahash": 64,
    "colorhash": 14 * 4,
}

# phash and whash are computed here with numpy, the way imagehash computes them, because
# imagehash imports scipy.fftpack and pywt for them: ~0.3 s of CPU on every start of a
# process that hashes one picture (``lookalike search``), several times the hashing itself.
# The bits are imagehash's except where coefficients tie with the median (flat pictures),
# where imagehash's float noise decides and these decide "not above" consistently.
# phash: the top-left 8x8 of the unnormalised DCT-II of the 32x32 grayscale.
_DCT_SIDE = 32
_DCT = 2 * np.cos(
    np.pi * np.arange(8)[:, None] * (2 * np.arange(_DCT_SIDE)[None, :] + 1) / (2 * _DCT_SIDE)
)


def _median(a: np.ndarray, axis: int | None = None) -> Any:
    """``np.median(a, axis)``, the same values, without numpy's check for masked arrays,
    which imports numpy.ma (~15 ms of a one-shot ``lookalike search``): the middle of the
    sorted values, or the mean of the middle two; NaN where there is a NaN."""
    values = a.ravel() if axis is None else a
    along = 0 if axis is None else axis
    n = values.shape[along]
    if n == 0:
        return np.median(a, axis=axis)
    if values.dtype.kind in "iub":
        values = values.astype(np.float64)
    ordered = np.sort(values, axis=along)
    upper = np.take(ordered, n // 2, axis=along)
    middle = upper if n % 2 else (np.take(ordered, n // 2 - 1, axis=along) + upper) / 2
    return np.where(np.isnan(values).any(axis=along), np.nan, middle)


def _bits_hash(bits: np.ndarray) -> imagehash.ImageHash:
    return imagehash.ImageHash(np.asarray(bits, dtype=bool))


def _phash(image: Image.Image) -> imagehash.ImageHash:
    pixels = np.asarray(
        image.convert("L").resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS),
        dtype=np.float64,
    )
    low = _DCT @ pixels @ _DCT.T
    return _bits_hash(low > _median(low))


def _whash(image: Image.Image) -> imagehash.ImageHash:
    """imagehash.whash(hash_size=8, mode="haar"): with the largest Haar LL removed, the
    8x8 Haar approximation of the grayscale at the largest power-of-2 side is its block
    means minus the picture's mean, times a constant; against its median, the block means."""
    side = max(2 ** int(np.log2(min(image.size))), 8)
    pixels = (
        np.asarray(
            image.convert("L").resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64
        )
        / 255.0
    )
    block = side // 8
    low = pixels.reshape(8, block, 8, block).mean(axis=(1, 3))
    return _bits_hash(low > _median(low))


_FUNCS: dict[str, Callable[[Image.Image], imagehash.ImageHash]] = {
    "phash": _phash,
    "dhash": lambda im: imagehash.dhash(im, hash_size=8),
    "whash": _whash,
    "ahash": lambda im: imagehash.average_hash(im, hash_size=8),
    "colorhash": lambda im: imagehash.colorhash(im, binbits=4),
}


class ImageDecodeError(ValueError):
    """The bytes are not an image we can decode (or exceed the pixel limit)."""


@dataclass(frozen=True)
class HashSet:
    """The five hashes of one image, as fixed-width lowercase hex."""

    phash: str
    dhash: str
    whash: str
    ahash: str
    colorhash: str
    info: float = 0.0  # the hashed picture's information (see ``information``)
    color: str = ""  # its colour layout (see ``color_layout``), hex

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in HASH_KINDS}

    def node_properties(self) -> dict[str, str | float]:
        """What an image node stores: the hashes, ``hash_info`` and ``hash_color``."""
        return {**self.as_dict(), "hash_info": self.info, "hash_color": self.color}


def algorithm_version() -> str:
    """A string that changes whenever the hash results could change."""
    params = ";".join(
        f"{k}:" + ",".join(f"{p}={v}" for p, v in sorted(HASH_PARAMS[k].items()))
        for k in HASH_KINDS
    )
    return f"imagehash-{imagehash.__version__};{params};{PREPARE_VERSION}"


# Bytes per pixel of PIL's decoded image, by mode: 1 for the one-band 8-bit modes, 2 for 16-bit
# grey, 4 for the rest (PIL pads RGB to 4 bytes a pixel).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
_TWO_BYTE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def decoded_bytes(image: Image.Image) -> int:
    """How many bytes ``image`` takes once decoded at its current size (draft included)."""
    per_pixel = 1 if image.mode in _ONE_BYTE_MODES else 2 if image.mode in _TWO_BYTE_MODES else 4
    return image.width * image.height * per_pixel


def decode_image(
    data: bytes,
    max_pixels: int = 40_000_000,
    max_side: int | None = None,
    reserve: Callable[[int], AbstractContextManager[Any]] | None = None,
) -> Image.Image:
    """Decode bytes into an RGB PIL image, refusing non-images and decompression bombs.

    ``max_side``: the image comes back no larger than that on either side. A JPEG is then
    decoded at a reduced scale directly (PIL's draft mode); other formats are decoded whole
    and reduced at once, so only one full-size copy ever exists. ``reserve(nbytes)``, when
    given, is entered around that full-size decode with the bytes it takes, so a caller can
    bound how many large decodes run at once.
    """
    if not data:
        raise ImageDecodeError("empty image body")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            fmt = probe.format
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"image is {width}x{height} = {width * height} pixels, over the "
                    f"limit of {max_pixels}"
                )
            side = max_side if max_side is not None and max(width, height) > max_side else None
            if side is not None:
                probe.draft("RGB", (side, side))
            with reserve(decoded_bytes(probe)) if reserve else contextlib.nullcontext():
                probe.load()
                image = probe.convert("RGB") if side is None else _reduced_rgb(probe, side)
    except ImageDecodeError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageDecodeError(f"not a decodable image ({exc})") from exc
    image.info["format"] = fmt
    return image


def _reduced_rgb(image: Image.Image, max_side: int, strip_rows: int = 16) -> Image.Image:
    """``image`` in RGB, fitting in ``max_side`` x ``max_side``, without ever a second copy of
    it at full size (PIL's own thumbnail() makes one for modes with alpha, and converting to
    RGB another): it is first box-reduced strip by strip, to about twice the final size, then
    resampled with Lanczos."""
    factor = max(1, max(image.size) // (2 * max_side))
    if factor > 1:
        width, height = image.size
        step = factor * strip_rows  # strips end on whole reduction boxes
        out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
        for top in range(0, height, step):
            strip = image.crop((0, top, width, min(height, top + step))).convert("RGB")
            out.paste(strip.reduce(factor), (0, top // factor))
    else:
        out = image.convert("RGB")
    out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def _hex(h: imagehash.ImageHash, bits: int) -> str:
    return format(int(str(h), 16), f"0{bits // 4}x")


def _border_lines(lines: np.ndarray, limit: int) -> int:
    """How many of ``lines`` (first = outermost; each a row of RGB pixels) are border."""
    ends = int(lines.shape[1] * TRIM_ENDS)
    lines = lines[:, ends : lines.shape[1] - ends]
    reference = _median(lines[0], axis=0)
    n = 0
    for line in lines[:limit]:
        near = np.abs(line - reference).max(axis=1) <= TRIM_TOLERANCE
        if near.mean() < TRIM_FRACTION:
            break
        n += 1
    return n


def trim_borders(image: Image.Image, rounds: int = TRIM_ROUNDS) -> Image.Image:
    """The picture without uniform margins on any side (borders, mounts, letterboxing).
    Margins inside margins (a white frame around a picture's own dark margin) go in
    further rounds, so a framed copy ends up like its original; in all, at most TRIM_MAX of
    the width or height goes from any one side."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    box = (0, 0, width, height)  # left, top, right, bottom in the original
    for _ in range(rounds):
        budget = (
            round(width * TRIM_MAX) - box[0],
            round(height * TRIM_MAX) - box[1],
            box[2] - round(width * (1 - TRIM_MAX)),
            box[3] - round(height * (1 - TRIM_MAX)),
        )
        cut = _border_widths(rgb.crop(box), budget)
        if not any(cut):
            break
        box = (box[0] + cut[0], box[1] + cut[1], box[2] - cut[2], box[3] - cut[3])
    return rgb.crop(box) if box != (0, 0, width, height) else rgb


def _border_widths(
    rgb: Image.Image, budget: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """Pixels of uniform border on each side (left, top, right, bottom), each at most its
    ``budget``; all zero when the picture is all border."""
    width, height = rgb.size
    scale = min(1.0, TRIM_SIDE / max(width, height))
    small = (
        rgb.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX
        )
        if scale < 1
        else rgb
    )
    a = np.asarray(small, dtype=np.int16)
    h, w = a.shape[:2]
    columns = a.transpose(1, 0, 2)
    if _border_lines(a, h) >= h or _border_lines(columns, w) >= w:
        return (0, 0, 0, 0)  # all border: a blank picture, nothing to trim to
    lines = (
        _border_lines(columns, int(budget[0] * scale)),
        _border_lines(a, int(budget[1] * scale)),
        _border_lines(columns[::-1], int(budget[2] * scale)),
        _border_lines(a[::-1], int(budget[3] * scale)),
    )
    if lines[1] + lines[3] >= h or lines[0] + lines[2] >= w:
        return (0, 0, 0, 0)
    cut = tuple(round(n / scale) for n in lines)
    if width - cut[0] - cut[2] < 8 or height - cut[1] - cut[3] < 8:
        return (0, 0, 0, 0)
    return cut  # type: ignore[return-value]


def information(image: Image.Image) -> float:
    """How much detail a picture holds for its hashes to describe, in grey levels: the
    standard deviation of its 64x64 grayscale minus that grayscale smoothed over 8x8 blocks
    (so flat areas and gentle gradients count for nothing)."""
    gray = np.asarray(
        image.convert("L").resize((INFO_SIDE, INFO_SIDE), Image.Resampling.BOX), dtype=np.float32
    )
    blocks = gray.reshape(INFO_SIDE // 8, 8, INFO_SIDE // 8, 8).mean(axis=(1, 3))
    smooth = np.asarray(
        Image.fromarray(blocks).resize((INFO_SIDE, INFO_SIDE), Image.Resampling.BILINEAR)
    )
    return round(float(np.std(gray - smooth)), 3)


def color_layout(image: Image.Image) -> str:
    """The mean chromaticity of each cell of a 3x3 grid, as hex (two signed bytes a cell,
    row by row: r - 1/3 and g - 1/3, in 1/512 steps)."""
    cells = np.asarray(
        image.convert("RGB").resize((COLOR_GRID, COLOR_GRID), Image.Resampling.BOX),
        dtype=np.float64,
    )
    total = cells.sum(axis=2, keepdims=True)
    chroma = np.where(total >= COLOR_DARK, cells[..., :2] / np.maximum(total, 1) - 1 / 3, 0)
    q = np.clip(np.round(chroma * COLOR_SCALE), -127, 127).astype(np.int8)
    return q.tobytes().hex()


def hash_image(image: Image.Image) -> HashSet:
    """The five perceptual hashes of an image without its uniform borders, and its
    information."""
    return _hash_trimmed(trim_borders(image))


def _hash_trimmed(rgb: Image.Image) -> HashSet:
    hashes = {k: _hex(_FUNCS[k](rgb), HASH_BITS[k]) for k in HASH_KINDS}
    return HashSet(**hashes, info=information(rgb), color=color_layout(rgb))


def hash_bytes(data: bytes, max_pixels: int = 40_000_000) -> HashSet:
    return hash_image(decode_image(data, max_pixels=max_pixels))


def mirrored_hashes(image: Image.Image) -> HashSet:
    """Hashes of the left-right mirror image, for flip-invariant search. The borders are
    trimmed before mirroring, so these are exactly the hashes of the mirrored hashed picture
    (resampling can make a trim differ by a line when the mirror is trimmed instead)."""
    return _hash_trimmed(ImageOps.mirror(trim_borders(image)))


def hashes_both_ways(image: Image.Image) -> tuple[HashSet, HashSet]:
    """``hash_image`` and ``mirrored_hashes`` of one picture, trimming it once."""
    trimmed = trim_borders(image)
    return _hash_trimmed(trimmed), _hash_trimmed(ImageOps.mirror(trimmed))


def hamming(a: str, b: str) -> int:
    """Bit distance between two hex hashes of the same kind."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different widths: {a!r} vs {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hex_to_bits(hex_hash: str, bits: int | None = None) -> np.ndarray:
    """A hex hash as a 0/1 uint8 vector, most significant bit first (Annoy's input)."""
    width = bits if bits is not None else len(hex_hash) * 4
    value = int(hex_hash, 16)
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)
