"""Lookalike commands as child processes: how the demo, the tests and the benchmarks start an
API server or a worker, point it at the same graph and Redis, wait until it answers, and stop it.

Each child runs in a session of its own, so that stopping it stops what it started too
(gunicorn's workers, Celery's pool). Its output goes to a log file that errors name, because a
server that fails to start says why only there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from lookalike.settings import Settings, SettingsError
from lookalike_cli.main import child_command

# Where `lookalike_cli` was imported from: the checkout in a development install, so a child
# finds the same code (and `services`, `workers`) whatever its working folder.
_SOURCE = Path(__file__).resolve().parents[1]


class ChildFailed(RuntimeError):
    """A child process exited, or did not answer in time; the message names its log."""


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child that must use the same state folder, graph and Redis as
    ``settings``: this process's environment without our settings, then theirs, then
    ``extra``. Secrets travel in the environment, never on the command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))}
    env["LOOKALIKE_STATE_DIR"] = str(settings.state_dir)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_SOURCE), os.environ.get("PYTHONPATH", "")) if p
    )
    with contextlib.suppress(SettingsError):  # a child that needs Redis says so itself
        env["REDIS_URL"] = settings.redis()
    if settings.neo4j_uri:
        graph = settings.graph()
        env.update(
            {"NEO4J_URI": graph.uri, "NEO4J_USER": graph.user, "NEO4J_PASSWORD": graph.password}
        )
    if settings.neo4j_database:
        env["NEO4J_DATABASE"] = settings.neo4j_database
    env.update(extra)
    return env


def start(
    args: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """``lookalike ARGS`` in a session of its own, its output appended to ``log``."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            child_command(*args),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers 200, or raise ChildFailed when ``proc`` exits first or the
    time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ChildFailed(f"{url}: the server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (our own child)
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ChildFailed(f"{url} did not answer within {timeout:.0f} s; see {log}")
        time.sleep(0.2)


def signal_stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask the child's whole session to stop (gunicorn stops at once on SIGINT)."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)


def wait_stopped(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait for a child asked to stop; kill its session if it does not."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    signal_stop(proc, sig)
    wait_stopped(proc, timeout)


def serve(
    env: dict[str, str],
    log: Path,
    port: int,
    *options: str,
    host: str = "127.0.0.1",
    cwd: Path | None = None,
    timeout: float = 60,
) -> tuple[str, subprocess.Popen[bytes]]:
    """``lookalike serve`` on ``host:port`` with ``options``, waited for until /health
    answers; returns its URL and process (stopped again if it does not answer)."""
    proc = start(["serve", "--host", host, "--port", str(port), *options], env, log, cwd)
    url = f"http://{host}:{port}"
    try:
        wait_http(url + "/health", proc, log, timeout)
    except BaseException:
        stop(proc, signal.SIGINT)
        raise
    return url, proc
