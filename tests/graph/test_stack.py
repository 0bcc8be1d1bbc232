"""The embedded stack's lifecycle through the real CLI: up, status, down, data kept, clear
errors when something is wrong."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lookalike import stack
from lookalike.graph import GraphStore, GraphUnavailable
from lookalike.settings import load_settings
from lookalike_cli.main import child_command


def cli(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_URI", "REDIS_URL")}
    env["LOOKALIKE_STATE_DIR"] = str(state)
    proc = subprocess.run(
        child_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lookalike {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def own_state(tmp_path: Path):
    state = tmp_path / "state"
    yield state
    stack.down(load_settings(state_dir=state))  # never leave servers behind


def test_up_status_down_up_keeps_data_and_leaves_no_process(own_state: Path) -> None:
    out = cli(own_state, "up").stdout
    assert "redis" in out and "graph" in out
    s = load_settings(state_dir=own_state)
    pids = [s.embedded()[k]["pid"] for k in ("redis", "graph")]
    with GraphStore.connect(s) as store:
        store.upsert_images([{"id": "keepme01", "title": "Kept"}])
    status = cli(own_state, "status").stdout
    assert status.count("running") == 2 and "1 images" in status

    assert "graph, redis" in cli(own_state, "down").stdout
    for pid in pids:
        assert not stack.pid_alive(pid), f"pid {pid} still running after down"
    assert "not running" in cli(own_state, "status").stdout

    cli(own_state, "up")
    with GraphStore.connect(load_settings(state_dir=own_state)) as store:
        assert store.get_image("keepme01")["title"] == "Kept"
    cli(own_state, "down")


def test_killed_graph_server_gives_clear_error_not_hang(own_state: Path) -> None:
    s = load_settings(state_dir=own_state)
    stack.up(s)
    store = GraphStore.connect(s, retry_time=3)
    store.upsert_images([{"id": "before01"}])
    os.kill(s.embedded()["graph"]["pid"], signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(GraphUnavailable, match="not answering") as info:
        store.get_image("before01")
    assert "lookalike status" in str(info.value)
    assert time.monotonic() - started < 60  # bounded: a clear error, not a hang
    store.close()
    status = cli(own_state, "status").stdout
    assert "NOT RUNNING" in status


def test_port_taken_is_a_clear_error(own_state: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = cli(own_state, "up", "--redis-port", str(port), check=False)
    assert proc.returncode == 1
    assert f"port {port} for Redis is already taken" in proc.stderr


def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = cli(blocker / "state", "up", check=False)
    assert proc.returncode == 1
    assert "is not writable" in proc.stderr and "LOOKALIKE_STATE_DIR" in proc.stderr


def test_server_dying_during_start_is_reported(own_state: Path, monkeypatch) -> None:
    """A Java that cannot start the server: the error names the cause and the log."""
    s = load_settings(state_dir=own_state)
    original = stack.arcadedb_command
    monkeypatch.setattr(
        stack,
        "arcadedb_command",
        lambda *a, **k: [*original(*a, **k)[:-1], "com.example.NoSuchMainClass"],
    )
    with pytest.raises(stack.StackError, match="ArcadeDB exited with code"):
        stack.up(s)
    # Redis, started first, was stopped again: a failed up leaves nothing behind.
    assert not s.embedded()
