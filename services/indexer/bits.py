"""Hash values as numbers: hex <-> uint64, Annoy's 0/1 rows, exact hamming scans, mirror hashes.

Why uint64: every hash kind fits in 64 bits (colorhash has 56), so one XOR and one popcount
give an exact distance, and a million hashes are 8 MB that numpy scans in milliseconds. The
exact scan is both the reader's way to see hashes newer than the index and the ground truth
the benchmark measures Annoy against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lookalike.hashing import HASH_BITS, HASH_KINDS


class BadHash(ValueError):
    """A hash string that is not a hex number of the kind's width; the message names it."""


def check_kind(kind: str) -> str:
    if kind not in HASH_BITS:
        raise ValueError(f"unknown hash kind {kind!r}; expected one of {', '.join(HASH_KINDS)}")
    return kind


def parse_hex(kind: str, value: str) -> int:
    """A hex hash of ``kind`` as an int; ``BadHash`` if it is not exactly that wide."""
    width = HASH_BITS[check_kind(kind)] // 4
    if not isinstance(value, str) or len(value) != width:
        raise BadHash(f"{kind} hash {value!r} is not {width} hex digits")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise BadHash(f"{kind} hash {value!r} is not hexadecimal") from exc


def to_hex(kind: str, value: int) -> str:
    return format(int(value), f"0{HASH_BITS[kind] // 4}x")


def to_uint64(kind: str, values: Sequence[str]) -> np.ndarray:
    return np.fromiter((parse_hex(kind, v) for v in values), dtype=np.uint64, count=len(values))


def bit_rows(values: np.ndarray, bits: int = 64) -> np.ndarray:
    """(n,) uint64 -> (n, bits) uint8 of 0/1, most significant of the ``bits`` low bits first.

    The same order as ``lookalike.hashing.hex_to_bits``, so a row is Annoy's vector for it.
    """
    raw = np.unpackbits(np.asarray(values, dtype=np.uint64).astype(">u8").view(np.uint8))
    return raw.reshape(-1, 64)[:, 64 - bits :]


def distances(values: np.ndarray, query: int) -> np.ndarray:
    """Exact hamming distance from ``query`` to every value (uint8)."""
    return np.bitwise_count(np.bitwise_xor(values, np.uint64(query)))


def within(values: np.ndarray, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the values within ``radius`` of ``query``, and their distances."""
    d = distances(values, query)
    where = np.flatnonzero(d <= radius)
    return where, d[where]


class ExactScanner:
    """The exact numpy popcount scan with preallocated buffers: the benchmark's baseline.

    Written to be fast (no temporaries per query), so the speed-up quoted for Annoy is
    against a fair exact scan, not a careless one.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.ascontiguousarray(values, dtype=np.uint64)
        self._xor = np.empty_like(self.values)
        self._count = np.empty(len(self.values), dtype=np.uint8)
        self._hit = np.empty(len(self.values), dtype=bool)

    def within(self, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        np.bitwise_xor(self.values, np.uint64(query), out=self._xor)
        np.bitwise_count(self._xor, out=self._count)
        # the comparison into a buffer too, and nonzero() rather than flatnonzero (which
        # ravels through Python first): ~1 us of a 10k scan's ~8
        np.less_equal(self._count, radius, out=self._hit)
        where = self._hit.nonzero()[0]
        return where, self._count[where]

    def distances(self, query: int) -> np.ndarray:
        """Distances to every value, in this scanner's buffer (valid until its next call)."""
        np.bitwise_xor(self.values, np.uint64(query), out=self._xor)
        return np.bitwise_count(self._xor, out=self._count)

    def nearest(self, query: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest positions, nearest first (ties by position), and distances."""
        return nearest_of(self.distances(query), k)


class OrderedScanner(ExactScanner):
    """The numpy scan answering as the compiled one does (popscan.FusedScanner): nearest
    first, ties by position. What the reader scans with where the compiled scan was not
    built (no C compiler when Lookalike was installed)."""

    def within(self, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        where, dist = super().within(query, radius)
        order = dist.argsort(kind="stable")  # positions come ascending: ties stay by position
        return where[order], dist[order]


def nearest_of(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest of ``dist`` (hamming distances, 0..64), nearest first, ties by
    position, and their distances.

    Finds the k-th smallest distance by a binary search over the 65 possible values (seven
    counting passes), then sorts only what lies within it. numpy's partial sorts are slow on
    small integers: over 100k distances, ``argpartition`` took ~3.8 ms and ``bincount``
    ~0.6 ms (it widens to int64) where one counting pass takes ~0.06 ms.
    """
    k = min(k, len(dist))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint8)
    lo, hi = 0, 64
    while lo < hi:
        mid = (lo + hi) // 2
        if np.count_nonzero(dist <= mid) >= k:
            hi = mid
        else:
            lo = mid + 1
    where = np.flatnonzero(dist <= lo)
    order = np.lexsort((where, dist[where]))[:k]
    return where[order], dist[where[order]]


# --- mirror images -------------------------------------------------------------------------
#
# A left-right flip permutes the columns of a hash's 8x8 grid, so the hash of the mirrored
# picture follows from the hash alone; no pixels are needed, which is what lets the indexer
# pair flipped copies among stored hashes. Measured on the 20 scikit-image sample pictures
# (distance between the derived mirror hash and the hash of the actually flipped picture):
# - ahash, whash: the grid is a downscaled picture thresholded at its mean/median, which a
#   flip does not change -> reverse the bits of each row. Exact (0 on all 20).
# - dhash: bit (r, c) says pixel c+1 is brighter than pixel c; after a flip it compares the
#   same pair the other way round -> reverse each row and invert. Off only where two pixels
#   tie (median 2, max 13 bits).
# - phash: the DCT of a flipped picture flips the sign of the odd horizontal frequencies;
#   the median threshold stays near 0 for AC terms -> invert the odd columns. Approximate
#   (median 2, max 8 bits), so mirrored phash matches get a little further away.
# - colorhash: hue/saturation histograms ignore position -> unchanged. Exact.
_ODD_COLUMNS = np.uint64(int("01010101" * 8, 2))
_BYTE_REVERSE = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8)


def mirror_values(kind: str, values: np.ndarray) -> np.ndarray:
    """The hashes of the mirrored pictures, derived from the hashes (see above)."""
    check_kind(kind)
    values = np.asarray(values, dtype=np.uint64)
    if kind == "colorhash":
        return values.copy()
    if kind == "phash":
        return np.bitwise_xor(values, _ODD_COLUMNS)
    rows = values.astype(">u8").view(np.uint8).reshape(-1, 8)  # one byte per grid row
    flipped = _BYTE_REVERSE[rows]
    if kind == "dhash":
        flipped = ~flipped
    return np.ascontiguousarray(flipped).view(">u8").ravel().astype(np.uint64)


def mirror_value(kind: str, value: int) -> int:
    return int(mirror_values(kind, np.array([value], dtype=np.uint64))[0])
