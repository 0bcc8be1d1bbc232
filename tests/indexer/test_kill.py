"""An indexer process killed with SIGKILL in the middle of a build changes nothing readers see."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from lookalike_cli.main import child_command
from services.indexer import generations as gens
from services.indexer.bits import to_hex
from services.indexer.build import build_generation
from services.indexer.reader import IndexReader, Match
from services.indexer.table import HashTable

KINDS = ("phash", "dhash", "ahash")


def _start_build(hash_file: Path, index_dir: Path, state: Path) -> subprocess.Popen:
    env = {**os.environ, "LOOKALIKE_STATE_DIR": str(state)}
    return subprocess.Popen(
        child_command(
            "indexer",
            "--from-hashes",
            str(hash_file),
            "--index-dir",
            str(index_dir),
            "--trees",
            "5",
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(index_dir: Path, file_name: str, proc: subprocess.Popen, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the build ended before it was killed: {proc.stderr.read()}"
        for build in index_dir.glob(".build-*"):
            if (build / file_name).exists():
                return build
        time.sleep(0.005)
    raise AssertionError(f"no build folder with {file_name} within {timeout}s")


def test_indexer_killed_mid_build_leaves_the_previous_generation_serving(tmp_path):
    index_dir = tmp_path / "index"
    small = HashTable.from_arrays(
        ["a", "b", "c"],
        {k: np.array([0, 0b111, 2**64 - 1], np.uint64) for k in KINDS},
    )
    build_generation(index_dir, small, trees=3)
    reader = IndexReader(index_dir, check_interval=0.0)

    # a big table so the build takes seconds: the kill lands mid-build (no kind has an Annoy
    # index at this size; the multi-index tables take the time)
    rng = np.random.default_rng(0)
    n = 400_000
    hash_file = tmp_path / "hashes.npz"
    np.savez(
        hash_file,
        ids=np.array([f"x{i:07d}" for i in range(n)]),
        **{k: rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) for k in KINDS},
    )

    for stage in ("ids.npy", "dhash.rows.npy"):  # killed early, and with some tables written
        proc = _start_build(hash_file, index_dir, tmp_path / "state")
        build = _wait_for(index_dir, stage, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert build.exists()  # the half-written build is left behind, unpublished
        assert gens.current_name(index_dir) == "gen-000001"
        for r in (reader, IndexReader(index_dir)):
            assert r.generation.number == 1
            assert r.within("phash", hash=to_hex("phash", 0), radius=3) == [
                Match("a", 0),
                Match("b", 3),
            ]

    # the next build publishes, and removes the abandoned builds (their lock died with them)
    proc = _start_build(hash_file, index_dir, tmp_path / "state")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "gen-000004" in out  # numbers 2 and 3 went to the killed builds
    assert not list(index_dir.glob(".build-*"))
    assert reader.generation.number == 4 and reader.generation.images == n
