"""Synthetic perceptual hashes with a realistic distribution and planted near-duplicates.

Why not uniform random 64-bit numbers: real perceptual hashes are not uniform. Their bits
are biased (the DC bit of a phash is almost always set) and correlated, and a collection has
dense regions of look-alike pictures (pages of text, plates with the same layout) that make
an approximate index work harder than random bits do. So the benchmark draws *pictures*,
not bits: natural-image-like 1/f noise, half of it blended with shared layout prototypes,
and hashes them the way imagehash does (phash: 32x32 grey, 2-D DCT-II, top-left 8x8 against
its median; dhash: 9x8 horizontal gradient; ahash: 8x8 against the mean). Near-duplicates
are the same pictures transformed (recompression noise, resize blur, crop, small rotation,
brightness), then hashed again, so their distances come from the transform, not from a
chosen number of flipped bits. Everything is vectorised and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

SIDE = 32  # pictures are drawn at the 32x32 that phash works on
VARIANT_TRANSFORMS: tuple[str, ...] = ("recompress", "resize", "crop", "rotate", "brighten")
SYNTHETIC_KINDS: tuple[str, ...] = ("phash", "dhash", "ahash", "whash", "colorhash")


@dataclass(frozen=True)
class SyntheticHashes:
    """``hashes[kind]``: uint64 per item. Items ``[:n_base]`` are the collection's pictures;
    each later item ``j`` is a planted variant of ``variant_of[j - n_base]`` made by
    ``variant_transform[j - n_base]``."""

    hashes: dict[str, np.ndarray]
    n_base: int
    variant_of: np.ndarray
    variant_transform: np.ndarray

    @property
    def size(self) -> int:
        return len(next(iter(self.hashes.values())))


def _log_frequency(side: int) -> np.ndarray:
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0 / side
    return np.log(f).astype(np.float32)


def noise_pictures(rng: np.random.Generator, n: int, side: int = SIDE) -> np.ndarray:
    """``n`` pictures of 1/f^a noise (a in [1, 1.6]: the amplitude spectra of natural images
    and of smoother scans), mean 0, std 1."""
    slope = rng.uniform(1.0, 1.6, n).astype(np.float32)[:, None, None]
    filt = np.exp(-slope * _log_frequency(side))
    shape = (n, side, side // 2 + 1)
    spec = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(
        shape, dtype=np.float32
    )
    pics = fft.irfft2(spec * filt, s=(side, side), axes=(1, 2)).astype(np.float32)
    pics -= pics.mean(axis=(1, 2), keepdims=True)
    pics /= pics.std(axis=(1, 2), keepdims=True) + 1e-6
    return pics


def _bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    """(n, 64) booleans, most significant first (imagehash's hex order) -> uint64."""
    packed = np.packbits(bits.reshape(len(bits), 64).astype(np.uint8), axis=1)
    return packed.view(">u8").ravel().astype(np.uint64)


def _downsample(pics: np.ndarray, size: int) -> np.ndarray:
    n, side, _ = pics.shape
    f = side // size
    if f == 1:
        return pics
    return pics.reshape(n, size, f, size, f).mean(axis=(2, 4))


def phash_of(pics: np.ndarray) -> np.ndarray:
    grey = _downsample(pics, 32)
    coeffs = fft.dct(fft.dct(grey, axis=1), axis=2)[:, :8, :8].reshape(len(pics), 64)
    return _bits_to_uint64(coeffs > np.median(coeffs, axis=1, keepdims=True))


def dhash_of(pics: np.ndarray) -> np.ndarray:
    side = pics.shape[-1]
    # 9 columns x 8 rows, by area averaging (as a LANCZOS resize approximately does).
    cols = np.linspace(0, side, 10).astype(int)
    rows = np.linspace(0, side, 9).astype(int)
    small = np.stack(
        [
            np.stack(
                [
                    pics[:, rows[r] : rows[r + 1], cols[c] : cols[c + 1]].mean(axis=(1, 2))
                    for c in range(9)
                ],
                axis=1,
            )
            for r in range(8)
        ],
        axis=1,
    )
    return _bits_to_uint64(small[:, :, 1:] > small[:, :, :-1])


def ahash_of(pics: np.ndarray) -> np.ndarray:
    small = _downsample(pics, 8).reshape(len(pics), 64)
    return _bits_to_uint64(small > small.mean(axis=1, keepdims=True))


def whash_of(pics: np.ndarray) -> np.ndarray:
    """imagehash's whash of a grey picture: its Haar low band at 8x8 (the means of 4x4
    blocks) against their median; the DC removal whash does first changes no comparison."""
    small = _downsample(pics, 8).reshape(len(pics), 64)
    return _bits_to_uint64(small > np.median(small, axis=1, keepdims=True))


def colorhash_of(pics: np.ndarray) -> np.ndarray:
    """A stand-in with colorhash's 56 bits: the pictures are grey, so instead of hue
    fractions it quantises the fractions of 14 brightness bands to 4 bits each, which keeps
    colorhash's shape (coarse, many near-equal values) if not its meaning."""
    n = len(pics)
    bands = np.clip((pics.reshape(n, -1) / 256 * 14).astype(np.int64), 0, 13)
    counts = np.zeros((n, 14), np.float64)
    np.add.at(counts, (np.repeat(np.arange(n), bands.shape[1]), bands.ravel()), 1)
    levels = np.clip((counts / bands.shape[1] * 32).astype(np.uint64), 0, 15)
    out = np.zeros(n, np.uint64)
    for b in range(14):
        out = (out << np.uint64(4)) | levels[:, b]
    return out


_HASHERS = {
    "phash": phash_of,
    "dhash": dhash_of,
    "ahash": ahash_of,
    "whash": whash_of,
    "colorhash": colorhash_of,
}


def to_display(pics: np.ndarray) -> np.ndarray:
    """Noise fields -> brightness in [0, 255] with a mild vignette (scans are lit centrally)."""
    side = pics.shape[-1]
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1) - 0.5
    vignette = (1.0 - 0.8 * (xx**2 + yy**2)).astype(np.float32)
    return np.clip(128 + 40 * pics, 0, 255) * vignette


def transform(pics: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one near-duplicate transform to display-space pictures (n, side, side)."""
    out = np.empty_like(pics)
    side = pics.shape[-1]
    for i, pic in enumerate(pics):
        if name == "recompress":
            q = rng.uniform(6, 14)  # JPEG-like quantisation noise plus blockiness
            noisy = pic + rng.normal(0, q / 2, pic.shape)
            out[i] = np.round(noisy / q) * q
        elif name == "resize":
            small = ndimage.zoom(pic, rng.uniform(0.3, 0.6), order=1)
            out[i] = ndimage.zoom(small, side / small.shape[0], order=1)[:side, :side]
        elif name == "crop":
            keep = rng.uniform(0.88, 0.97)
            size = int(side * keep)
            y0, x0 = rng.integers(0, side - size + 1, 2)
            crop = pic[y0 : y0 + size, x0 : x0 + size]
            out[i] = ndimage.zoom(crop, side / size, order=1)[:side, :side]
        elif name == "rotate":
            angle = rng.uniform(-4, 4)
            out[i] = ndimage.rotate(pic, angle, reshape=False, order=1, mode="nearest")
        elif name == "brighten":
            gain = rng.uniform(1.1, 1.4)
            out[i] = np.clip(pic * gain + rng.uniform(-10, 20), 0, 255)
        else:
            raise ValueError(f"unknown transform {name!r}; expected one of {VARIANT_TRANSFORMS}")
    return out


def make_hashes(
    n: int,
    *,
    variant_fraction: float = 0.01,
    clustered_fraction: float = 0.5,
    kinds: tuple[str, ...] = ("phash",),
    seed: int = 0,
    batch: int = 10_000,
) -> SyntheticHashes:
    """``n`` base hashes plus ``n * variant_fraction`` planted near-duplicate variants."""
    unknown = set(kinds) - set(_HASHERS)
    if unknown:
        raise ValueError(f"synthetic hashes exist for {SYNTHETIC_KINDS}, not {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    n_protos = max(1, n // 200)
    protos = noise_pictures(rng, n_protos)
    n_var = round(n * variant_fraction)
    variant_of = np.sort(rng.choice(n, size=n_var, replace=False)) if n_var else np.zeros(0, int)
    variant_transform = rng.choice(np.array(VARIANT_TRANSFORMS), size=n_var)
    out = {k: np.empty(n + n_var, dtype=np.uint64) for k in kinds}
    made = 0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        pics = noise_pictures(rng, m)
        # Half the collection shares layouts: blend with a prototype, so look-alike pictures
        # that are not duplicates crowd the neighbourhoods.
        clustered = rng.random(m) < clustered_fraction
        weight = np.where(clustered, rng.uniform(0.3, 0.97, m), 0.0).astype(np.float32)
        proto = protos[rng.integers(0, n_protos, m)]
        w = weight[:, None, None]
        pics = w * proto + np.sqrt(1 - w**2) * pics
        display = to_display(pics)
        for k in kinds:
            out[k][start : start + m] = _HASHERS[k](display)
        chosen = variant_of[(variant_of >= start) & (variant_of < start + m)]
        for name in VARIANT_TRANSFORMS:
            sel = chosen[variant_transform[made : made + len(chosen)] == name]
            if not len(sel):
                continue
            variants = transform(display[sel - start], name, rng)
            where = n + made + np.flatnonzero(variant_transform[made : made + len(chosen)] == name)
            for k in kinds:
                out[k][where] = _HASHERS[k](variants)
        made += len(chosen)
    return SyntheticHashes(out, n, variant_of, variant_transform)


def grouped_vectors(
    groups: int, per_group: int, dim: int, noise: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in ``groups`` clusters of ``per_group`` noisy copies of a random centre
    (Gaussian noise of ``noise`` per unit-length centre), and each vector's group: a
    stand-in for embeddings where a group is one artist, or one picture and its edits."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(groups), per_group)
    x = centres[labels] + rng.standard_normal((len(labels), dim)).astype(np.float32) * (
        noise / np.sqrt(dim)
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels
