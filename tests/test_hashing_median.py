"""lookalike.hashing's median: numpy's values without importing numpy.ma, so the hashes (and
every verdict made of them) are the same."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lookalike import hashing
from tests.indexer.test_core import _pictures


def test_the_median_is_numpys() -> None:
    rng = np.random.default_rng(5)
    cases = [
        rng.normal(size=(8, 8)),  # phash's coefficients
        rng.random((8, 8)),  # whash's block means
        rng.integers(0, 4, (8, 8)).astype(np.float64),  # ties
        rng.normal(size=(7, 9)),
        np.array([[1.0, np.nan], [3.0, 4.0]]),
    ]
    for a in cases:
        assert np.array_equal(hashing._median(a), np.median(a), equal_nan=True)
    for shape in ((5, 3), (6, 3), (1, 3)):  # a border line's pixels, int16 RGB
        a = rng.integers(-255, 256, shape).astype(np.int16)
        assert np.array_equal(hashing._median(a, axis=0), np.median(a, axis=0))


def test_the_hashes_are_those_numpys_median_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    pictures = _pictures()[:6]
    ours = [hashing.hash_image(p).node_properties() for p in pictures]
    monkeypatch.setattr(hashing, "_median", lambda a, axis=None: np.median(a, axis=axis))
    assert [hashing.hash_image(p).node_properties() for p in pictures] == ours


def test_hashing_does_not_import_numpy_ma() -> None:
    code = (
        "import sys; from PIL import Image; from lookalike.hashing import hash_image; "
        "hash_image(Image.effect_noise((64, 48), 60).convert('RGB')); "
        "print('numpy.ma' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
