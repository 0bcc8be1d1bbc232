"""A test suite run as a background job (``bash scripts/test.sh &``) still stops the children
it stops with Ctrl-C (SIGINT): such children inherit an ignored SIGINT, so they restore
Python's handler first (``lookalike_cli.main.child_command``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lookalike_cli.main import child_command
from services.replica.collection import Collection
from tests.support import REPO

pytestmark = pytest.mark.timeout(300)

SIGINT_BIT = 1 << (signal.SIGINT - 1)


@contextmanager
def as_a_background_job() -> Iterator[None]:
    """SIGINT ignored, as a shell without job control leaves it for a background command;
    children started meanwhile inherit that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def serve(command: list[str]) -> subprocess.Popen[str]:
    """``lookalike replica serve`` started from a background job, once it is serving."""
    with as_a_background_job():
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Ctrl-C"):
            return proc
    raise AssertionError(f"the replica exited with {proc.wait()} before serving")


def signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} for {pid}")


def test_a_child_of_a_background_job_still_stops_on_sigint(small_collection: Collection) -> None:
    args = ("replica", "serve", "--collection", str(small_collection.path))
    plain = serve([sys.executable, "-c", "from lookalike_cli.main import main; main()", *args])
    try:  # the cause, reproduced: a plain child ignores SIGINT
        assert signal_mask(plain.pid, "SigIgn") & SIGINT_BIT
    finally:
        os.killpg(plain.pid, signal.SIGKILL)
        plain.wait()

    child = serve(child_command(*args))
    assert not signal_mask(child.pid, "SigIgn") & SIGINT_BIT
    assert signal_mask(child.pid, "SigCgt") & SIGINT_BIT
    os.killpg(child.pid, signal.SIGINT)
    assert child.wait(timeout=60) == 0
