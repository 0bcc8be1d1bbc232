"""The compiled scan (popscan.FusedScanner) answers exactly as numpy's (bits.ExactScanner)."""

from __future__ import annotations

import numpy as np
import pytest

from services.indexer import popscan
from services.indexer.bits import ExactScanner
from services.indexer.popscan import FusedScanner
from tests.indexer.helpers import synthetic_table

RADII = (-1, 0, 1, 3, 10, 11, 20, 63, 64, 65, 1000)


def _values(n: int, seed: int) -> np.ndarray:
    """Realistic hashes with planted variants, repeated values (ties at every distance) and
    the extremes of 64 bits."""
    if n == 0:
        return np.zeros(0, np.uint64)
    values = synthetic_table(max(n, 20), seed=seed).values[:n, 0].copy()
    values[n // 2 :: 7] = values[0]
    values[-1] = np.uint64(2**64 - 1)
    return values


def _queries(values: np.ndarray, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    picked = values[rng.integers(0, len(values), 25)].tolist() if len(values) else []
    bits = rng.integers(0, 63, len(picked)).tolist()
    flipped = [v ^ (1 << b) ^ (1 << 63) for v, b in zip(picked, bits, strict=True)]
    return [0, 2**64 - 1, 2**63, *picked, *flipped]


def _by_distance(found: tuple[np.ndarray, np.ndarray]) -> tuple[list[int], list[int]]:
    pos, dist = found
    order = np.lexsort((pos, dist))
    return pos[order].tolist(), dist[order].tolist()


@pytest.fixture(params=popscan.LOOPS)
def loops(request):
    """Each of the C module's loops this CPU can run (the fastest is what the reader uses)."""
    assert popscan._popscan is not None
    chosen = popscan.popcount()
    if not popscan._popscan.use(request.param):
        pytest.skip(f"this CPU cannot run the {request.param} loops")
    yield request.param
    assert popscan._popscan.use(chosen)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 3000])
def test_the_fused_scan_answers_as_the_numpy_scan(n, loops):
    assert popscan.popcount() == loops
    values = _values(n, seed=n)
    fused, exact = FusedScanner(values), ExactScanner(values)
    for q in _queries(values, seed=n):
        for radius in RADII:
            pos, dist = fused.within(q, radius)
            # the same set, already nearest first (ties by position)
            assert (pos.tolist(), dist.tolist()) == _by_distance(exact.within(q, radius))
        for k in (0, 1, 2, 10, n, n + 5):
            pos, dist = fused.nearest(q, k)
            want_pos, want_dist = exact.nearest(q, k)
            assert (pos.tolist(), dist.tolist()) == (want_pos.tolist(), want_dist.tolist())
            assert len(pos) == min(max(k, 0), n)


def test_installing_lookalike_here_builds_the_compiled_scan():
    """The extension is optional (a machine without a C compiler scans with numpy), so
    nothing else would notice if it stopped being built where a compiler exists."""
    assert popscan.COMPILED, "services/indexer/_popscan.c was not built: run scripts/setup.sh"


def test_the_fused_scan_reads_any_array_of_hashes():
    """Read-only (mapped) hashes without a copy, 56-bit hashes, and answers that are views
    of its buffers: a caller keeps what it needs before the next query."""
    values = _values(500, seed=3)
    values.flags.writeable = False
    fused = FusedScanner(values)
    assert np.shares_memory(fused.values, values)
    narrow = values & np.uint64(2**56 - 1)
    q = int(narrow[10])
    assert _by_distance(ExactScanner(narrow).within(q, 12)) == tuple(
        a.tolist() for a in FusedScanner(narrow).within(q, 12)
    )
    first = fused.within(int(values[0]), 10)[0].copy()
    again = fused.within(int(values[0]), 10)[0]
    assert first.tolist() == again.tolist() and len(first) >= 1


def test_the_fused_scan_refuses_buffers_too_small_for_its_hashes():
    values = _values(64, seed=5)
    assert popscan._popscan is not None
    small, ok = np.empty(8, np.int64), np.empty(64, np.int64)
    counts, dist = np.empty(64, np.uint8), np.empty(64, np.uint8)
    with pytest.raises(ValueError, match="pos holds 64 bytes, needs at least 512"):
        popscan._popscan.scan(values, 1, 3, 0, counts, small, small, dist)
    with pytest.raises(ValueError, match="counts holds 60 bytes, needs at least 64"):
        popscan._popscan.scan(values[:60], 1, 3, 0, counts[:60], small, ok, dist)
    with pytest.raises(TypeError, match="takes 8 arguments"):
        popscan._popscan.scan(values, 1, 3)
    with pytest.raises(ValueError, match="read-only"):  # answers are written there
        popscan._popscan.scan(
            values, 1, 3, 0, counts, small, ok, np.frombuffer(bytes(64), np.uint8)
        )
