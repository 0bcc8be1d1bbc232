"""The main job, as a user runs it: `lookalike demo` on a fresh state folder (the session's
``demo_run`` fixture, whose result the explorer's tests browse too)."""

from __future__ import annotations

import re

import pytest

from lookalike.settings import load_settings
from lookalike.vectors import current_model
from tests.conftest import DemoRun


@pytest.mark.timeout(900)
def test_demo_crawls_indexes_reports_and_serves(demo_run: DemoRun) -> None:
    out = demo_run.output
    crawl = re.search(
        r"crawl \w+ done in [\d.]+s: (\d+) images fetched .*?(\d+) stored, "
        r"(\d+) hashed, (\d+) edges, depth reached 2, 0 failures",
        out,
    )
    assert crawl, out
    fetched, stored, hashed, edges = map(int, crawl.groups())
    assert fetched > 5 and stored >= fetched and hashed == stored and edges >= fetched
    assert re.search(r"\d+ hashed images indexed", out), out
    if current_model(load_settings(state_dir=demo_run.state)) is not None:
        # embeddings on: every hashed image is in the index with its vector, audited
        embedded = re.search(r"; (\d+) embedded images, their lookalikes written", out)
        assert embedded and int(embedded.group(1)) == hashed, out
    assert re.search(r"\d+ communities", out), out
    assert "/neighborhood?depth=2 -> 200" in out
    # The last line says where the explorer is.
    assert re.search(
        r"Explorer: .*http://127\.0\.0\.1:\d+/#/image/\w+/2", out.strip().splitlines()[-1]
    ), out
    report = demo_run.state / "report" / "report.html"
    html = report.read_text()
    assert "<img" in html and "Degree" in html
    assert "<h2>Audit of the similar lists</h2>" in html
    assert (demo_run.state / "report" / "neighborhood.png").stat().st_size > 10_000
