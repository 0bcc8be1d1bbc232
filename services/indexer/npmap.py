"""Open an .npy file as a read-only, pre-populated memory map (a plain ndarray).

Why not ``np.load(mmap_mode="r")``: that map is populated lazily, so the first queries after
a reader (re)loads pay a page fault for every page their lookups touch, which at 1M hashes
is most of a query's time; and ``np.memmap``'s subclass hooks add microseconds to every
operation. Here the file is mapped with MAP_POPULATE (page tables filled at load, the pages
still shared with every other process mapping the same generation) and wrapped in a plain
ndarray. The map lives as long as the array (the array holds it as its buffer), so a
generation whose files were already deleted stays readable until its last query ends.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux; elsewhere a lazy map


def load_mapped(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        offset = f.tell()
        if dtype.hasobject:
            raise ValueError(f"{path} holds Python objects; refusing to map it")
        size = int(np.prod(shape)) * dtype.itemsize
        if size == 0:
            return np.zeros(shape, dtype=dtype)
        mapped = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
    array = np.ndarray(
        shape, dtype=dtype, buffer=mapped, offset=offset, order="F" if fortran else "C"
    )
    return array
