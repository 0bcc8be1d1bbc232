"""How every benchmark ends: print its table, write its figures as JSON, say where."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def labels() -> dict[str, Any]:
    """When, on which commit (``+dirty`` when the work tree differs) and at what load."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpus": os.cpu_count(),
    }


def publish(results: dict[str, Any], table: str, out: Path) -> dict[str, Any]:
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {out}")
    return results


def run_label() -> dict[str, Any]:
    """When and from which commit a result was measured (``-dirty``: uncommitted changes)."""
    import subprocess
    import time

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "commit": commit}


def load_average() -> float:
    """The 1-minute load average: on a shared machine, how many others wanted the CPUs."""
    return round(os.getloadavg()[0], 2)


def heading(name: str, results: dict[str, Any]) -> str:
    """The first line of a benchmark's table: what ran, when, on which commit, at what load."""
    before, after = results["loadavg_1min"]
    return (
        f"{name} benchmark, {results['date']} at {results['commit']}, {results['cpus']} "
        f"CPUs, load average {before} at start, {after} at end"
    )
