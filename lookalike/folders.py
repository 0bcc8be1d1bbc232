"""Folders made whole or not at all: build in a temporary sibling, then swap it into place."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(out_dir: Path, prefix: str = ".build-") -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out_dir``; when the block ends normally it
    replaces ``out_dir`` (removed first if present), and when it raises it is removed, so
    ``out_dir`` is never left half-written."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
