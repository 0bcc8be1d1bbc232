"""Perceptual hashes of a thumbnail: pure functions from image bytes to hex strings.

Five imagehash algorithms, each answering a different question about "the same picture":
phash (DCT; robust to rescaling and recompression), dhash (gradients), whash (Haar
wavelets), ahash (mean threshold; fast, brittle) and colorhash (hue/saturation bins; ignores
structure). The parameters live in ``HASH_PARAMS`` and are recorded on every node together
with the library version, so hashes computed with other settings are never compared silently.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

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

# Bits per hash kind: 8x8 for the structural hashes, 14 bins x binbits for colorhash.
HASH_BITS: dict[str, int] = {
    "phash": 64,
    "dhash": 64,
    "whash": 64,
    "ahash": 64,
    "colorhash": 14 * 4,
}

_FUNCS: dict[str, Callable[[Image.Image], imagehash.ImageHash]] = {
    "phash": lambda im: imagehash.phash(im, hash_size=8, highfreq_factor=4),
    "dhash": lambda im: imagehash.dhash(im, hash_size=8),
    "whash": lambda im: imagehash.whash(im, hash_size=8, mode="haar"),
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

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in HASH_KINDS}


def algorithm_version() -> str:
    """A string that changes whenever the hash results could change."""
    params = ";".join(
        f"{k}:" + ",".join(f"{p}={v}" for p, v in sorted(HASH_PARAMS[k].items()))
        for k in HASH_KINDS
    )
    return f"imagehash-{imagehash.__version__};{params}"


def decode_image(data: bytes, max_pixels: int = 40_000_000) -> Image.Image:
    """Decode bytes into an RGB PIL image, refusing non-images and decompression bombs."""
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
            probe.load()
            image = probe.convert("RGB")
    except ImageDecodeError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageDecodeError(f"not a decodable image ({exc})") from exc
    image.info["format"] = fmt
    return image


def _hex(h: imagehash.ImageHash, bits: int) -> str:
    return format(int(str(h), 16), f"0{bits // 4}x")


def hash_image(image: Image.Image) -> HashSet:
    """The five perceptual hashes of an image."""
    rgb = image.convert("RGB")
    return HashSet(**{k: _hex(_FUNCS[k](rgb), HASH_BITS[k]) for k in HASH_KINDS})


def hash_bytes(data: bytes, max_pixels: int = 40_000_000) -> HashSet:
    return hash_image(decode_image(data, max_pixels=max_pixels))


def mirrored_hashes(image: Image.Image) -> HashSet:
    """Hashes of the left-right mirror image, for flip-invariant search."""
    return hash_image(ImageOps.mirror(image.convert("RGB")))


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


def hex_to_int(hex_hash: str) -> int:
    return int(hex_hash, 16)
