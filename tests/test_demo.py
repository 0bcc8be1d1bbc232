"""The main job, as a user runs it: `lookalike demo` on a fresh state folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike import stack
from lookalike.settings import load_settings


@pytest.mark.timeout(900)
def test_demo_crawls_indexes_reports_and_serves(demo_collection: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["LOOKALIKE_STATE_DIR"] = str(state)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from lookalike_cli.main import main; main()", "demo",
             "--no-serve", "--port", "0", "--depth", "2", "--collection", str(demo_collection)],
            env=env, capture_output=True, text=True, timeout=840,
        )
        out = proc.stdout
        assert proc.returncode == 0, out + proc.stderr
        crawl = re.search(r"crawl \w+ done in [\d.]+s: (\d+) images fetched .*?(\d+) stored, "
                          r"(\d+) hashed, (\d+) edges, depth reached 2, 0 failures", out)
        assert crawl, out
        fetched, stored, hashed, edges = map(int, crawl.groups())
        assert fetched > 5 and stored >= fetched and hashed == stored and edges >= fetched
        assert re.search(r"\d+ hashed images indexed", out), out
        assert "/neighborhood?depth=2 -> 200" in out
        report = state / "report" / "report.html"
        html = report.read_text()
        assert "<img" in html and "Degree" in html
        assert (state / "report" / "neighborhood.png").stat().st_size > 10_000
    finally:
        stack.down(load_settings(state_dir=state))
