"""The index folder: numbered generations, an atomic CURRENT pointer, cleanup, a builder lock.

Layout::

    <index_dir>/
      CURRENT                 one line, "gen-000042": the generation readers use
      LOCK                    flock-ed by the one builder at work
      REBUILD                 present = someone asked for a rebuild now (``request_rebuild``)
      gen-000041/             the previous generation (a reader may still have it mapped)
      gen-000042/             meta.json, ids.npy, hashes.npy, present.npy,
                              <kind>.ann and <kind>.rows.npy per hash kind
      .build-000043-<pid>/    a generation being written (never read; removed if abandoned)

Why this shape: Annoy cannot add items, so every refresh is a whole new index. A new
generation is written under a hidden name, every file fsync-ed, renamed into place, and only
then published by replacing CURRENT (write a temp file, fsync, ``os.replace``, fsync the
folder). A reader therefore sees the old generation or the new one, never a half-written
one, and a builder killed at any instant leaves CURRENT naming a complete generation.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CURRENT = "CURRENT"
LOCK = "LOCK"
REBUILD = "REBUILD"
META = "meta.json"
_GEN = re.compile(r"^gen-(\d{6,})$")
_BUILD = re.compile(r"^\.build-(\d{6,})-(\d+)$")


class IndexerBusy(RuntimeError):
    """Another indexer process holds the builder lock of this index folder."""


class NoGeneration(LookupError):
    """The index folder has no published generation yet."""


def gen_name(number: int) -> str:
    return f"gen-{number:06d}"


def gen_number(name: str) -> int:
    match = _GEN.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a generation name (gen-NNNNNN)")
    return int(match.group(1))


def generations(index_dir: Path) -> list[int]:
    """Numbers of the complete generation folders, ascending."""
    if not index_dir.is_dir():
        return []
    found = []
    for entry in index_dir.iterdir():
        match = _GEN.match(entry.name)
        if match and (entry / META).exists():
            found.append(int(match.group(1)))
    return sorted(found)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file in ``path`` and the folder itself."""
    for entry in path.iterdir():
        if entry.is_file():
            with entry.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def current_name(index_dir: Path) -> str | None:
    """The published generation's folder name, or None before the first build."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    gen_number(name)  # a garbled pointer is an error worth seeing, not "no index"
    return name


def current_path(index_dir: Path) -> Path:
    name = current_name(index_dir)
    if name is None:
        raise NoGeneration(
            f"no index generation in {index_dir} yet: run `lookalike indexer --once`"
        )
    return index_dir / name


def read_meta(gen_dir: Path) -> dict[str, Any]:
    return json.loads((gen_dir / META).read_text())


def next_number(index_dir: Path) -> int:
    """One past every generation number in use, including abandoned builds."""
    used = [0]
    if index_dir.is_dir():
        for entry in index_dir.iterdir():
            for pattern in (_GEN, _BUILD):
                match = pattern.match(entry.name)
                if match:
                    used.append(int(match.group(1)))
    return max(used) + 1


def new_build_dir(index_dir: Path, number: int) -> Path:
    path = index_dir / f".build-{number:06d}-{os.getpid()}"
    path.mkdir(parents=True)
    return path


def publish(index_dir: Path, build_dir: Path, number: int) -> Path:
    """Make a fully written build folder the current generation, atomically.

    The folder's files are fsync-ed, it is renamed to ``gen-N``, and CURRENT is replaced.
    Until the final ``os.replace`` readers keep using the previous generation.
    """
    if not (build_dir / META).exists():
        raise ValueError(f"{build_dir} has no {META}: refusing to publish an incomplete build")
    fsync_tree(build_dir)
    final = index_dir / gen_name(number)
    os.rename(build_dir, final)
    _fsync_dir(index_dir)
    switch(index_dir, final.name)
    return final


def switch(index_dir: Path, name: str) -> None:
    """Point CURRENT at generation ``name`` (write temp, fsync, os.replace, fsync folder)."""
    gen_number(name)
    if not (index_dir / name / META).exists():
        raise NoGeneration(f"cannot switch to {name}: {index_dir / name} is not a generation")
    tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    with tmp.open("w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def cleanup(index_dir: Path, keep: int = 2) -> list[str]:
    """Remove old generations and abandoned builds; return the names removed.

    Keeps the current generation and the ``keep - 1`` before it: a reader that has not yet
    noticed the switch still maps the previous one (on POSIX even a removed file stays valid
    while mapped, but keeping it also keeps a fallback). Call only while holding the builder
    lock, which is what makes every ``.build-*`` folder found here abandoned.
    """
    removed: list[str] = []
    current = current_name(index_dir)
    if current is None:
        return removed
    cur = gen_number(current)
    kept = [n for n in generations(index_dir) if n <= cur][-keep:]
    for entry in sorted(index_dir.iterdir()):
        gen = _GEN.match(entry.name)
        stale_gen = gen and int(gen.group(1)) not in kept and int(gen.group(1)) < cur
        if stale_gen or _BUILD.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


@contextlib.contextmanager
def builder_lock(index_dir: Path) -> Iterator[None]:
    """Hold the folder's builder lock; ``IndexerBusy`` when another process has it.

    An flock dies with its process, so an indexer killed mid-build never leaves the folder
    locked.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IndexerBusy(
                    f"another indexer is building in {index_dir} (it holds {index_dir / LOCK})"
                ) from exc
            raise
        yield
    finally:
        os.close(fd)


def request_rebuild(index_dir: Path) -> None:
    """Ask the running indexer to rebuild at its next poll."""
    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / REBUILD).touch()


def take_rebuild_request(index_dir: Path) -> bool:
    """True (and the request consumed) when a rebuild was asked for."""
    try:
        (index_dir / REBUILD).unlink()
    except FileNotFoundError:
        return False
    return True
