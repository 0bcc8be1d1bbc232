"""The reader's exact hamming scan, compiled: XOR and popcount in one pass (``_popscan.c``).

Why: numpy's exact scan (``bits.ExactScanner``) makes four passes over the hashes, each a
separate call (XOR, ``bitwise_count``, ``<=``, ``nonzero``): ~7 us per 10k hashes, which made
the reader (that scan plus parsing the query and naming the matches) slower than the scan
itself. The C loop reads each hash once and answers in (distance, position) order, the
reader's (distance, id) order (bench/README.md, index). ``bits.ExactScanner`` stays the plain
numpy scan: the benchmark's baseline and the tests' truth.

The extension is built when Lookalike is installed, where a C compiler exists (it is an
optional extension). Without it, ``COMPILED`` is False and the reader scans with numpy
(``bits.OrderedScanner``), which answers the same in the same order.
"""

from __future__ import annotations

import numpy as np

try:
    from services.indexer import _popscan  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the reader scans with numpy
    _popscan = None

COMPILED = _popscan is not None
# The popcount loops there are, fastest first; the C module picks the first this CPU runs.
LOOPS = ("avx512-vpopcntdq", "popcnt", "portable")


def popcount() -> str:
    """Which loops scan on this CPU: one of ``LOOPS``, or "numpy" without the extension."""
    return str(_popscan.popcount()) if _popscan is not None else "numpy"


MAX_DISTANCE = 64  # every hash kind fits in 64 bits
_NO_POS = np.zeros(0, np.int64)
_NO_DIST = np.zeros(0, np.uint8)
_NO_POS.flags.writeable = _NO_DIST.flags.writeable = False


class FusedScanner:
    """An exact scan over ``values`` (uint64 hashes) with its buffers, for one thread at a
    time; answers in (distance, position) order, as views of the buffers (boxing two new
    arrays per call cost ~1.4 us, a fifth of a 10k scan). Same answers as
    ``bits.ExactScanner``, which answers in position order."""

    def __init__(self, values: np.ndarray) -> None:
        if _popscan is None:
            raise RuntimeError(
                "the compiled scan services.indexer._popscan is not built (no C compiler "
                "when Lookalike was installed); scan with bits.OrderedScanner"
            )
        self.values = np.ascontiguousarray(values, dtype=np.uint64)
        n = len(self.values)
        words = -(-n // 8)
        self._counts = np.empty(8 * words, np.uint8)  # read eight at a time as uint64 words
        self._hit_words = np.empty(words, np.int64)
        self._pos = np.empty(n, np.int64)
        self._dist = np.empty(n, np.uint8)

    def within(self, query: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions within ``radius`` of ``query``, nearest first (ties by position), and
        their distances: views of this scanner's buffers, valid until its next call."""
        if radius < 0:
            return _NO_POS, _NO_DIST
        return self._scan(query, min(radius, MAX_DISTANCE), 0)

    def nearest(self, query: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest positions, nearest first (ties by position), and distances:
        views of this scanner's buffers, valid until its next call."""
        if k <= 0:
            return _NO_POS, _NO_DIST
        return self._scan(query, MAX_DISTANCE, k)

    def _scan(self, query: int, radius: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        assert _popscan is not None
        m = _popscan.scan(
            self.values, query, radius, k, self._counts, self._hit_words, self._pos, self._dist
        )
        return self._pos[:m], self._dist[:m]
